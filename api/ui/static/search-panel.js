// What a study that searches shows: its budgets, its best trial, its parameters' importances as
// bars, the best value against epochs spent (the API's PNG), and its trials, each linked to its job.

import { request } from "./api.js";
import { h, svg } from "./dom.js";
import { fixed, shortId } from "./format.js";
import { definitionList, statusBadge } from "./status.js";

// The options that change what each pruner does (the others are stored with their defaults).
const PRUNER_OPTIONS = {
  median: ["min_epochs", "startup_trials"], asha: ["min_epochs", "reduction_factor"],
  hyperband: ["min_epochs", "reduction_factor"], none: [],
};

/** A parameter's value as people read it: 0.003, 1e-7, [128,64], adam. */
export function paramText(value) {
  if (typeof value === "number") return String(Number(value.toPrecision(6)));
  return typeof value === "string" ? value : JSON.stringify(value);
}

function withOptions(name, options) {
  const shown = Object.entries(options).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => `${k} ${v}`);
  return shown.length ? `${name} (${shown.join(", ")})` : name;
}

export function samplerText(sampler) {
  return withOptions(sampler.type, { seed: sampler.seed, ...(sampler.type === "tpe" ? { startup_trials: sampler.startup_trials } : {}) });
}

export function prunerText(pruner) {
  return withOptions(pruner.type, Object.fromEntries((PRUNER_OPTIONS[pruner.type] ?? []).map((k) => [k, pruner[k]])));
}

/** Every parameter the trials tried, by path (Optuna keeps a trial's in no fixed order). */
export function paramNames(trials) {
  return [...new Set(trials.flatMap((trial) => Object.keys(trial.params)))].sort();
}

function jobLink(trial, text) {
  return trial.job_id ? h("a", { href: `#/jobs/${trial.job_id}` }, text) : text;
}

function card(id, title, ...children) {
  return h("section", { class: "card", id, "aria-labelledby": `${id}-title` }, h("h2", { id: `${id}-title` }, title), children);
}

function summaryCard(study) {
  const { search, objective } = study;
  return card("search-summary", "Search", definitionList([
    ["Objective", `best ${objective.metric} (${objective.mode})`],
    ["Sampler", samplerText(search.sampler)],
    ["Pruner", prunerText(search.pruner)],
    ["Trials", `${search.trials_started} started of ${search.max_trials}`],
    ["Epochs", `${search.epochs_spent} spent ${search.max_total_epochs ? `of ${search.max_total_epochs}` : "(no budget)"}`],
    ["End reason", search.end_reason ?? "still searching"],
  ]));
}

function bestCard(study) {
  const best = study.search.best_trial;
  if (!best) return card("best-trial", "Best trial", h("p", { class: "muted" }, "None yet: no trial has completed."));
  return card("best-trial", "Best trial", definitionList([
    ["Trial", jobLink(best, `#${best.number}${best.job_id ? ` (job ${shortId(best.job_id)})` : ""}`)],
    [study.objective.metric, fixed(best.value)],
    ["Epochs", best.epochs],
    ...Object.keys(best.params).sort().map((path) => [path, h("span", { class: "mono" }, paramText(best.params[path]))]),
  ]));
}

function importanceBar(value) {
  const width = Math.max(0, Math.min(1, value)) * 100;
  return svg("svg", { class: "bar", viewBox: "0 0 100 10", preserveAspectRatio: "none", "aria-hidden": "true" },
    svg("rect", { class: "bar-track", width: 100, height: 10, rx: 2 }),
    svg("rect", { class: "bar-fill", width, height: 10, rx: 2 }));
}

function importancesCard(importances) {
  const entries = Object.entries(importances).sort((a, b) => b[1] - a[1]);
  if (!entries.length) {
    return card("importances", "Parameter importances", h("p", { class: "muted" }, "They come once two trials have completed."));
  }
  return card("importances", "Parameter importances",
    h("ul", { class: "bars" }, entries.map(([path, value]) => h("li", { "data-param": path },
      h("span", { class: "bar-label mono" }, path), importanceBar(value), h("span", { class: "num" }, fixed(value, 3))))),
    h("p", { class: "muted small" }, "fANOVA over the completed trials; they add up to 1."));
}

function trialRow(trial, params, withNotes) {
  const open = (event) => { if (trial.job_id && !event.target.closest("a")) location.hash = `#/jobs/${trial.job_id}`; };
  return h("tr", { "data-trial": trial.number, "data-state": trial.state, class: trial.job_id ? "clickable" : null, onclick: open },
    h("td", { class: "num" }, jobLink(trial, `#${trial.number}`)),
    h("td", {}, statusBadge(trial.state)),
    h("td", { class: "num" }, fixed(trial.value)),
    h("td", { class: "num" }, trial.epochs),
    params.map((path) => h("td", { class: "mono small" }, path in trial.params ? paramText(trial.params[path]) : "–")),
    h("td", { class: "mono small" }, trial.job_id ? jobLink(trial, shortId(trial.job_id)) : "–"),
    withNotes ? h("td", { class: "note", title: trial.error ?? "" }, trial.error ?? "") : null);
}

function trialsCard(trials) {
  const params = paramNames(trials), withNotes = trials.some((trial) => trial.error);
  const th = (text, attrs = {}) => h("th", { scope: "col", ...attrs }, text);
  return card("trials", `Trials (${trials.length})`, h("div", { class: "table-wrap" }, h("table", { class: "trials" },
    h("thead", {}, h("tr", {}, ["#", "State", "Value", "Epochs"].map((t) => th(t)),
      params.map((path) => th(path, { class: "param" })), th("Job"), withNotes ? th("Note") : null)),
    h("tbody", {}, trials.map((trial) => trialRow(trial, params, withNotes))))));
}

/** The progress plot: a PNG of the API's, fetched with the key (an <img> could not send it). */
export class ProgressPlot {
  constructor() {
    this.image = h("img", { id: "search-progress", alt: "The best value against the epochs spent", hidden: true });
    this.state = h("p", { class: "muted small" }, "Loading the plot…");
    this.element = h("figure", { class: "chart progress-plot" },
      h("figcaption", {}, "Best value against epochs spent"), this.image, this.state);
    this.loaded = null;
    this.url = null;
  }

  /** Fetch the plot again when the search spent epochs or started trials since the last one. */
  async load(study, signal) {
    const version = `${study.search.epochs_spent}/${study.search.trials.length}/${study.status}`;
    if (version === this.loaded) return;
    try {
      const blob = await (await request(study.links.progress, { signal })).blob();
      if (this.url) URL.revokeObjectURL(this.url);
      this.url = URL.createObjectURL(blob);
      this.image.src = this.url;
      this.image.hidden = false;
      this.state.textContent = "";
      this.loaded = version;
    } catch (error) {
      if (!signal.aborted) this.state.textContent = `The plot could not be loaded: ${error.message}`;
    }
  }

  release() {
    if (this.url) URL.revokeObjectURL(this.url);
  }
}

/** A search's cards around the progress plot, then its trials. */
export function searchPanel(study, plot) {
  const { search } = study;
  return [
    h("div", { class: "search-grid" },
      h("div", { class: "stack" }, summaryCard(study), bestCard(study), importancesCard(search.importances)),
      plot.element),
    trialsCard(search.trials),
  ];
}
