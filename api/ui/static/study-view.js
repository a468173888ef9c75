// One study: its status and jobs, and either a search (its budgets, best trial, importances,
// progress plot and trials) or the leaderboard of its variants; refreshed while it runs.

import { getJson } from "./api.js";
import { h, replace } from "./dom.js";
import { fixed, percent, shortId } from "./format.js";
import { ProgressPlot, searchPanel } from "./search-panel.js";
import { notice, repeat, statusBadge } from "./status.js";

const REFRESH_MS = 4000;

export function studyTitle(study) {
  return study.name ?? `Study ${shortId(study.id)}`;
}

export function countsText(counts) {
  return Object.entries(counts).sort().map(([status, count]) => `${count} ${status}`).join(", ") || "no jobs";
}

function head(study) {
  return [
    h("p", { class: "crumbs" }, h("a", { href: "#/studies" }, "← Studies")),
    h("div", { class: "page-head" },
      h("h1", {}, studyTitle(study)), statusBadge(study.status), h("span", { class: "spacer" }),
      h("a", { class: "button button-quiet", href: `#/compare?study=${study.id}`, id: "compare-study" }, "Compare the curves")),
    h("p", { class: "muted small" }, h("span", { class: "mono" }, study.id), ` · ${study.search ? "a search" : "a study of variants"}`,
      ` · jobs: ${countsText(study.counts)}`),
  ];
}

function leaderboard(study) {
  const columns = ["Rank", "Variant", "Status", `Best ${study.objective.metric}`, "Best epoch", "Test accuracy", "Stop reason"];
  return h("section", { class: "card", "aria-labelledby": "leaderboard-title" },
    h("h2", { id: "leaderboard-title" }, `Leaderboard: best ${study.objective.metric} (${study.objective.mode})`),
    h("div", { class: "table-wrap" }, h("table", { class: "leaderboard" },
      h("thead", {}, h("tr", {}, columns.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, study.leaderboard.map((row) => h("tr", { "data-job-id": row.job_id },
        h("td", { class: "num" }, row.rank),
        h("td", {}, h("a", { href: `#/jobs/${row.job_id}` }, row.variant)),
        h("td", {}, statusBadge(row.status)),
        h("td", { class: "num" }, fixed(row.best_value)),
        h("td", { class: "num" }, row.best_epoch ?? "–"),
        h("td", { class: "num" }, percent(row.test_accuracy)),
        h("td", {}, row.stop_reason ?? "–")))))));
}

export function studyView(root, studyId, signal) {
  replace(root, notice("Loading the study…"));
  const top = h("div", {}), body = h("div", { class: "study-body" });
  const plot = new ProgressPlot();
  signal.addEventListener("abort", () => plot.release(), { once: true });
  let drawn = false;

  repeat(async () => {
    let study;
    try {
      study = await getJson(`/v1/studies/${studyId}`, { signal });
    } catch (error) {
      if (!signal.aborted && error.status !== 401) {
        replace(root, h("p", { class: "crumbs" }, h("a", { href: "#/studies" }, "← Studies")), notice(error.message, "error"));
      }
      return null;
    }
    if (!drawn) replace(root, top, body);
    drawn = true;
    replace(top, head(study));
    if (study.search) {
      replace(body, searchPanel(study, plot));
      await plot.load(study, signal);
    } else {
      replace(body, leaderboard(study));
    }
    return study.status === "running" ? REFRESH_MS : null;
  }, signal);
}
