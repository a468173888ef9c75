// The study list: newest first, searches and studies of variants, with each one's best value.

import { getJson } from "./api.js";
import { h, replace } from "./dom.js";
import { fixed } from "./format.js";
import { notice, repeat, statusBadge } from "./status.js";
import { countsText, studyTitle } from "./study-view.js";

const ACTIVE_REFRESH_MS = 4000;
const IDLE_REFRESH_MS = 20000;

function best(study) {
  const value = study.search ? study.search.best_trial?.value : study.leaderboard[0]?.best_value;
  if (typeof value !== "number") return h("span", { class: "muted" }, "–");
  return h("span", {}, fixed(value), h("span", { class: "muted small" }, ` ${study.objective.metric}`));
}

function kind(study) {
  if (!study.search) return `${study.jobs.length} variants`;
  return `search, ${study.search.trials_started} of ${study.search.max_trials} trials`;
}

function studyRow(study) {
  const href = `#/studies/${study.id}`;
  const open = (event) => { if (!event.target.closest("a")) location.hash = href; };
  return h("tr", { "data-study-id": study.id, class: "clickable", onclick: open },
    h("td", {}, h("a", { href, class: "job-link" }, studyTitle(study))),
    h("td", {}, kind(study)),
    h("td", {}, statusBadge(study.status)),
    h("td", {}, countsText(study.counts)),
    h("td", { class: "num" }, best(study)));
}

function table(studies) {
  if (!studies.length) return notice("No studies yet. Start one with POST /v1/studies or kjobs study submit.");
  return h("div", { class: "table-wrap" }, h("table", { class: "studies" },
    h("thead", {}, h("tr", {}, ["Name", "Kind", "Status", "Jobs", "Best"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, studies.map(studyRow))));
}

export function studiesView(root, params, signal) {
  const body = h("div", {}, notice("Loading studies…"));
  replace(root, h("div", { class: "page-head" }, h("h1", {}, "Studies")), body);
  repeat(async () => {
    try {
      const page = await getJson("/v1/studies?limit=50", { signal });
      replace(body, table(page.items));
      return page.items.some((study) => study.status === "running") ? ACTIVE_REFRESH_MS : IDLE_REFRESH_MS;
    } catch (error) {
      if (signal.aborted || error.status === 401) return null;
      replace(body, notice(`Could not load the studies: ${error.message}`, "error"));
      return IDLE_REFRESH_MS;
    }
  }, signal);
}
