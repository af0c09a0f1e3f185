// Decodes loadprof's histograms with hdr-histogram-js (an HdrHistogram
// implementation no one here wrote) and prints what it reads as JSON:
//   node hdrdecode.js result RESULT.json   -> the steady histogram
//   node hdrdecode.js hlog RUN.hlog        -> every interval histogram, added up
const fs = require("fs");
const hdr = require("hdr-histogram-js");

function summary(h) {
  const q = (p) => h.getValueAtPercentile(p);
  return { count: h.totalCount, min: h.minNonZeroValue, max: h.maxValue,
           p50: q(50), p90: q(90), p99: q(99), p999: q(99.9) };
}

const [kind, path] = process.argv.slice(2);
const text = fs.readFileSync(path, "utf8");
if (kind === "result") {
  const result = JSON.parse(text);
  console.log(JSON.stringify(summary(hdr.decodeFromCompressedBase64(result.histogram))));
} else if (kind === "hlog") {
  const reader = new hdr.HistogramLogReader(text);
  let total = null;
  let intervals = 0;
  const each = [];
  for (let h = reader.nextIntervalHistogram(); h !== null; h = reader.nextIntervalHistogram()) {
    intervals++;
    each.push({ tag: h.tag === "NO TAG" ? "" : h.tag /* hdr-histogram-js NO_TAG, not exported */, start_ms: h.startTimeStampMsec, count: h.totalCount, p50: h.totalCount ? h.getValueAtPercentile(50) : 0,
                p99: h.totalCount ? h.getValueAtPercentile(99) : 0, max: h.maxValue });
    if (total === null) {
      total = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3600000000, numberOfSignificantValueDigits: 3 });
    }
    total.add(h);
  }
  console.log(JSON.stringify(Object.assign({ intervals, each }, summary(total))));
} else {
  console.error("usage: node hdrdecode.js result|hlog FILE");
  process.exit(2);
}
