/* Small inline-SVG charts for the callaudit UI: no library, no network.
 * Every function returns an <svg> element; colours come from CSS classes (style.css). */
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) node.setAttribute(k, String(v));
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(width, height, label) {
    return el("svg", {
      viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": label,
      preserveAspectRatio: "xMidYMid meet", class: "chart",
    });
  }

  function fmt(value, digits) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    return Number(value).toFixed(digits === undefined ? 0 : digits);
  }

  /* Horizontal bars: rows = [{label, value, note}] */
  function hbar(rows, opts) {
    const o = Object.assign({ width: 560, row: 26, labelWidth: 170, title: "bar chart", unit: "" }, opts || {});
    const height = Math.max(1, rows.length) * o.row + 8;
    const root = svg(o.width, height, o.title);
    const max = Math.max(1, ...rows.map((r) => r.value || 0));
    const barSpace = o.width - o.labelWidth - 70;
    rows.forEach((r, i) => {
      const y = 4 + i * o.row;
      root.appendChild(el("text", { x: o.labelWidth - 8, y: y + o.row * 0.62, class: "axis-label", "text-anchor": "end" }, r.label));
      const w = Math.max(2, (barSpace * (r.value || 0)) / max);
      const bar = el("rect", { x: o.labelWidth, y: y + 3, width: w, height: o.row - 8, rx: 3, class: r.cls || "bar" });
      bar.appendChild(el("title", {}, `${r.label}: ${r.value}${o.unit}`));
      root.appendChild(bar);
      root.appendChild(el("text", { x: o.labelWidth + w + 6, y: y + o.row * 0.62, class: "value-label" }, r.note || `${r.value}${o.unit}`));
    });
    if (!rows.length) root.appendChild(el("text", { x: 8, y: 20, class: "axis-label" }, "no data"));
    return root;
  }

  /* Line chart: series = [{name, cls, points: [{x, y, tip}]}]; x numeric, y within [yMin, yMax]. */
  function line(series, opts) {
    const o = Object.assign({ width: 560, height: 200, yMin: 0, yMax: 1, title: "line chart", xLabel: (x) => fmt(x, 0), yTicks: null, xTicks: null, zeroLine: false }, opts || {});
    const pad = { l: 46, r: 26, t: 26, b: 30 };  // top: room for the legend
    const root = svg(o.width, o.height, o.title);
    const xs = series.flatMap((s) => s.points.map((p) => p.x));
    const xMin = o.xMin !== undefined ? o.xMin : Math.min(...xs, 0);
    const xMax = o.xMax !== undefined ? o.xMax : Math.max(...xs, 1);
    const X = (x) => pad.l + ((x - xMin) / (xMax - xMin || 1)) * (o.width - pad.l - pad.r);
    const Y = (y) => pad.t + (1 - (y - o.yMin) / (o.yMax - o.yMin || 1)) * (o.height - pad.t - pad.b);
    const yTicks = o.yTicks || [o.yMin, (o.yMin + o.yMax) / 2, o.yMax];
    for (const t of yTicks) {
      root.appendChild(el("line", { x1: pad.l, x2: o.width - pad.r, y1: Y(t.v !== undefined ? t.v : t), y2: Y(t.v !== undefined ? t.v : t), class: "grid" }));
      root.appendChild(el("text", { x: pad.l - 6, y: Y(t.v !== undefined ? t.v : t) + 4, class: "axis-label", "text-anchor": "end" }, t.label !== undefined ? t.label : fmt(t, 1)));
    }
    if (o.zeroLine) root.appendChild(el("line", { x1: pad.l, x2: o.width - pad.r, y1: Y(0), y2: Y(0), class: "zero" }));
    const xTicks = o.xTicks || [xMin, (xMin + xMax) / 2, xMax];
    for (const t of xTicks) {
      root.appendChild(el("text", { x: X(t), y: o.height - 8, class: "axis-label", "text-anchor": "middle" }, o.xLabel(t)));
    }
    for (const s of series) {
      const pts = s.points.filter((p) => p.y !== null && p.y !== undefined);
      if (pts.length > 1) {
        root.appendChild(el("polyline", { points: pts.map((p) => `${X(p.x)},${Y(p.y)}`).join(" "), class: `line ${s.cls || ""}` }));
      }
      for (const p of pts) {
        const dot = el("circle", { cx: X(p.x), cy: Y(p.y), r: 4.5, class: `dot ${s.cls || ""}` });
        dot.appendChild(el("title", {}, p.tip || `${s.name}: ${fmt(p.y, 2)}`));
        root.appendChild(dot);
      }
    }
    let lx = pad.l;
    for (const s of series) {
      root.appendChild(el("rect", { x: lx, y: 0, width: 10, height: 10, class: `swatch ${s.cls || ""}` }));
      root.appendChild(el("text", { x: lx + 14, y: 9, class: "axis-label" }, s.name));
      lx += 24 + s.name.length * 7;
    }
    return root;
  }

  /* Vertical columns per category along x: rows = [{label, value}] */
  function columns(rows, opts) {
    const o = Object.assign({ width: 560, height: 180, title: "column chart" }, opts || {});
    const pad = { l: 34, r: 8, t: 12, b: 30 };
    const root = svg(o.width, o.height, o.title);
    const max = Math.max(1, ...rows.map((r) => r.value || 0));
    const slot = (o.width - pad.l - pad.r) / Math.max(1, rows.length);
    const Y = (v) => pad.t + (1 - v / max) * (o.height - pad.t - pad.b);
    for (const t of [...new Set([0, Math.round(max / 2), max])]) {  // whole numbers: these are counts
      root.appendChild(el("line", { x1: pad.l, x2: o.width - pad.r, y1: Y(t), y2: Y(t), class: "grid" }));
      root.appendChild(el("text", { x: pad.l - 5, y: Y(t) + 4, class: "axis-label", "text-anchor": "end" }, fmt(t, 0)));
    }
    const every = Math.ceil(rows.length / 8);
    rows.forEach((r, i) => {
      const x = pad.l + i * slot + slot * 0.15;
      const h = Y(0) - Y(r.value || 0);
      const bar = el("rect", { x, y: Y(r.value || 0), width: slot * 0.7, height: Math.max(h, 0.5), rx: 2, class: "bar" });
      bar.appendChild(el("title", {}, `${r.label}: ${r.value}`));
      root.appendChild(bar);
      if (i % every === 0) {
        root.appendChild(el("text", { x: x + slot * 0.35, y: o.height - 10, class: "axis-label", "text-anchor": "middle" }, r.short || r.label));
      }
    });
    if (!rows.length) root.appendChild(el("text", { x: pad.l + 8, y: 30, class: "axis-label" }, "no data"));
    return root;
  }

  /* Who speaks when: one lane per role, a bar per turn; click handler gets the turn. */
  function timeline(turns, duration, roles, onPick) {
    const width = 560, lane = 22, pad = { l: 70, r: 22, t: 6, b: 22 };
    const height = pad.t + roles.length * lane + pad.b;
    const root = svg(width, height, "speaker timeline");
    const X = (t) => pad.l + (t / (duration || 1)) * (width - pad.l - pad.r);
    roles.forEach((role, i) => {
      root.appendChild(el("text", { x: pad.l - 8, y: pad.t + i * lane + 15, class: "axis-label", "text-anchor": "end" }, role));
      root.appendChild(el("line", { x1: pad.l, x2: width - pad.r, y1: pad.t + i * lane + 11, y2: pad.t + i * lane + 11, class: "grid" }));
    });
    for (const t of turns) {
      const i = Math.max(0, roles.indexOf(t.role));
      const r = el("rect", { x: X(t.start), y: pad.t + i * lane + 3, width: Math.max(2, X(t.end) - X(t.start)), height: lane - 8, rx: 2, class: `turn role-${t.role}` });
      r.appendChild(el("title", {}, `${t.role} ${t.start.toFixed(1)}s: ${t.text.slice(0, 80)}`));
      if (onPick) r.addEventListener("click", () => onPick(t));
      root.appendChild(r);
    }
    for (const f of [0, 0.25, 0.5, 0.75, 1]) {
      root.appendChild(el("text", { x: X(f * duration), y: height - 6, class: "axis-label", "text-anchor": "middle" }, clock(f * duration)));
    }
    return root;
  }

  function clock(seconds) {
    const s = Math.max(0, Math.round(seconds || 0));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  return { hbar, line, columns, timeline, clock, fmt };
})();
