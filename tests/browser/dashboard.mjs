// The dashboard in a real browser (Debian's Chromium, driven by playwright-core).
// Usage: node dashboard.mjs URL SCREENSHOT_DIR RUN_ID...   (run by tests/it/dashboard.rs)
// Loads the run list, opens a run, checks its charts (SVG with data points, a value on hover,
// a series toggled off and on), the trend view (every run listed, points linking to runs) and
// the side-by-side comparison; saves a screenshot of each view. Exits 1 on the first failure.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(process.env.PLAYWRIGHT_DIR ? path.join(process.env.PLAYWRIGHT_DIR, "x.js") : import.meta.url);
const { chromium } = require("playwright-core");

const [url, shots, ...ids] = process.argv.slice(2);
if (!url || !shots || ids.length < 2) {
  console.error("usage: node dashboard.mjs URL SCREENSHOT_DIR RUN_ID RUN_ID...");
  process.exit(2);
}
function check(cond, what) {
  if (!cond) throw new Error("FAILED: " + what);
  console.log("ok: " + what);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("pageerror", e => errors.push(String(e)));
  page.on("requestfailed", r => errors.push("request failed: " + r.url()));
  page.on("request", r => { if (!r.url().startsWith(url)) errors.push("left the machine: " + r.url()); });
  const ready = async () => page.waitForFunction(() => document.body.dataset.ready);
  const go = async (hash) => {
    await page.evaluate(() => { delete document.body.dataset.ready; });
    await page.evaluate(h => { location.hash = h; }, hash);
    await ready();
  };

  // The run list.
  await page.goto(url);
  await ready();
  const listed = await page.$$eval("#runs tbody tr", rs => rs.map(r => r.dataset.id));
  check(ids.every(id => listed.includes(id)), `the run list shows all ${ids.length} runs`);
  await page.fill("input[name=tag]", "release=2");
  await page.evaluate(() => { delete document.body.dataset.ready; });
  await page.click("#filters button:not([type])");
  await page.waitForFunction(() => location.hash.includes("tag="));
  await ready();
  const filtered = await page.$$eval("#runs tbody tr", rs => rs.map(r => r.dataset.id));
  check(filtered.length === 1 && filtered[0] === ids[1], "filtering by tag release=2 leaves its one run");
  await page.screenshot({ path: path.join(shots, "runs.png"), fullPage: true });

  // One run: open it from the list.
  await go("#/");
  await page.click(`a[href="#/run/${ids[0]}"]`);
  await page.waitForFunction(() => document.body.dataset.view === "run" && document.body.dataset.ready);
  check((await page.textContent("h1")).includes(ids[0]), "the run page opens from the list");
  check(await page.isVisible(".verdict"), "the trust verdict is shown");
  const scRows = await page.$$eval("#scenarios tbody tr", rs => rs.length);
  check(scRows >= 1, "the per-scenario table has rows");
  const points = await page.$$eval("#cdf-ttft_ms circle.pt", cs => cs.length);
  check(points >= 10, `the TTFT distribution chart has data points (${points})`);
  const line = await page.$eval("#cdf-ttft_ms polyline.series", p => p.getAttribute("points").split(" ").length);
  check(line === points, "its line runs through every point");
  // Hover a point: the tooltip shows its value.
  const pt = await page.$("#cdf-ttft_ms circle.pt:nth-of-type(5)");
  const box = await pt.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  const tip = await page.textContent("#tip");
  check(await page.isVisible("#tip") && /TTFT \(ms\): [0-9.]+/.test(tip) && /percentile: [0-9.]+/.test(tip),
    `hovering a point shows its values (${JSON.stringify(tip)})`);
  // Metrics over time, from the run's timeline: latency, throughput and load per time bin.
  const latPts = await page.$$eval("[id^=time-lat-] circle.pt", cs => cs.length);
  const latLines = await page.$$eval("[id^=time-lat-] polyline.series", ps => ps.map(p => p.dataset.series));
  check(latPts >= 12 && ["TTFT p50", "TTFT p99", "ITL p50", "ITL p99"].every(n => latLines.includes(n)),
    `the latency-over-time chart has TTFT and ITL lines (${latLines}) and ${latPts} points`);
  const tputPts = await page.$$eval("[id^=time-tput-] circle.pt", cs => cs.length);
  check(tputPts >= 3, `the throughput-over-time chart has data points (${tputPts})`);
  // The runs send 4 at a time: the mean in flight must reach 4 in some bin, and never pass it.
  const inflight = await page.evaluate(async id => {
    const r = await (await fetch("/api/runs/" + encodeURIComponent(id))).json();
    return r.scenarios[0].timeline.bins.map(b => b.in_flight);
  }, ids[0]);
  check(Math.max(...inflight) > 3.5 && Math.max(...inflight) <= 4.0001,
    `the in-flight chart shows the run's concurrency (max ${Math.max(...inflight).toFixed(2)} of 4)`);
  const loadTip = await page.$("[id^=time-load-] circle.pt");
  await loadTip.scrollIntoViewIfNeeded();
  const lb = await loadTip.boundingBox();
  await page.mouse.move(lb.x + lb.width / 2, lb.y + lb.height / 2);
  const t2 = await page.textContent("#tip");
  check(/time since run start \(s\): [0-9.]+/.test(t2), `hovering a point over time shows its time (${JSON.stringify(t2)})`);
  await page.mouse.move(0, 0);
  await page.screenshot({ path: path.join(shots, "run.png"), fullPage: true });
  // On a chart with several series, a legend click hides one and a second brings it back.
  const multi = await page.$("[id^=pctl-] .legend span");
  if (multi) {
    const chart = await multi.evaluateHandle(s => s.closest(".chart"));
    const before = await chart.evaluate(c => c.querySelectorAll("polyline.series").length);
    await multi.click();
    const hidden = await chart.evaluate(c => c.querySelectorAll("polyline.series").length);
    await multi.click();
    const back = await chart.evaluate(c => c.querySelectorAll("polyline.series").length);
    check(before > 1 && hidden === before - 1 && back === before, `a legend click hides a series and brings it back (${before} → ${hidden} → ${back})`);
  } else {
    check(false, "a chart with several series to toggle");
  }

  // The trend: every run of this target and model, each point a link to its run.
  await page.click("#trend-link");
  await page.waitForFunction(() => document.body.dataset.view === "trend" && document.body.dataset.ready);
  const trendRuns = await page.$$eval("#trend-runs a", as => as.map(a => a.textContent));
  check(ids.every(id => trendRuns.includes(id)), `the trend lists every run (${trendRuns.length})`);
  const links = await page.$$eval("#trend-chart a circle.pt", cs => cs.length);
  check(links === ids.length, `the trend chart has one linked point per run (${links})`);
  await page.selectOption("select[name=metric]", "ttft_p50_ms");
  await page.evaluate(() => { delete document.body.dataset.ready; });
  await page.click("#tf button");
  await page.waitForFunction(() => location.hash.includes("ttft_p50_ms"));
  await ready();
  check((await page.textContent("#trend-chart .title")).includes("TTFT"), "the trend's metric can be chosen");
  await page.screenshot({ path: path.join(shots, "trend.png"), fullPage: true });
  const hrefs = await page.$$eval("#trend-chart a", as => as.map(a => a.getAttribute("href")));
  check(JSON.stringify(hrefs) === JSON.stringify(ids.map(id => `#/run/${id}`)), `trend points link to their runs, oldest first (${hrefs})`);
  await page.locator("#trend-chart a circle.pt").nth(1).click();
  await page.waitForFunction(id => document.body.dataset.view === "run" && document.querySelector("h1").textContent.includes(id), ids[1]);
  check(true, "a trend point opens its run");

  // Two runs side by side, with compare's intervals and verdicts.
  await go(`#/compare/${ids[0]}/${ids[1]}`);
  const rows = await page.$$eval("table.compare tr", rs => rs.length);
  check(rows > 3, `the comparison has rows (${rows})`);
  const verdicts = await page.$$eval("table.compare td:last-child", ts => ts.map(t => t.textContent));
  check(verdicts.length > 0 && verdicts.every(v => v.length > 0), "each compared row has a verdict");
  await page.screenshot({ path: path.join(shots, "compare.png"), fullPage: true });

  check(errors.length === 0, "no script error, failed request or request off the machine: " + errors.join("; "));
} finally {
  await browser.close();
}
