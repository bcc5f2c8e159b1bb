// ONNX Runtime (CPU) time per node, to set beside `wanwu bench --model M --profile`:
//   node bench/ort_profile.js MODEL.onnx [THREADS] [RUNS] [INPUT.bin]
// Runs the model RUNS times (default 60; the first 10 are warm-up) with ORT's
// profiler on, then prints, in execution order, each node ORT ran (after its
// graph optimizations: conv + activation fused, NCHWc reorders) with its op
// and the median of its kernel times in ms, and the sum of those medians.
// INPUT.bin: 1x3x224x224 float32 (bench/compare writes bench/out/input.bin);
// without it a fixed pseudo-random input.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { ort, createSession } = require(path.join(__dirname, 'ort_session.js'));

const WARMUP = 10;

function median(sorted) {
  return sorted[Math.floor(sorted.length / 2)];
}

async function main() {
  const [modelPath, threadsArg, runsArg, inputPath] = process.argv.slice(2);
  if (!modelPath) {
    console.error('usage: node bench/ort_profile.js MODEL.onnx [THREADS] [RUNS] [INPUT.bin]');
    process.exit(2);
  }
  const threads = parseInt(threadsArg || '1', 10), runs = parseInt(runsArg || '60', 10);
  if (!(threads >= 1) || !(runs > WARMUP)) {
    console.error(`THREADS must be >= 1 and RUNS > ${WARMUP}`);
    process.exit(2);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ort-profile-'));
  try {
    const session = await createSession(modelPath, threads, {
      enableProfiling: true,
      profileFilePrefix: path.join(dir, 'ort'),
    });
    let data;
    if (inputPath) {
      const buf = fs.readFileSync(inputPath);
      data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    } else {
      data = new Float32Array(3 * 224 * 224);
      let x = 12345;
      for (let i = 0; i < data.length; i++) {
        x = (x * 1103515245 + 12345) % 2147483648;
        data[i] = x / 2147483648 * 2 - 1;
      }
    }
    if (data.length !== 3 * 224 * 224) throw new Error(`${inputPath}: want 3x224x224 floats`);
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [1, 3, 224, 224]) };
    for (let i = 0; i < runs; i++) await session.run(feeds);
    session.endProfiling();
    const file = fs.readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error('ONNX Runtime wrote no profile');
    const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
    const nodes = new Map(); // name -> {op, times}, in first-seen (execution) order
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
      const name = e.name.slice(0, -'_kernel_time'.length);
      if (!nodes.has(name)) nodes.set(name, { op: (e.args && e.args.op_name) || '?', times: [] });
      nodes.get(name).times.push(e.dur / 1000);
    }
    let total = 0;
    console.log(`${path.basename(modelPath)}, ONNX Runtime, ${threads} thread(s), median of ${runs - WARMUP} runs`);
    console.log(`${'node'.padEnd(64)} ${'op'.padEnd(20)} ${'ms'.padStart(8)}`);
    for (const [name, n] of nodes) {
      const t = median(n.times.slice(WARMUP).sort((a, b) => a - b));
      total += t;
      console.log(`${name.slice(-64).padEnd(64)} ${n.op.padEnd(20)} ${t.toFixed(4).padStart(8)}`);
    }
    console.log(`${'sum of node medians'.padEnd(85)} ${total.toFixed(3).padStart(8)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
