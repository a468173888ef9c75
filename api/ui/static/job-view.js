// One job: its spec, status, attempts, result or error, cancel and download, and learning
// curves that grow as epochs arrive on the job's event stream.

import { ApiError, getJson, request } from "./api.js";
import { LineChart } from "./chart.js";
import { h, replace } from "./dom.js";
import { duration, fixed, isActive, jobTitle, percent, when } from "./format.js";
import { followJob } from "./events.js";
import { definitionList, notice, progressCell, statusBadge, tagList } from "./status.js";

const TRAIN_COLOR = "#2563eb", VAL_COLOR = "#ea580c";

function layersText(layers) {
  return layers.map((layer) => (typeof layer === "number" ? String(layer) : `${layer.units}*`)).join(" × ");
}

function shapeText(shape) {
  return shape.join("×");
}

// The planned network: the input's shape, each layer with the shape it outputs, and the head.
function networkText(network) {
  const steps = [`input ${shapeText(network.input_shape)}`, ...network.layers.map((l) => `${l.type} ${shapeText(l.output_shape)}`)];
  const head = network.task === "regression" ? "linear" : "softmax";
  return `${[...steps, `${head} ${network.outputs}`].join(" → ")} (${network.parameters.toLocaleString()} parameters)`;
}

function regularizationText(reg) {
  const parts = [];
  if (reg.l1) parts.push(`L1 ${reg.l1}`);
  if (reg.l2) parts.push(`L2 ${reg.l2}`);
  if (reg.dropout) parts.push(`dropout ${reg.dropout}`);
  if (reg.input_dropout) parts.push(`input dropout ${reg.input_dropout}`);
  const aug = reg.augmentation ?? {};
  if (aug.rotation || aug.translation || aug.zoom || aug.horizontal_flip || aug.brightness || aug.contrast) parts.push("augmentation");
  if (aug.zca_whitening) parts.push("ZCA whitening");
  const stop = reg.early_stopping;
  if (stop) parts.push(`early stopping on ${stop.monitor} (patience ${stop.patience})`);
  return parts.length ? parts.join(", ") : "none";
}

function specSummary(job) {
  const { dataset, model, regularization, training } = job.spec;
  return h("section", { class: "card", "aria-labelledby": "spec-title" },
    h("h2", { id: "spec-title" }, "Spec"),
    definitionList([
      ["Preset", job.preset ?? "–"],
      ["Dataset", `${dataset.name}${dataset.train_limit ? `, first ${dataset.train_limit}` : ""}, validation ${dataset.validation_split}`],
      model.layers ? null : ["Hidden layers", `${layersText(model.hidden_layers)} (${model.activation})`],
      job.network ? ["Network", networkText(job.network)] : null,
      job.network ? ["Task", `${job.network.task}, ${job.network.outputs} ${job.network.task === "regression" ? "targets" : "classes"}`] : null,
      ["Regularization", regularizationText(regularization)],
      ["Training", `${training.epochs} epochs, batch ${training.batch_size}, ${training.optimizer} at ${training.learning_rate}`],
      ["Queue", job.queue ?? "default"],
      ["Tags", tagList(job.tags)],
      ["Study", job.study ? [h("a", { href: `#/studies/${job.study.id}` }, job.study.variant),
        " (", h("a", { href: `#/compare?study=${job.study.id}` }, "compare the study"), ")"] : null],
    ]));
}

function resultCard(job) {
  const items = [];
  if (job.result) {
    const r = job.result;
    const regression = r.test_accuracy === null && r.test_mae !== null;
    items.push(definitionList([
      regression ? ["Test MAE", fixed(r.test_mae)] : ["Test accuracy", percent(r.test_accuracy)],
      regression ? ["Test RMSE", fixed(r.test_rmse)] : null,
      regression ? ["Test R²", fixed(r.test_r2)] : null,
      ["Test loss", fixed(r.test_loss)],
      ["Best epoch", r.best_epoch ?? "–"],
      ["Stopped at epoch", r.stopped_epoch],
      ["Stop reason", job.stop_reason ?? "–"],
    ].filter(Boolean)));
    if (r.class_scores) items.push(classTable(r.class_scores));
  }
  if (job.error) items.push(notice(`${job.error.type}: ${job.error.message}`, "error"));
  if (!items.length) items.push(h("p", { class: "muted" }, isActive(job.status) ? "The result comes when the job ends." : "No result."));
  return h("section", { class: "card", "aria-labelledby": "result-title" }, h("h2", { id: "result-title" }, "Result"), items);
}

function classTable(scores) {
  return h("div", { class: "table-wrap" }, h("table", { class: "class-scores" },
    h("caption", {}, "Per class, on the test set"),
    h("thead", {}, h("tr", {}, ["Class", "Precision", "Recall", "F1", "Samples"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, scores.map((s) => h("tr", {},
      h("td", {}, s.name), h("td", { class: "num" }, percent(s.precision)), h("td", { class: "num" }, percent(s.recall)),
      h("td", { class: "num" }, percent(s.f1)), h("td", { class: "num" }, s.support))))));
}

function timeline(job) {
  return h("section", { class: "card", "aria-labelledby": "timeline-title" },
    h("h2", { id: "timeline-title" }, `Attempts and transitions (attempt ${job.attempt})`),
    definitionList([
      ["Submitted", when(job.created_at)], ["Started", when(job.started_at)],
      ["Finished", when(job.finished_at)], ["Run time", duration(job.started_at, job.finished_at)],
    ]),
    h("div", { class: "table-wrap" }, h("table", { class: "transitions" },
      h("thead", {}, h("tr", {}, ["When", "Status", "Attempt", "Reason"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, job.transitions.map((t) => h("tr", {},
        h("td", { class: "nowrap" }, when(t.at)), h("td", {}, statusBadge(t.status)),
        h("td", { class: "num" }, t.attempt), h("td", {}, t.reason ?? "–")))))));
}

async function downloadModel(job, button) {
  button.disabled = true;
  try {
    const blob = await (await request(`/v1/jobs/${job.id}/model`)).blob();
    const url = URL.createObjectURL(blob);
    const link = h("a", { href: url, download: `${job.id}.keras` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } finally {
    button.disabled = false;
  }
}

function actions(job, onChange, report) {
  const buttons = [];
  if (isActive(job.status) && job.status !== "cancelling") {
    buttons.push(h("button", { type: "button", class: "button-danger", id: "cancel-job", onclick: async (event) => {
      event.target.disabled = true;
      try {
        onChange(await getJson(`/v1/jobs/${job.id}/cancel`, { method: "POST" }));
      } catch (error) {
        event.target.disabled = false;
        report(error instanceof ApiError ? error.message : String(error));
      }
    } }, "Cancel job"));
  }
  if (job.has_model) {
    buttons.push(h("a", { href: `/v1/jobs/${job.id}/model`, class: "button", id: "download-model", onclick: (event) => {
      event.preventDefault();
      downloadModel(job, event.currentTarget).catch((error) => report(`Download failed: ${error.message}`));
    } }, "Download model (.keras)"));
  }
  return buttons;
}

function series(records, field, label, color) {
  return { key: field, label, color, points: records.map((r) => ({ x: r.epoch, y: r[field] })) };
}

export async function jobView(root, jobId, signal) {
  replace(root, notice("Loading the job…"));
  let job;
  try {
    job = await getJson(`/v1/jobs/${jobId}`, { signal });
  } catch (error) {
    if (!signal.aborted && error.status !== 401) replace(root, h("p", {}, h("a", { href: "#/jobs" }, "← Jobs")), notice(error.message, "error"));
    return;
  }
  const epochs = new Map();
  const head = h("div", {}), side = h("div", { class: "stack" }), message = h("div", {});
  const connection = h("span", { class: "muted small", id: "stream-state" });
  const lossChart = new LineChart({ key: "loss", title: "Loss", yLabel: "loss", xMax: job.progress.epochs, bounds: [0, Infinity] });
  // Regression jobs log the mean absolute error where classification logs accuracy.
  const regression = job.network?.task === "regression";
  const accChart = regression
    ? new LineChart({ key: "mae", title: "Mean absolute error", yLabel: "MAE", xMax: job.progress.epochs, bounds: [0, Infinity] })
    : new LineChart({
      key: "accuracy", title: "Accuracy", yLabel: "accuracy", xMax: job.progress.epochs, bounds: [0, 1],
      format: (v) => percent(v),
    });
  const report = (text) => replace(message, notice(text, "error"));

  const drawCharts = () => {
    const records = [...epochs.values()].sort((a, b) => a.epoch - b.epoch);
    lossChart.update([series(records, "loss", "training loss", TRAIN_COLOR), series(records, "val_loss", "validation loss", VAL_COLOR)]);
    accChart.update(regression
      ? [series(records, "mae", "training MAE", TRAIN_COLOR), series(records, "val_mae", "validation MAE", VAL_COLOR)]
      : [series(records, "accuracy", "training accuracy", TRAIN_COLOR), series(records, "val_accuracy", "validation accuracy", VAL_COLOR)]);
  };
  const drawJob = (next) => {
    job = next;
    replace(head,
      h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "← Jobs")),
      h("div", { class: "page-head" },
        h("h1", {}, jobTitle(job)), statusBadge(job.status), h("span", { class: "spacer" }),
        actions(job, drawJob, report)),
      h("p", { class: "muted mono small" }, job.id),
      h("div", { class: "head-progress" }, progressCell(job.progress), connection));
    replace(side, resultCard(job), specSummary(job), timeline(job));
  };
  drawJob(job);
  drawCharts();
  replace(root, head, message,
    h("div", { class: "job-grid" },
      h("section", { class: "charts", "aria-label": "Learning curves" }, lossChart.element, accChart.element),
      side));

  followJob(jobId, {
    epoch: (record) => {
      epochs.set(record.epoch, record);
      drawCharts();
      if (record.epoch > job.progress.epoch) drawJob({ ...job, progress: { ...job.progress, epoch: record.epoch } });
    },
    state: async () => {
      try { drawJob(await getJson(`/v1/jobs/${jobId}`, { signal })); } catch { /* the next state retries */ }
    },
    connection: (text) => { connection.textContent = text === "live" ? "● live" : text; },
  }, signal).then(() => { if (!signal.aborted) connection.textContent = ""; });
}
