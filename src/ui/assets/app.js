// llmbench dashboard: runs, one run, trends across runs, two runs compared. Hash routes:
// #/ (runs), #/run/ID, #/trend?target=&model=&metric=, #/compare/BASE/NEW.
"use strict";
const $main = document.getElementById("main");
const METRICS = {
  ttft_p50_ms: "TTFT p50 (ms)", tpot_p50_ms: "TPOT p50 (ms)", e2e_p50_ms: "E2E p50 (ms)",
  output_tokens_per_s: "output tok/s", requests_per_s: "requests/s",
};

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function num(v, d) { return v === null || v === undefined ? "-" : Number(v).toFixed(d ?? 1); }
function pct(v) { return v === null || v === undefined ? "-" : (100 * v).toFixed(1) + " %"; }
async function api(path) {
  const r = await fetch(path);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}
function query(h) {
  const i = h.indexOf("?");
  return new URLSearchParams(i < 0 ? "" : h.slice(i + 1));
}
function section(title, parent) {
  const h = document.createElement("h2");
  h.textContent = title;
  (parent || $main).appendChild(h);
  return h;
}
function html(s, parent) {
  const d = document.createElement("div");
  d.innerHTML = s;
  (parent || $main).appendChild(d);
  return d;
}
// The trend's key: a target URL, or the built-in simulator (each run of it has its own port).
const SIM = "built-in simulator";
function targetKey(r) { return r.simulated ? SIM : r.target; }
function tagsHtml(tags) {
  return Object.entries(tags || {}).map(([k, v]) => `<span class="tag">${esc(k)}=${esc(v)}</span>`).join("");
}

// ---------- runs ----------
async function viewRuns(q) {
  const f = { target: q.get("target") || "", model: q.get("model") || "", backend: q.get("backend") || "", tag: q.get("tag") || "" };
  const sort = q.get("sort") || "started_at", dir = q.get("dir") || "desc";
  const params = new URLSearchParams(Object.entries(f).filter(([, v]) => v));
  const rows = await api("/api/runs?" + params);
  $main.innerHTML = `<h1>Runs</h1>
  <form class="filters" id="filters">
    ${["target", "model", "backend", "tag"].map(k => `<label>${k}${k === "tag" ? " (NAME=VALUE)" : ""}<input name="${k}" value="${esc(f[k])}"></label>`).join("")}
    <label>sort by<select name="sort">${[["started_at", "date"], ...Object.entries(METRICS)].map(([k, l]) => `<option value="${k}"${k === sort ? " selected" : ""}>${esc(l)}</option>`).join("")}</select></label>
    <label>order<select name="dir"><option value="desc"${dir === "desc" ? " selected" : ""}>descending</option><option value="asc"${dir === "asc" ? " selected" : ""}>ascending</option></select></label>
    <button>Apply</button> <button type="button" id="cmp">Compare the two checked</button>
  </form>`;
  const key = r => sort === "started_at" ? r.started_at : (r.summary && r.summary[0] ? r.summary[0][sort] : null);
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * (dir === "asc" ? 1 : -1);
  });
  const body = rows.map(r => {
    const s = (r.summary && r.summary[0]) || {};
    const trend = `#/trend?target=${encodeURIComponent(targetKey(r))}&model=${encodeURIComponent(r.model)}`;
    return `<tr data-id="${esc(r.id)}"><td><input type="checkbox" class="pick" value="${esc(r.id)}"></td>
      <td><a href="#/run/${encodeURIComponent(r.id)}">${esc(r.id)}</a></td><td>${esc(r.started_at.slice(0, 19).replace("T", " "))}</td>
      <td class="${r.status === "completed" ? "" : "bad"}">${esc(r.status)}</td><td>${esc(r.target)}</td><td>${esc(r.backend)}</td><td>${esc(r.model)}</td>
      <td class="num">${r.scenarios}</td><td class="num">${num(s.ttft_p50_ms)}</td><td class="num">${num(s.e2e_p50_ms)}</td>
      <td class="num">${num(s.output_tokens_per_s)}</td><td class="num">${num(s.requests_per_s, 2)}</td><td>${tagsHtml(r.tags)}</td>
      <td><a href="${trend}">trend</a></td></tr>`;
  }).join("");
  html(rows.length ? `<table id="runs"><thead><tr><th></th><th>id</th><th>started (UTC)</th><th>status</th><th>target</th><th>backend</th><th>model</th>
    <th class="num">scenarios</th><th class="num">TTFT p50 ms</th><th class="num">E2E p50 ms</th><th class="num">out tok/s</th><th class="num">req/s</th><th>tags</th><th></th></tr></thead>
    <tbody>${body}</tbody></table><p class="muted">${rows.length} run(s); figures are each run's first scenario.</p>`
    : `<p class="muted">No runs match.</p>`);
  document.getElementById("filters").addEventListener("submit", ev => {
    ev.preventDefault();
    const p = new URLSearchParams([...new FormData(ev.target)].filter(([, v]) => v));
    location.hash = "#/?" + p;
  });
  document.getElementById("cmp").addEventListener("click", () => {
    const ids = [...document.querySelectorAll(".pick:checked")].map(c => c.value);
    if (ids.length !== 2) { alert("Check exactly two runs (the older one is the base)."); return; }
    const [a, b] = ids.map(id => rows.find(r => r.id === id)).sort((x, y) => x.started_at < y.started_at ? -1 : 1);
    location.hash = `#/compare/${encodeURIComponent(a.id)}/${encodeURIComponent(b.id)}`;
  });
}

// ---------- one run ----------
function distCells(d) { return d ? `<td class="num">${num(d.p50)}</td><td class="num">${num(d.p99)}</td>` : `<td class="num">-</td><td class="num">-</td>`; }

async function viewRun(id) {
  const r = await api("/api/runs/" + encodeURIComponent(id));
  const t = r.target || {};
  const trend = `#/trend?target=${encodeURIComponent(t.simulated ? SIM : t.url)}&model=${encodeURIComponent(t.model)}`;
  $main.innerHTML = `<h1>Run ${esc(r.run_id)}</h1>`;
  const sys = r.system || {};
  html(`<div class="card"><dl class="facts">
    <dt>status</dt><dd class="${r.status === "completed" ? "" : "bad"}">${esc(r.status)}${r.failure ? " — " + esc(r.failure) : ""}</dd>
    <dt>started</dt><dd>${esc(r.started_at)}</dd><dt>finished</dt><dd>${esc(r.finished_at || "-")}</dd>
    <dt>target</dt><dd>${esc(t.url)}${t.simulated ? " (built-in simulator)" : ""}</dd>
    <dt>backend</dt><dd>${esc(t.backend)}</dd><dt>model</dt><dd>${esc(t.model)}</dd>
    <dt>machine</dt><dd>${esc(sys.cpu ? `${sys.cpu.model || "?"}, ${sys.cpu.logical_cores || "?"} cores` : "unknown")}</dd>
    <dt>trend</dt><dd><a href="${trend}" id="trend-link">this target and model across runs</a></dd></dl></div>`);
  const sc = r.scenarios || [];

  section("Trust verdict");
  html(sc.map(s => {
    const c = s.client;
    if (!c) return `<div class="muted">${esc(s.name)}: not judged (no client load recorded)</div>`;
    return c.trustworthy
      ? `<div class="ok verdict"><b>${esc(s.name)}: trustworthy</b> — the client kept up${c.cpu_share !== null && c.cpu_share !== undefined ? ` (client CPU ${pct(c.cpu_share)} of its cores)` : ""}.</div>`
      : `<div class="alert verdict"><b>${esc(s.name)}: NOT TRUSTWORTHY</b><ul>${(c.reasons || []).map(x => `<li>${esc(x)}</li>`).join("")}</ul></div>`;
  }).join(""));

  section("Scenarios");
  html(`<table id="scenarios"><thead><tr><th>scenario</th><th class="num">scheduled</th><th class="num">succeeded</th><th class="num">req/s</th><th class="num">out tok/s</th>
    <th class="num">TTFT p50</th><th class="num">TTFT p99</th><th class="num">TPOT p50</th><th class="num">TPOT p99</th><th class="num">ITL p50</th><th class="num">ITL p99</th>
    <th class="num">E2E p50</th><th class="num">E2E p99</th><th>SLO</th></tr></thead><tbody>${sc.map(s => {
      const m = s.metrics || {};
      const slo = s.slo ? (s.slo.passed ? `<span class="good">PASS</span>` : `<span class="bad">FAIL</span>`) : "-";
      return `<tr><td>${esc(s.name)}</td><td class="num">${s.outcomes.scheduled}</td><td class="num">${s.outcomes.succeeded || 0}</td>
        <td class="num">${num(m.requests_per_s, 2)}</td><td class="num">${num(m.output_tokens_per_s)}</td>${distCells(m.ttft_ms)}${distCells(m.tpot_ms)}${distCells(m.itl_ms)}${distCells(m.e2e_ms)}<td>${slo}</td></tr>`;
    }).join("")}</tbody></table><p class="muted">Latencies in ms.</p>`);

  section("Outcomes and top errors");
  html(sc.map(s => {
    const o = Object.entries(s.outcomes).filter(([k, v]) => typeof v === "number" && k !== "scheduled" && v > 0);
    const errs = (s.errors || []).slice(0, 5);
    return `<h3>${esc(s.name)}</h3><table class="outcomes"><tr>${o.map(([k]) => `<th>${esc(k)}</th>`).join("")}</tr><tr>${o.map(([, v]) => `<td class="num">${v}</td>`).join("")}</tr></table>
      ${errs.length ? `<table><tr><th class="num">count</th><th>error message</th></tr>${errs.map(e => `<tr><td class="num">${e.count}</td><td>${esc(e.message)}</td></tr>`).join("")}</table>` : `<p class="muted">No errors.</p>`}`;
  }).join(""));

  section("Latency distributions");
  const charts = html("");
  for (const [key, label] of [["ttft_ms", "TTFT"], ["tpot_ms", "TPOT"], ["e2e_ms", "E2E latency"]]) {
    const series = sc.map(s => {
      const smp = s.samples && s.samples[key];
      if (smp && smp.length) return { name: s.name, points: cdfPoints(smp, 200) };
      const d = s.metrics && s.metrics[key];
      return { name: s.name, points: d ? [[d.min, 0], [d.p50, 50], [d.p90, 90], [d.p95, 95], [d.p99, 99], [d.max, 100]].map(([x, y]) => ({ x, y })) : [] };
    });
    lineChart(charts, { id: "cdf-" + key, title: `${label}: share of requests at or below (CDF)`, xLabel: `${label} (ms)`, yLabel: "percentile", series, yZero: true });
  }

  const P = [["p50", 50], ["p90", 90], ["p95", 95], ["p99", 99]];
  for (const s of sc) {
    const m = s.metrics || {};
    lineChart(charts, {
      id: "pctl-" + s.name, title: `${s.name}: latency percentiles`, xLabel: "percentile", yLabel: "ms",
      series: [["ttft_ms", "TTFT"], ["tpot_ms", "TPOT"], ["itl_ms", "ITL"], ["e2e_ms", "E2E"]]
        .map(([k, l]) => ({ name: l, points: m[k] ? P.map(([pk, x]) => ({ x, y: m[k][pk] })) : [] })),
    });
  }

  section("Metrics over time");
  const over = html("");
  let anyTime = false;
  for (const s of sc) {
    const tl = s.timeline;
    if (!tl || !tl.bins || !tl.bins.length) continue;
    anyTime = true;
    const w = tl.width_ms / 1000;
    const at = b => b.start_ms / 1000 + w / 2;
    const line = (name, f) => ({ name, points: tl.bins.filter(b => f(b) !== null && f(b) !== undefined).map(b => ({ x: at(b), y: f(b) })) });
    const sub = `${s.name} (${fmtNum(w)} s bins)`;
    lineChart(over, {
      id: "time-lat-" + s.name, title: `${sub}: latency over time`, xLabel: "time since run start (s)", yLabel: "ms",
      series: [line("TTFT p50", b => b.ttft_p50_ms), line("TTFT p99", b => b.ttft_p99_ms), line("ITL p50", b => b.itl_p50_ms), line("ITL p99", b => b.itl_p99_ms)],
    });
    lineChart(over, {
      id: "time-tput-" + s.name, title: `${sub}: output tokens per second`, xLabel: "time since run start (s)", yLabel: "tok/s",
      series: [line("output tok/s", b => b.output_tokens_per_s)],
    });
    lineChart(over, {
      id: "time-load-" + s.name, title: `${sub}: requests in flight and completed`, xLabel: "time since run start (s)", yLabel: "requests, requests/s",
      series: [line("in flight (mean)", b => b.in_flight), line("succeeded/s", b => b.requests_per_s), line("failed/s", b => b.failed / w)],
    });
  }
  for (const s of sc) {
    const smp = (s.resources && s.resources.samples) || [];
    if (!smp.length) continue;
    anyTime = true;
    const line = (name, f) => ({ name, points: smp.filter(p => f(p) !== null && f(p) !== undefined).map(p => ({ x: p.t_ms / 1000, y: f(p) })) });
    const gpu = (p, k) => p.gpus && p.gpus.length ? p.gpus.reduce((a, g) => a + (g[k] || 0), 0) / p.gpus.length : null;
    lineChart(over, {
      id: "time-" + s.name, title: `${s.name}: resources during the run`, xLabel: "time (s)", yLabel: "%",
      series: [line("host CPU %", p => p.host_cpu_pct), line("server CPU %", p => p.server_cpu_pct), line("GPU util %", p => gpu(p, "util_pct"))],
    });
  }
  if (sc.length > 1) {
    const pts = k => sc.map((s, i) => ({ x: i + 1, y: (s.metrics || {})[k], label: s.name })).filter(p => p.y !== null && p.y !== undefined);
    lineChart(over, { id: "steps", title: "Throughput by scenario (in run order)", xLabel: "scenario", yLabel: "per second",
      series: [{ name: "output tok/s", points: pts("output_tokens_per_s") }, { name: "requests/s", points: pts("requests_per_s") }] });
    anyTime = true;
  }
  if (!anyTime) html(`<p class="muted">No timeline or resource samples in this run.</p>`, over);

  const turns = sc.filter(s => s.turns && s.turns.length);
  if (turns.length) {
    section("Per turn");
    html(turns.map(s => `<h3>${esc(s.name)}</h3><table><tr><th class="num">turn</th><th class="num">requests</th><th class="num">TTFT p50</th><th class="num">TTFT p99</th><th class="num">E2E p50</th><th class="num">E2E p99</th></tr>
      ${s.turns.map(u => { const g = u.stats || {}; return `<tr><td class="num">${u.turn}</td><td class="num">${g.requests ?? g.succeeded ?? "-"}</td>${distCells(g.ttft_ms)}${distCells(g.e2e_ms)}</tr>`; }).join("")}</table>`).join(""));
  }
}

// ---------- trend ----------
async function viewTrend(q) {
  const target = q.get("target") || "", model = q.get("model") || "", metric = q.get("metric") || "output_tokens_per_s";
  const all = await api("/api/runs?limit=10000");
  const pairs = [...new Map(all.map(r => [targetKey(r) + "\u0000" + r.model, { target: targetKey(r), model: r.model }])).values()];
  $main.innerHTML = `<h1>Trend across runs</h1><form class="filters" id="tf">
    <label>target and model<select name="pair">${pairs.map((r, i) => `<option value="${i}"${r.target === target && r.model === model ? " selected" : ""}>${esc(r.target)} — ${esc(r.model)}</option>`).join("")}</select></label>
    <label>metric<select name="metric">${Object.entries(METRICS).map(([k, l]) => `<option value="${k}"${k === metric ? " selected" : ""}>${esc(l)}</option>`).join("")}</select></label>
    <button>Show</button></form>`;
  document.getElementById("tf").addEventListener("submit", ev => {
    ev.preventDefault();
    const fd = new FormData(ev.target);
    const p = pairs[Number(fd.get("pair"))] || { target: "", model: "" };
    location.hash = `#/trend?${new URLSearchParams({ target: p.target, model: p.model, metric: fd.get("metric") })}`;
  });
  if (!target && !pairs.length) { html(`<p class="muted">No runs yet.</p>`); return; }
  const t = target || pairs[0].target, m = target ? model : pairs[0].model;
  const runs = all.filter(r => targetKey(r) === t && r.model === m).sort((a, b) => a.started_at < b.started_at ? -1 : 1);
  const names = [...new Set(runs.flatMap(r => (r.summary || []).map(s => s.name)))];
  const series = names.map(n => ({
    name: n,
    points: runs.map((r, i) => {
      const s = (r.summary || []).find(x => x.name === n);
      const y = s ? s[metric] : null;
      return y === null || y === undefined ? null : { x: i + 1, y, href: `#/run/${encodeURIComponent(r.id)}`, label: `${r.id} (${r.started_at.slice(0, 16).replace("T", " ")})` };
    }).filter(Boolean),
  }));
  html(`<p>${esc(t)} — <b>${esc(m)}</b>: ${runs.length} run(s), oldest first. Click a point to open its run.</p>`);
  lineChart(html(""), { id: "trend-chart", title: `${METRICS[metric] || metric} by run`, xLabel: "run (oldest first)", yLabel: METRICS[metric] || metric, series, xFormat: v => Number.isInteger(v) ? String(v) : "", width: 760 });
  html(`<table id="trend-runs"><tr><th class="num">#</th><th>run</th><th>started (UTC)</th><th>tags</th>${names.map(n => `<th class="num">${esc(n)}</th>`).join("")}</tr>
    ${runs.map((r, i) => `<tr><td class="num">${i + 1}</td><td><a href="#/run/${encodeURIComponent(r.id)}">${esc(r.id)}</a></td><td>${esc(r.started_at.slice(0, 19).replace("T", " "))}</td><td>${tagsHtml(r.tags)}</td>
      ${names.map(n => { const s = (r.summary || []).find(x => x.name === n); return `<td class="num">${num(s ? s[metric] : null, 2)}</td>`; }).join("")}</tr>`).join("")}</table>`);
}

// ---------- compare ----------
async function viewCompare(base, neu) {
  $main.innerHTML = `<h1>Compare</h1>`;
  if (!base || !neu) {
    const all = await api("/api/runs?limit=500");
    const opts = sel => all.map(r => `<option value="${esc(r.id)}"${r.id === sel ? " selected" : ""}>${esc(r.id)} — ${esc(r.model)}</option>`).join("");
    html(`<form class="filters" id="cf"><label>base<select name="a">${opts(all[1] && all[1].id)}</select></label><label>new<select name="b">${opts(all[0] && all[0].id)}</select></label><button>Compare</button></form>`);
    document.getElementById("cf").addEventListener("submit", ev => {
      ev.preventDefault();
      const fd = new FormData(ev.target);
      location.hash = `#/compare/${encodeURIComponent(fd.get("a"))}/${encodeURIComponent(fd.get("b"))}`;
    });
    return;
  }
  const c = await api(`/api/compare?base=${encodeURIComponent(base)}&new=${encodeURIComponent(neu)}`);
  html(`<p>Base <a href="#/run/${encodeURIComponent(base)}">${esc(base)}</a> against new <a href="#/run/${encodeURIComponent(neu)}">${esc(neu)}</a>; a regression is worse by more than ${(100 * c.max_regression).toFixed(0)} % with its 95 % interval wholly on the worse side.</p>`);
  for (const w of c.warnings || []) html(`<div class="alert">${esc(w)}</div>`);
  for (const s of c.scenarios) {
    section(`${s.name} (${s.samples[0]} vs ${s.samples[1]} requests)`);
    for (const w of s.warnings || []) html(`<div class="alert">${esc(w)}</div>`);
    html(`<table class="compare"><tr><th>metric</th><th class="num">base</th><th class="num">new</th><th class="num">change</th><th class="num">relative</th><th class="num">95 % interval</th><th>verdict</th></tr>
      ${s.rows.map(r => `<tr><td>${esc(r.metric)} (${esc(r.unit)})</td><td class="num">${num(r.base, 2)}</td><td class="num">${num(r.new, 2)}</td><td class="num">${num(r.change, 2)}</td>
        <td class="num">${r.relative === null ? "-" : (100 * r.relative).toFixed(1) + " %"}</td><td class="num">${r.ci ? `${num(r.ci[0], 2)} … ${num(r.ci[1], 2)}` : esc(r.no_interval || "-")}</td>
        <td class="${r.regression ? "bad" : (r.verdict === "improvement" ? "good" : "")}">${esc(String(r.verdict).replace(/_/g, " "))}</td></tr>`).join("")}</table>`);
  }
  if (c.only_base.length) html(`<p class="muted">Only in base: ${c.only_base.map(esc).join(", ")}</p>`);
  if (c.only_new.length) html(`<p class="muted">Only in new: ${c.only_new.map(esc).join(", ")}</p>`);
}

async function route() {
  document.getElementById("tip").hidden = true;
  const h = location.hash || "#/";
  const path = h.split("?")[0].slice(1).split("/").filter(Boolean).map(decodeURIComponent);
  try {
    if (path[0] === "run" && path[1]) await viewRun(path[1]);
    else if (path[0] === "trend") await viewTrend(query(h));
    else if (path[0] === "compare") await viewCompare(path[1], path[2]);
    else await viewRuns(query(h));
    document.body.dataset.view = path[0] || "runs";
  } catch (e) {
    $main.innerHTML = `<div class="alert">${esc(e.message)}</div>`;
  }
  document.body.dataset.ready = String(Date.now());
}
window.addEventListener("hashchange", route);
route();
