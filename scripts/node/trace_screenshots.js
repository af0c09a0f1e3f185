// Opens xprof's trace viewer (the Profile tab's Trace Viewer, xprof's own
// frontend) on one run with every host of the run selected, in headless
// Chromium driven by puppeteer-core, and writes into OUTDIR:
//   timeline.png         the whole timeline, as the viewer first draws it
//   zoom.png             a window of --zoom-ms around client requests that
//                        hold server events (or around the server's events
//                        when no client request does)
//   trace-timeline.json  the trace JSON the viewer fetched for the first draw
//   trace-zoom.json      the JSON it fetched after the zoom (absent when the
//                        viewer drew the zoom from data it already had)
//   shots.json           what the viewer drew: the span of the timeline, the
//                        events of each host, where the zoom is, the pixel
//                        rectangle of the timeline canvas in each PNG
// and prints a short summary. scripts/trace-screenshots.sh starts xprof and
// calls this; run that instead.
//
//   node trace_screenshots.js --port P --run RUN --out DIR --chromium PATH
//        [--zoom-ms 50] [--timeout-s 180]
const fs = require("fs");
const http = require("http");
const path = require("path");
const zlib = require("zlib");
const puppeteer = require("puppeteer-core");

function parseArgs(argv) {
  const args = { zoomMs: 50, timeoutS: 180 };
  const names = { "--port": "port", "--run": "run", "--out": "out", "--chromium": "chromium",
                  "--zoom-ms": "zoomMs", "--timeout-s": "timeoutS" };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) throw new Error(`unknown or incomplete argument ${argv[i]}`);
    args[key] = argv[i + 1];
  }
  for (const k of ["port", "run", "out", "chromium"]) {
    if (!args[k]) throw new Error(`--${k} is required`);
  }
  args.zoomMs = Number(args.zoomMs);
  args.timeoutS = Number(args.timeoutS);
  if (!(args.zoomMs > 0)) throw new Error(`--zoom-ms ${args.zoomMs}: must be positive`);
  return args;
}

function getJSON(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        let body = Buffer.concat(chunks);
        // xprof gzips its answers whatever the request accepts.
        if (res.headers["content-encoding"] === "gzip") body = zlib.gunzipSync(body);
        body = body.toString("utf8");
        if (res.statusCode !== 200) return reject(new Error(`${url}: HTTP ${res.statusCode}: ${body.slice(0, 200)}`));
        try { resolve(JSON.parse(body)); } catch (e) { reject(new Error(`${url}: ${e.message}`)); }
      });
    });
    req.setTimeout(60000, () => req.destroy(new Error(`${url}: no answer within 60 s`)));
    req.on("error", reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// until polls fn until it returns a truthy value or the deadline passes.
async function until(what, deadline, fn, everyMs = 250) {
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

// The viewer is a Polymer element (tf-trace-viewer) around catapult's
// timeline inside an iframe; these run in that iframe.
function viewerIdle() {
  const v = document.querySelector("tf-trace-viewer");
  return !!(v && v._model && !v._isLoading && v._throbber && v._throbber.className !== "active" &&
            v._traceViewer && v._traceViewer.trackView);
}

// describeModel returns, per process of the viewer's model, its slices as
// [start, end] in the viewer's world units (ms), and the visible range.
function describeModel() {
  const v = document.querySelector("tf-trace-viewer");
  const m = v._model;
  const tv = v._traceViewer.trackView;
  const procs = [];
  for (const p of Object.values(m.processes)) {
    const slices = [];
    for (const t of Object.values(p.threads)) {
      for (const s of t.sliceGroup.slices) slices.push([s.start, s.start + (s.duration || 0), s.title]);
    }
    procs.push({ name: p.name || "", slices });
  }
  const c = tv.modelTrackContainer_.canvas.getBoundingClientRect();
  return { bounds: [m.bounds.min, m.bounds.max], visible: v._trackViewRange(tv), procs,
           canvas: { x: c.left, y: c.top, width: c.width, height: c.height } };
}

function setViewport(min, max) {
  const v = document.querySelector("tf-trace-viewer");
  v.currentViewportRange = { min, max };
  v._initViewport(); // what the viewer does for view_start/view_end in its URL
}

// screenshotWhenStable takes screenshots until two in a row are the same
// (the viewer has finished drawing), within the deadline.
async function screenshotWhenStable(page, deadline) {
  let last = await page.screenshot({ type: "png" });
  for (;;) {
    await sleep(400);
    const next = await page.screenshot({ type: "png" });
    if (Buffer.compare(last, next) === 0) return next;
    if (Date.now() > deadline) throw new Error("timed out waiting for the viewer to stop drawing");
    last = next;
  }
}

const isClient = (name) => name.startsWith("loadprof-client");

function fmtSpan(ms) {
  const s = ms / 1000;
  if (s >= 7 * 86400) return `${(s / (7 * 86400)).toFixed(1)} weeks (${s.toFixed(0)} s)`;
  if (s >= 86400) return `${(s / 86400).toFixed(1)} days (${s.toFixed(0)} s)`;
  return `${s.toFixed(3)} s`;
}

// analyse summarises what the viewer holds: each host's events and span,
// and how many server events lie inside a client request on the displayed
// timeline.
function analyse(model) {
  const hosts = {};
  const client = [], server = [];
  for (const p of model.procs) {
    const host = p.name.split(" ")[0];
    const h = hosts[host] || (hosts[host] = { events: 0, first_ms: Infinity, last_ms: -Infinity });
    for (const [a, b] of p.slices) {
      h.events++;
      h.first_ms = Math.min(h.first_ms, a);
      h.last_ms = Math.max(h.last_ms, b);
      (isClient(p.name) ? client : server).push([a, b]);
    }
  }
  for (const h of Object.values(hosts)) {
    h.first_ms -= model.bounds[0];
    h.last_ms -= model.bounds[0];
  }
  client.sort((x, y) => x[0] - y[0]);
  let inside = 0;
  const holders = []; // client requests that hold at least one server event
  for (const [a, b] of server) {
    // The client request that starts last at or before a; requests
    // overlap, so look back over a few.
    let lo = 0, hi = client.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (client[mid][0] <= a) lo = mid + 1; else hi = mid; }
    for (let i = lo - 1; i >= 0 && i >= lo - 64; i--) {
      if (client[i][1] >= b) { inside++; holders.push(client[i]); break; }
    }
  }
  return { hosts, client, server, inside, holders };
}

function zoomWindow(a, zoomMs) {
  let center, reason;
  if (a.holders.length > 0) {
    const sorted = a.holders.map((c) => (c[0] + c[1]) / 2).sort((x, y) => x - y);
    center = sorted[sorted.length >> 1];
    reason = "around client requests that hold server events";
  } else if (a.server.length > 0) {
    const starts = a.server.map((s) => s[0]).sort((x, y) => x - y);
    center = starts[starts.length >> 1];
    reason = "around the server's events (no client request holds one on this timeline)";
  } else {
    throw new Error("the viewer shows no server events");
  }
  return { min: center - zoomMs / 2, max: center + zoomMs / 2, reason };
}

function countIn(model, range) {
  const counts = {};
  for (const p of model.procs) {
    const host = p.name.split(" ")[0];
    counts[host] = (counts[host] || 0) + p.slices.filter(([a, b]) => b >= range.min && a <= range.max).length;
  }
  return counts;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const deadline = Date.now() + args.timeoutS * 1000;
  // Every wait below is bounded by the deadline; this catches a hung
  // browser call (puppeteer kills Chromium when this process exits).
  setTimeout(() => {
    console.error(`trace_screenshots.js: still running ${args.timeoutS + 30} s after the start; giving up`);
    process.exit(1);
  }, (args.timeoutS + 30) * 1000).unref();
  const origin = `http://127.0.0.1:${args.port}`;
  const base = `${origin}/data/plugin/profile`;
  fs.mkdirSync(args.out, { recursive: true });

  const hostList = (await getJSON(`${base}/hosts?run=${encodeURIComponent(args.run)}&tag=trace_viewer@`))
    .map((h) => h.hostname).filter((h) => h && h !== "ALL_HOSTS");
  if (!hostList.some(isClient) || hostList.length < 2) {
    throw new Error(`run ${args.run} has hosts ${JSON.stringify(hostList)}: want the server's and loadprof-client`);
  }
  // The address a person would open: the trace viewer tool of the run, with
  // every host selected in the Hosts box (the app turns hosts= into the
  // data request's hosts= parameter).
  const appURL = `${base}/trace_viewer@?run=${encodeURIComponent(args.run)}&tag=trace_viewer@&hosts=${hostList.join(",")}`;

  const browser = await puppeteer.launch({
    executablePath: args.chromium,
    headless: true,
    // Nothing but the local xprof server is reached: xprof's page also
    // asks for Google's chart loader and fonts, which are refused here.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
    protocolTimeout: args.timeoutS * 1000,
  });
  const blocked = [], consoleErrors = [], dataResponses = [];
  let dataRequests = 0;
  const isTraceData = (u) => u.startsWith(`${base}/data?`) && u.includes("trace_viewer");
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1600, height: 1000 });
    await page.setRequestInterception(true);
    page.on("request", (r) => {
      const u = r.url();
      if (isTraceData(u)) dataRequests++;
      if (u.startsWith(origin + "/") || u.startsWith("data:") || u.startsWith("blob:")) return r.continue();
      blocked.push(u);
      r.abort("blockedbyclient");
    });
    page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text().slice(0, 300)); });
    page.on("response", async (res) => {
      const u = res.url();
      if (!isTraceData(u)) return;
      const entry = { url: u, status: res.status(), at: Date.now(), body: null };
      dataResponses.push(entry);
      try { entry.body = await res.text(); } catch (e) { entry.error = e.message; }
    });

    await page.goto(appURL, { waitUntil: "load", timeout: Math.max(1000, deadline - Date.now()) });
    const frame = await until("the trace viewer's iframe", deadline, () =>
      page.frames().find((f) => f.url().includes("trace_viewer_index.html")));
    await until("the trace viewer to load the trace", deadline, () => frame.evaluate(viewerIdle).catch(() => false));
    const first = await until("the body of the viewer's data request", deadline, () =>
      dataResponses.find((r) => r.body !== null || r.error));
    if (first.error) throw new Error(`the viewer's data request: ${first.error}`);
    if (first.status !== 200) throw new Error(`the viewer's data request failed: HTTP ${first.status}: ${first.body.slice(0, 200)}`);
    fs.writeFileSync(path.join(args.out, "trace-timeline.json"), first.body);

    const frameBox = await (await frame.frameElement()).boundingBox();
    const toPage = (c) => ({ x: Math.round(frameBox.x + c.x), y: Math.round(frameBox.y + c.y),
                             width: Math.round(c.width), height: Math.round(c.height) });
    fs.writeFileSync(path.join(args.out, "timeline.png"), await screenshotWhenStable(page, deadline));
    const whole = await frame.evaluate(describeModel);
    const a = analyse(whole);
    const zoom = zoomWindow(a, args.zoomMs);

    const before = dataResponses.length, requestsBefore = dataRequests;
    await frame.evaluate(setViewport, zoom.min, zoom.max);
    // The viewer decides after a 500 ms debounce whether the zoom needs
    // finer data: wait for that request, or 3 s without one, then for the
    // load to finish.
    const askedAt = Date.now();
    await until("the viewer to ask for the zoomed range", deadline,
      () => dataRequests > requestsBefore || Date.now() - askedAt > 3000);
    await until("the trace viewer to load the zoomed range", deadline, () => frame.evaluate(viewerIdle).catch(() => false));
    fs.writeFileSync(path.join(args.out, "zoom.png"), await screenshotWhenStable(page, deadline));
    const zoomed = await frame.evaluate(describeModel);
    await until("the bodies of the viewer's data requests", deadline, () =>
      dataResponses.every((r) => r.body !== null || r.error));
    const zoomData = dataResponses.slice(before).filter((r) => r.body);
    if (zoomData.length > 0) {
      fs.writeFileSync(path.join(args.out, "trace-zoom.json"), zoomData[zoomData.length - 1].body);
    }

    const spanMs = whole.bounds[1] - whole.bounds[0];
    const report = {
      run: args.run,
      url: appURL,
      hosts: hostList,
      span_ms: spanMs,
      span: fmtSpan(spanMs),
      per_host: a.hosts,
      server_events: a.server.length,
      server_events_inside_client_requests: a.inside,
      zoom: { from_ms: zoom.min - whole.bounds[0], to_ms: zoom.max - whole.bounds[0], why: zoom.reason,
              visible_ms: [zoomed.visible.min - whole.bounds[0], zoomed.visible.max - whole.bounds[0]],
              events: countIn(zoomed, zoomed.visible), fetched: zoomData.length },
      canvas: { "timeline.png": toPage(whole.canvas), "zoom.png": toPage(zoomed.canvas) },
      data_requests: dataResponses.map((r) => ({ url: r.url.slice(origin.length), status: r.status })),
      blocked_requests: blocked,
      console_errors: consoleErrors,
    };
    fs.writeFileSync(path.join(args.out, "shots.json"), JSON.stringify(report, null, 2) + "\n");

    console.log(`trace viewer: run ${args.run}, hosts ${hostList.join(", ")}`);
    console.log(`  timeline spans ${report.span}`);
    for (const [h, s] of Object.entries(a.hosts)) {
      console.log(`  ${h}: ${s.events} events drawn, from ${fmtSpan(s.first_ms)} to ${fmtSpan(s.last_ms)} after the timeline's start`);
    }
    console.log(`  server events inside a client request: ${a.inside} of ${a.server.length}`);
    console.log(`  zoom: ${args.zoomMs} ms ${zoom.reason}; events there: ${JSON.stringify(report.zoom.events)}`);
    console.log(`  wrote ${["timeline.png", "zoom.png", "trace-timeline.json", zoomData.length ? "trace-zoom.json" : null, "shots.json"]
      .filter(Boolean).join(", ")} to ${args.out}`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`trace_screenshots.js: ${e.message}`);
  process.exit(1);
});
