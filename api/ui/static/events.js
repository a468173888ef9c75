// Server-Sent Events read with fetch: EventSource cannot send the Authorization header.
// The stream resumes after the last epoch seen (Last-Event-ID) when the connection drops.

import { authHeaders, forgetKey, UNAUTHORIZED_EVENT } from "./api.js";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const MAX_BACKOFF_MS = 10000;

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/** Parse one event block (the lines between blank lines) into {id, event, data}, or null. */
export function parseBlock(block) {
  const event = { id: null, event: "message", data: [] };
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") event.data.push(value);
    else if (field === "event") event.event = value;
    else if (field === "id") event.id = value;
  }
  if (!event.data.length) return null;
  return { ...event, data: event.data.join("\n") };
}

async function* blocks(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      yield buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
    }
  }
}

/**
 * Follow a job's events until its final state or until `signal` aborts.
 * handlers: {epoch(record), state({status, last_epoch}), connection(text)}.
 */
export async function followJob(jobId, handlers, signal) {
  let lastId = 0, backoff = 1000;
  while (!signal.aborted) {
    try {
      const headers = { Accept: "text/event-stream", ...authHeaders() };
      if (lastId) headers["Last-Event-ID"] = String(lastId);
      const response = await fetch(`/v1/jobs/${jobId}/events`, { headers, signal, cache: "no-store" });
      if (response.status === 401) {
        forgetKey();
        window.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT, { detail: "Your key was refused." }));
        return;
      }
      if (!response.ok) throw new Error(`the event stream answered ${response.status}`);
      handlers.connection?.("live");
      backoff = 1000;
      for await (const block of blocks(response.body)) {
        const event = parseBlock(block);
        if (!event) continue;
        if (event.id && /^\d+$/.test(event.id)) lastId = Number(event.id);
        const data = JSON.parse(event.data);
        if (event.event === "epoch") handlers.epoch?.(data);
        if (event.event === "state") {
          handlers.state?.(data);
          if (TERMINAL.has(data.status)) return;
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      handlers.connection?.(`reconnecting (${error.message})`);
    }
    await sleep(backoff, signal);
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  }
}
