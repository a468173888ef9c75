// The job list: newest first, filtered by status, refreshed often while any job is active.

import { getJson } from "./api.js";
import { h, replace } from "./dom.js";
import { fixed, isActive, jobTitle, shortId, when } from "./format.js";
import { notice, progressCell, repeat, statusBadge, tagList } from "./status.js";

const STATUSES = ["queued", "running", "cancelling", "succeeded", "failed", "cancelled"];
const ACTIVE_REFRESH_MS = 3000;
const IDLE_REFRESH_MS = 20000;
const PAGE_SIZE = 50;

// The selection for the compare view outlives a visit to a job's page.
const selected = new Set();

function bestCell(best) {
  if (!best) return h("span", { class: "muted" }, "–");
  return h("span", { title: `${best.monitor} at epoch ${best.epoch}` },
    fixed(best.value), h("span", { class: "muted small" }, ` ${best.monitor} @${best.epoch}`));
}

function jobRow(job, onToggle) {
  const href = `#/jobs/${job.id}`;
  const checkbox = h("input", {
    type: "checkbox", "aria-label": `Select ${jobTitle(job)} for comparison`, checked: selected.has(job.id),
    onchange: (event) => onToggle(job.id, event.target.checked),
  });
  // The whole row opens the job; the checkbox and the link keep their own behaviour.
  const open = (event) => { if (!event.target.closest("input, a")) location.hash = href; };
  return h("tr", { "data-job-id": job.id, "data-status": job.status, class: "clickable", onclick: open },
    h("td", { class: "select" }, checkbox),
    h("td", {}, h("a", { href, class: "job-link" }, jobTitle(job)), h("div", { class: "muted small mono" }, shortId(job.id))),
    h("td", {}, statusBadge(job.status)),
    h("td", {}, tagList(job.tags)),
    h("td", {}, progressCell(job.progress)),
    h("td", { class: "num" }, bestCell(job.best)),
    h("td", { class: "nowrap" }, when(job.created_at)));
}

function table(jobs, onToggle) {
  if (!jobs.length) return notice("No jobs yet. Submit one with POST /v1/jobs and it appears here.");
  return h("div", { class: "table-wrap" }, h("table", { class: "jobs" },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col", class: "select" }, h("span", { class: "visually-hidden" }, "Compare")),
      ["Name", "Status", "Tags", "Progress", "Best", "Submitted"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, jobs.map((job) => jobRow(job, onToggle)))));
}

export function jobsView(root, params, signal) {
  const status = STATUSES.includes(params.get("status")) ? params.get("status") : "";
  const filter = h("select", {
    id: "status-filter",
    onchange: (event) => { location.hash = event.target.value ? `#/jobs?status=${event.target.value}` : "#/jobs"; },
  }, h("option", { value: "" }, "All statuses"), STATUSES.map((s) => h("option", { value: s, selected: s === status }, s)));
  const compare = h("button", { type: "button", id: "compare-selected", onclick: () => {
    location.hash = `#/compare?jobs=${[...selected].join(",")}`;
  } });
  const updated = h("span", { class: "muted small", "aria-live": "off" });
  const body = h("div", {}, notice("Loading jobs…"));
  const syncCompare = () => {
    compare.textContent = `Compare selected (${selected.size})`;
    compare.disabled = selected.size < 2;
  };
  const onToggle = (id, on) => { on ? selected.add(id) : selected.delete(id); syncCompare(); };
  syncCompare();
  replace(root,
    h("div", { class: "page-head" }, h("h1", {}, "Jobs"), h("span", { class: "spacer" }), updated),
    h("div", { class: "toolbar" },
      h("label", { for: "status-filter" }, "Status"), filter, h("span", { class: "spacer" }), compare),
    body);

  repeat(async () => {
    try {
      const query = new URLSearchParams({ limit: PAGE_SIZE });
      if (status) query.append("status", status);
      const page = await getJson(`/v1/jobs?${query}`, { signal });
      replace(body, table(page.items, onToggle));
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
      return page.items.some((job) => isActive(job.status)) ? ACTIVE_REFRESH_MS : IDLE_REFRESH_MS;
    } catch (error) {
      if (signal.aborted) return null;
      if (error.status === 401) return null;
      replace(body, notice(`Could not load the jobs: ${error.message}`, "error"));
      return IDLE_REFRESH_MS;
    }
  }, signal);
}
