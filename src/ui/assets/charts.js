// llmbench dashboard: small interactive SVG line charts (hover values, legend toggles, links).
"use strict";
const NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];

function el(tag, attrs, parent) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}

function niceTicks(lo, hi, n) {
  if (!(hi > lo)) { hi = lo + 1; }
  const step0 = (hi - lo) / Math.max(1, n);
  const mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= step0) || step0;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(+v.toPrecision(12));
  // One more tick above the highest value, so the top of the data is labelled.
  if (!ticks.length || ticks[ticks.length - 1] < hi - step * 1e-9) ticks.push(+(Math.ceil(hi / step) * step).toPrecision(12));
  return ticks;
}

// A tick's label with as many decimals as its axis step needs, so that neighbouring ticks on a
// narrow range (10.00, 10.02, ...) never print alike.
function fmtTick(v, step) {
  if (Math.abs(v) >= 1e4 || !(step > 0)) return fmtNum(v);
  const d = Math.min(6, Math.max(0, Math.ceil(-Math.log10(step) - 1e-9)));
  return v.toFixed(d);
}

// Dash patterns by series: a series that lies on another (a p99 equal to its p50) still shows.
const DASHES = ["", "7 4", "2 3", "10 3 2 3"];

function fmtNum(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "-";
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(2) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
  if (a >= 100) return v.toFixed(0);
  if (Number.isInteger(v)) return String(v);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

// opts: {title, xLabel, yLabel, series: [{name, points: [{x, y, href?, label?}]}],
//        xFormat?, yFormat?, width?, height?, yZero?}
function lineChart(parent, opts) {
  const W = opts.width || 560, H = opts.height || 300;
  const m = { l: 58, r: 16, t: 12, b: 40 };
  const fx = opts.xFormat || fmtNum, fy = opts.yFormat || fmtNum;
  // Axis labels: the caller's format, or one with the decimals the step needs.
  const tx = opts.xFormat || fmtTick, ty = opts.yFormat || fmtTick;
  const box = document.createElement("div");
  box.className = "chart";
  if (opts.id) box.id = opts.id;
  const title = document.createElement("div");
  title.className = "title";
  title.textContent = opts.title || "";
  box.appendChild(title);
  const svg = el("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img" }, box);
  const legend = document.createElement("div");
  legend.className = "legend";
  box.appendChild(legend);
  parent.appendChild(box);
  const series = opts.series.filter(s => s.points.length > 0);
  series.forEach((s, i) => {
    s.color = s.color || PALETTE[i % PALETTE.length];
    s.dash = DASHES[i % DASHES.length];
    s.visible = true;
  });
  if (series.length === 0) {
    el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, svg).textContent = "no data";
    return box;
  }
  const plot = el("g", {}, svg);

  function draw() {
    plot.innerHTML = "";
    const vis = series.filter(s => s.visible);
    const pts = vis.flatMap(s => s.points);
    let x0 = Math.min(...pts.map(p => p.x)), x1 = Math.max(...pts.map(p => p.x));
    let y0 = Math.min(...pts.map(p => p.y)), y1 = Math.max(...pts.map(p => p.y));
    if (!pts.length) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
    if (opts.yZero !== false) y0 = Math.min(0, y0);
    if (x1 === x0) { x1 = x0 + 1; }
    if (y1 === y0) { y1 = y0 + 1; }
    const yt = niceTicks(y0, y1, 5), xt = niceTicks(x0, x1, 6);
    const ys = yt.length > 1 ? yt[1] - yt[0] : 0, xs = xt.length > 1 ? xt[1] - xt[0] : 0;
    y0 = Math.min(y0, yt[0]); y1 = Math.max(y1, yt[yt.length - 1]);
    const sx = v => m.l + (v - x0) / (x1 - x0) * (W - m.l - m.r);
    const sy = v => H - m.b - (v - y0) / (y1 - y0) * (H - m.t - m.b);
    for (const t of yt) {
      el("line", { x1: m.l, x2: W - m.r, y1: sy(t), y2: sy(t), class: "grid" }, plot);
      el("text", { x: m.l - 6, y: sy(t) + 4, "text-anchor": "end" }, plot).textContent = ty(t, ys);
    }
    for (const t of xt) {
      if (t < x0 || t > x1) continue;
      el("line", { x1: sx(t), x2: sx(t), y1: H - m.b, y2: H - m.b + 4, class: "axis" }, plot);
      el("text", { x: sx(t), y: H - m.b + 16, "text-anchor": "middle" }, plot).textContent = tx(t, xs);
    }
    el("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, class: "axis" }, plot);
    el("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b, class: "axis" }, plot);
    el("text", { x: (m.l + W - m.r) / 2, y: H - 6, "text-anchor": "middle" }, plot).textContent = opts.xLabel || "";
    el("text", { x: 12, y: (m.t + H - m.b) / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})` }, plot).textContent = opts.yLabel || "";
    for (const s of vis) {
      el("polyline", {
        points: s.points.map(p => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" "),
        fill: "none", stroke: s.color, "stroke-width": 1.8, "stroke-dasharray": s.dash,
        class: "series", "data-series": s.name,
      }, plot);
      const g = el("g", { "data-series": s.name }, plot);
      const r = s.points.length > 60 ? 1.6 : 3.2;
      for (const p of s.points) {
        const parentG = p.href ? el("a", { href: p.href }, g) : g;
        const c = el("circle", { cx: sx(p.x), cy: sy(p.y), r, fill: s.color, class: "pt" }, parentG);
        c.__p = { s, p, px: sx(p.x), py: sy(p.y) };
      }
    }
    plot.__all = [...plot.querySelectorAll("circle.pt")].map(c => c.__p);
    plot.__cursor = el("line", { class: "cursor", y1: m.t, y2: H - m.b, x1: -10, x2: -10 }, plot);
    plot.__mark = el("circle", { class: "mark", r: 5, fill: "none", stroke: "#111827", "stroke-width": 2, cx: -10, cy: -10 }, plot);
  }

  const tip = document.getElementById("tip");
  svg.addEventListener("mousemove", ev => {
    const rect = svg.getBoundingClientRect();
    const mx = (ev.clientX - rect.left) * W / rect.width, my = (ev.clientY - rect.top) * H / rect.height;
    let best = null, bd = Infinity;
    for (const q of plot.__all || []) {
      const d = Math.hypot(q.px - mx, (q.py - my) * 0.5);
      if (d < bd) { bd = d; best = q; }
    }
    if (!best || bd > 60) { tip.hidden = true; plot.__mark.setAttribute("cx", -10); return; }
    plot.__cursor.setAttribute("x1", best.px); plot.__cursor.setAttribute("x2", best.px);
    plot.__mark.setAttribute("cx", best.px); plot.__mark.setAttribute("cy", best.py);
    const head = best.p.label ? best.p.label + "\n" : "";
    tip.textContent = `${head}${best.s.name}\n${opts.xLabel || "x"}: ${fx(best.p.x)}\n${opts.yLabel || "y"}: ${fy(best.p.y)}`;
    tip.hidden = false;
    tip.style.left = (ev.clientX + 14) + "px";
    tip.style.top = (ev.clientY + 10) + "px";
  });
  svg.addEventListener("mouseleave", () => { tip.hidden = true; });

  for (const s of series) {
    const item = document.createElement("span");
    // The swatch shows the line as drawn: its colour and its dashes.
    item.innerHTML = `<svg width="22" height="10"><line x1="1" y1="5" x2="21" y2="5" stroke="${s.color}" stroke-width="2.4" stroke-dasharray="${s.dash}"/></svg>`;
    item.appendChild(document.createTextNode(s.name));
    item.title = "show or hide this series";
    item.addEventListener("click", () => {
      if (s.visible && series.filter(t => t.visible).length === 1) return;
      s.visible = !s.visible;
      item.classList.toggle("off", !s.visible);
      draw();
    });
    legend.appendChild(item);
  }
  draw();
  return box;
}

// A sorted sample as CDF points (at most `max` of them): x = value, y = percentile.
function cdfPoints(values, max) {
  const v = values.filter(x => x !== null && x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b);
  if (!v.length) return [];
  const n = Math.min(max || 200, v.length), out = [];
  for (let i = 0; i < n; i++) {
    const k = n === 1 ? v.length - 1 : Math.round(i * (v.length - 1) / (n - 1));
    out.push({ x: v[k], y: 100 * (k + 1) / v.length });
  }
  return out;
}
