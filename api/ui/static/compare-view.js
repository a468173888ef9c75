// Several jobs, or a whole study, on the same axes: one colour per job, and their final metrics.

import { allMetrics, getJson } from "./api.js";
import { LineChart, PALETTE } from "./chart.js";
import { h, replace, svg } from "./dom.js";
import { fixed, isActive, jobTitle, percent, shortId } from "./format.js";
import { notice, repeat, statusBadge } from "./status.js";

const REFRESH_MS = 5000;

// A study's jobs are known by their variants; same-named jobs by the end of their ids.
function labels(jobs) {
  const names = jobs.map((job) => job.study?.variant ?? jobTitle(job));
  const counts = new Map();
  for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1);
  return names.map((name, i) => (counts.get(name) > 1 ? `${name} ·${shortId(jobs[i].id)}` : name));
}

function lines(entries, trainField, valField) {
  return entries.flatMap(({ job, label, color, records }) => {
    const points = (field) => records.map((r) => ({ x: r.epoch, y: r[field] }));
    return [
      { key: `${valField}-${job.id}`, job: job.id, label, tooltip: `${label}, validation`, color, points: points(valField) },
      // One legend entry per job: the note above the charts tells the line styles apart.
      { key: `${trainField}-${job.id}`, job: job.id, label, color, dashed: true, markers: false, legend: false, points: points(trainField) },
    ];
  });
}

function bestOf(records, field) {
  const scored = records.filter((r) => typeof r[field] === "number");
  if (!scored.length) return null;
  return scored.reduce((best, r) => (r[field] > best[field] ? r : best));
}

function swatch(color) {
  return svg("svg", { class: "swatch", width: 12, height: 12, viewBox: "0 0 12 12", "aria-hidden": "true" },
    svg("circle", { cx: 6, cy: 6, r: 5, fill: color }));
}

function finalTable(entries) {
  return h("div", { class: "table-wrap" }, h("table", { class: "final", id: "final-metrics" },
    h("thead", {}, h("tr", {}, ["Job", "Status", "Epochs", "Training accuracy", "Validation accuracy",
      "Best validation accuracy", "Validation loss", "Test accuracy", "Stop reason"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, entries.map(({ job, label, color, records }) => {
      const last = records.at(-1) ?? {}, best = bestOf(records, "val_accuracy");
      return h("tr", { "data-job-id": job.id },
        h("td", { class: "nowrap" }, swatch(color), " ", h("a", { href: `#/jobs/${job.id}` }, label)),
        h("td", {}, statusBadge(job.status)),
        h("td", { class: "num" }, `${job.progress.epoch}/${job.progress.epochs}`),
        h("td", { class: "num" }, percent(last.accuracy)),
        h("td", { class: "num" }, percent(last.val_accuracy)),
        h("td", { class: "num" }, best ? `${percent(best.val_accuracy)} @${best.epoch}` : "–"),
        h("td", { class: "num" }, fixed(last.val_loss)),
        h("td", { class: "num" }, percent(job.result?.test_accuracy)),
        h("td", {}, job.stop_reason ?? "–"));
    }))));
}

async function studyPicker(current, signal) {
  const select = h("select", { id: "study-picker", onchange: (event) => {
    if (event.target.value) location.hash = `#/compare?study=${event.target.value}`;
  } }, h("option", { value: "" }, "Choose a study…"));
  try {
    const page = await getJson("/v1/studies?limit=50", { signal });
    for (const study of page.items) {
      select.append(h("option", { value: study.id, selected: study.id === current },
        `${study.name ?? `study ${shortId(study.id)}`} (${study.jobs.length} jobs, ${study.status})`));
    }
  } catch { /* without studies the picker stays empty; jobs can still be compared */ }
  return h("div", { class: "toolbar" }, h("label", { for: "study-picker" }, "Study"), select,
    h("span", { class: "muted small" }, "or tick jobs in the ", h("a", { href: "#/jobs" }, "job list"), " and choose Compare."));
}

async function jobIdsOf(params, signal) {
  const studyId = params.get("study");
  if (studyId) {
    const study = await getJson(`/v1/studies/${studyId}`, { signal });
    const title = h("a", { href: `#/studies/${study.id}` }, study.name ?? `Study ${shortId(study.id)}`);
    return { title, ids: study.jobs.map((j) => j.job_id) };
  }
  const ids = (params.get("jobs") ?? "").split(",").filter((id) => /^[0-9a-f]{24}$/.test(id));
  return { title: `${ids.length} jobs`, ids };
}

export async function compareView(root, params, signal) {
  const body = h("div", {}, notice("Loading…"));
  replace(root, h("div", { class: "page-head" }, h("h1", {}, "Compare")), await studyPicker(params.get("study"), signal), body);
  if (signal.aborted) return;
  let source;
  try {
    source = await jobIdsOf(params, signal);
  } catch (error) {
    if (!signal.aborted) replace(body, notice(error.message, "error"));
    return;
  }
  if (!source.ids.length) {
    replace(body, notice("Choose a study, or select two or more jobs in the job list."));
    return;
  }
  const lossChart = new LineChart({ key: "compare-loss", title: "Loss per epoch", yLabel: "loss", bounds: [0, Infinity] });
  const accChart = new LineChart({ key: "compare-accuracy", title: "Accuracy per epoch", yLabel: "accuracy", bounds: [0, 1], format: percent });
  const table = h("div", {});
  replace(body, h("h2", { class: "subtitle" }, source.title),
    h("p", { class: "muted small" }, "Solid lines with points: validation; dashed: training."),
    h("div", { class: "compare-grid" }, lossChart.element, accChart.element), table);

  repeat(async () => {
    try {
      const jobs = await Promise.all(source.ids.map((id) => getJson(`/v1/jobs/${id}`, { signal })));
      const metrics = await Promise.all(source.ids.map((id) => allMetrics(id, signal)));
      const names = labels(jobs);
      const entries = jobs.map((job, i) => ({ job, label: names[i], color: PALETTE[i % PALETTE.length], records: metrics[i].records }));
      const xMax = Math.max(...jobs.map((job) => job.progress.epochs));
      lossChart.options.xMax = accChart.options.xMax = xMax;
      lossChart.update(lines(entries, "loss", "val_loss"));
      accChart.update(lines(entries, "accuracy", "val_accuracy"));
      replace(table, finalTable(entries));
      return jobs.some((job) => isActive(job.status)) ? REFRESH_MS : null;
    } catch (error) {
      if (!signal.aborted && error.status !== 401) replace(table, notice(error.message, "error"));
      return null;
    }
  }, signal);
}
