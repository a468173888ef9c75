// Line charts drawn as SVG: axes with ticks, grid lines, a legend, and one <circle> per point
// (data-epoch, data-series) so that every epoch that arrived can be seen, hovered and counted.

import { h, replace, svg } from "./dom.js";

const WIDTH = 640, HEIGHT = 300;
const MARGIN = { top: 14, right: 18, bottom: 44, left: 62 };
const PLOT_W = WIDTH - MARGIN.left - MARGIN.right, PLOT_H = HEIGHT - MARGIN.top - MARGIN.bottom;

/** About `count` round tick values (steps of 1, 2 or 5 times a power of ten) across [lo, hi]. */
export function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count, power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) ticks.push(+v.toFixed(12));
  return ticks;
}

function yDomain(values, bounds) {
  if (!values.length) return [0, 1];
  let lo = Math.min(...values), hi = Math.max(...values);
  const pad = (hi - lo || Math.abs(hi) || 1) * 0.08;
  lo -= pad; hi += pad;
  if (bounds) { lo = Math.max(lo, bounds[0]); hi = Math.min(hi, bounds[1]); }
  const ticks = niceTicks(lo, hi);
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : 0;
  // Widen to whole ticks so that the top and bottom grid lines frame the data.
  if (!step) return [lo, hi];
  const [min, max] = bounds ?? [-Infinity, Infinity];
  return [Math.max(min, Math.floor(lo / step) * step), Math.min(max, Math.ceil(hi / step) * step)];
}

function xTicks(maxEpoch) {
  if (maxEpoch <= 12) return Array.from({ length: maxEpoch }, (_, i) => i + 1);
  return niceTicks(1, maxEpoch, 8).filter((t) => Number.isInteger(t) && t >= 1);
}

function tickLabel(value, step) {
  const digits = step >= 1 ? 0 : Math.min(4, Math.ceil(-Math.log10(step)));
  return value.toFixed(digits);
}

function axes(xs, ys, xScale, yScale, labels) {
  const group = svg("g", { class: "axes" });
  const yStep = ys.length > 1 ? ys[1] - ys[0] : 1;
  for (const value of ys) {
    const y = yScale(value);
    group.append(
      svg("line", { class: "grid", x1: MARGIN.left, x2: MARGIN.left + PLOT_W, y1: y, y2: y }),
      svg("text", { class: "tick", x: MARGIN.left - 8, y: y + 4, "text-anchor": "end" }, tickLabel(value, yStep)),
    );
  }
  const bottom = MARGIN.top + PLOT_H;
  for (const value of xs) {
    const x = xScale(value);
    group.append(
      svg("line", { class: "tick-mark", x1: x, x2: x, y1: bottom, y2: bottom + 5 }),
      svg("text", { class: "tick", x, y: bottom + 19, "text-anchor": "middle" }, String(value)),
    );
  }
  group.append(
    svg("line", { class: "axis", x1: MARGIN.left, x2: MARGIN.left + PLOT_W, y1: bottom, y2: bottom }),
    svg("line", { class: "axis", x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: bottom }),
    svg("text", { class: "axis-label", x: MARGIN.left + PLOT_W / 2, y: HEIGHT - 6, "text-anchor": "middle" }, labels.x),
    svg("text", {
      class: "axis-label", x: 0, y: 0, "text-anchor": "middle",
      transform: `translate(14 ${MARGIN.top + PLOT_H / 2}) rotate(-90)`,
    }, labels.y),
  );
  return group;
}

function seriesPath(series, xScale, yScale, format) {
  const points = series.points.filter((p) => typeof p.y === "number" && Number.isFinite(p.y));
  const group = svg("g", { class: "series", "data-series": series.key });
  if (points.length > 1) {
    const d = points.map((p, i) => `${i ? "L" : "M"}${xScale(p.x).toFixed(1)},${yScale(p.y).toFixed(1)}`).join("");
    group.append(svg("path", {
      d, fill: "none", stroke: series.color, "stroke-width": series.dashed ? 1.6 : 2.2,
      "stroke-dasharray": series.dashed ? "5 4" : null, "stroke-opacity": series.dashed ? 0.75 : 1,
      "stroke-linejoin": "round",
    }));
  }
  if (series.markers !== false) {
    for (const p of points) {
      group.append(svg("circle", {
        cx: xScale(p.x).toFixed(1), cy: yScale(p.y).toFixed(1), r: 3.5, fill: series.color,
        "data-epoch": p.x, "data-series": series.key, "data-job": series.job,
      }, svg("title", {}, `${series.tooltip ?? series.label}, epoch ${p.x}: ${format(p.y)}`)));
    }
  }
  return group;
}

function legend(series) {
  const shown = series.filter((s) => s.legend !== false);
  return h("ul", { class: "legend", "aria-label": "Legend" }, shown.map((s) => h("li", {},
    svg("svg", { width: 26, height: 10, "aria-hidden": "true", viewBox: "0 0 26 10" },
      svg("line", {
        x1: 1, x2: 25, y1: 5, y2: 5, stroke: s.color, "stroke-width": 2.5,
        "stroke-dasharray": s.dashed ? "5 4" : null,
      }),
      s.markers === false ? null : svg("circle", { cx: 13, cy: 5, r: 3.5, fill: s.color })),
    s.label)));
}

/**
 * A chart that redraws itself from its series: {key, label, color, dashed, markers, job, points: [{x, y}]}.
 * options: {title, yLabel, xMax (epochs planned), bounds ([lo, hi] for y), format(value)}.
 */
export class LineChart {
  constructor(options) {
    this.options = { format: (v) => v.toFixed(4), ...options };
    this.series = [];
    this.plot = h("div", { class: "chart-plot" });
    this.legend = h("div", {});
    this.element = h("figure", { class: "chart", "data-chart": options.key },
      h("figcaption", {}, options.title), this.legend, this.plot);
  }

  update(series) {
    this.series = series;
    const { yLabel, bounds, format } = this.options;
    const values = series.flatMap((s) => s.points.map((p) => p.y)).filter((v) => typeof v === "number" && Number.isFinite(v));
    const maxX = Math.max(this.options.xMax ?? 1, ...series.flatMap((s) => s.points.map((p) => p.x)), 2);
    const [lo, hi] = yDomain(values, bounds);
    const xScale = (x) => MARGIN.left + ((x - 1) / (maxX - 1)) * PLOT_W;
    const yScale = (y) => MARGIN.top + (1 - (y - lo) / (hi - lo || 1)) * PLOT_H;
    const ys = niceTicks(lo, hi).filter((t) => t >= lo - 1e-9 && t <= hi + 1e-9);
    const chart = svg("svg", {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": this.options.title,
      preserveAspectRatio: "xMidYMid meet",
    }, axes(xTicks(maxX), ys, xScale, yScale, { x: "epoch", y: yLabel }));
    for (const s of series) chart.append(seriesPath(s, xScale, yScale, format));
    if (!values.length) {
      chart.append(svg("text", {
        class: "empty", x: MARGIN.left + PLOT_W / 2, y: MARGIN.top + PLOT_H / 2, "text-anchor": "middle",
      }, "Waiting for the first epoch…"));
    }
    replace(this.plot, chart);
    replace(this.legend, legend(series));
  }
}

export const PALETTE = ["#2563eb", "#ea580c", "#059669", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"];
