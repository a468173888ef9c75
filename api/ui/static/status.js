// Pieces that several views share: the status badge, progress, tags, problems.

import { h } from "./dom.js";

export function statusBadge(status) {
  return h("span", { class: `status status-${status}`, "data-status": status }, status);
}

export function progressCell(progress) {
  const { epoch, epochs } = progress;
  return h("div", { class: "progress" },
    h("progress", { max: epochs, value: epoch, "aria-label": `epoch ${epoch} of ${epochs}` }),
    h("span", { class: "progress-text" }, `${epoch}/${epochs}`));
}

export function tagList(tags) {
  const entries = Object.entries(tags ?? {});
  if (!entries.length) return h("span", { class: "muted" }, "–");
  return h("span", { class: "tags" }, entries.map(([k, v]) => h("span", { class: "tag" }, `${k}: ${v}`)));
}

/** A <dl> of [name, value] pairs; a pair that is null, or whose value is, is left out. */
export function definitionList(pairs) {
  return h("dl", { class: "facts" }, pairs.filter((pair) => pair && pair[1] !== null && pair[1] !== undefined)
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export function notice(text, kind = "info") {
  return h("p", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** Run `tick` now and again after the delay it returns, until `signal` aborts; skip hidden tabs. */
export function repeat(tick, signal) {
  let timer = null;
  const run = async () => {
    if (signal.aborted) return;
    const delay = document.hidden ? 5000 : await tick();
    if (!signal.aborted && delay) timer = setTimeout(run, delay);
  };
  signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
  run();
}
