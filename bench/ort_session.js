// The ONNX Runtime session bench/compare's peer runs: CPU, THREADS intra-op
// threads, sequential, every graph optimization. Shared by ort_bench.js and
// ort_profile.js so both time the same configuration.
'use strict';
const path = require('path');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));

function createSession(modelPath, threads, extraOptions) {
  return ort.InferenceSession.create(modelPath, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    ...extraOptions,
  });
}

module.exports = { ort, createSession };
