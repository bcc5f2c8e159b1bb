#!/usr/bin/python3
"""PyTorch side of bench/compare.

  torch_bench.py export OUTDIR          random-weight models: OUTDIR/ARCH.pth (state dict for
                                         wanwu), OUTDIR/ARCH.onnx (same weights), OUTDIR/input.bin
  torch_bench.py run ARCH OUTDIR MODE THREADS RUNS WARMUP
                                         MODE eager | freeze (torch.jit.freeze of a trace);
                                         prints {"median_ms", "min_ms", "logits"} as JSON
"""
import json
import os
import sys
import time

ARCHS = {
    "resnet18": "resnet18",
    "mobilenet_v2": "mobilenet_v2",
    "efficientnet_b0": "efficientnet_b0",
    "shufflenet_v2_x1_0": "shufflenet_v2_x1_0",
}


def build(arch):
    import torchvision
    return getattr(torchvision.models, ARCHS[arch])(weights=None).eval()


def export(outdir):
    import torch
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(0)
    x = torch.rand(1, 3, 224, 224) * 4.0 - 2.0
    x.numpy().astype("<f4").tofile(os.path.join(outdir, "input.bin"))
    for i, arch in enumerate(ARCHS):
        torch.manual_seed(100 + i)
        model = build(arch)
        with torch.no_grad():  # BatchNorm statistics that are not the identity
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 2.0)
        torch.save(model.state_dict(), os.path.join(outdir, arch + ".pth"))
        torch.onnx.export(model, x, os.path.join(outdir, arch + ".onnx"), opset_version=13,
                          input_names=["input"], output_names=["logits"])


def run(arch, outdir, mode, threads, runs, warmup):
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    model = build(arch)
    model.load_state_dict(torch.load(os.path.join(outdir, arch + ".pth")))
    model.eval()
    x = torch.from_numpy(np.fromfile(os.path.join(outdir, "input.bin"), dtype="<f4").reshape(1, 3, 224, 224))
    with torch.no_grad():
        if mode == "freeze":
            model = torch.jit.freeze(torch.jit.trace(model, x))
        for _ in range(warmup):
            y = model(x)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            y = model(x)
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    print(json.dumps({"median_ms": times[len(times) // 2], "min_ms": times[0],
                      "logits": [float(v) for v in y[0, :5]]}))


if __name__ == "__main__":
    if sys.argv[1] == "export":
        export(sys.argv[2])
    else:
        run(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]))
