// ONNX Runtime (CPU) latency of one model: node ort_bench.js MODEL.onnx INPUT.bin THREADS RUNS WARMUP
// Prints {"median_ms": ..., "min_ms": ..., "logits": [first 5]} on stdout.
'use strict';
const fs = require('fs');
const path = require('path');
const { ort, createSession } = require(path.join(__dirname, 'ort_session.js'));

async function main() {
  const [modelPath, inputPath, threadsArg, runsArg, warmupArg] = process.argv.slice(2);
  const threads = parseInt(threadsArg, 10), runs = parseInt(runsArg, 10), warmup = parseInt(warmupArg, 10);
  const session = await createSession(modelPath, threads);
  const buf = fs.readFileSync(inputPath);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const input = new ort.Tensor('float32', data, [1, 3, 224, 224]);
  const feeds = { [session.inputNames[0]]: input };
  let out;
  for (let i = 0; i < warmup; i++) out = await session.run(feeds);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    out = await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  const logits = Array.from(out[session.outputNames[0]].data.slice(0, 5));
  process.stdout.write(JSON.stringify({ median_ms: times[Math.floor(times.length / 2)], min_ms: times[0], logits }) + '\n');
}
main().catch((e) => { console.error(e); process.exit(1); });
