#!/usr/bin/python3
"""Bad ONNX files fail with a clear message, never a crash or a huge allocation.

Each file below is given to `wanwu classify --json`; wanwu must exit 1 (not
crash, no sanitizer report) with a message naming the problem: truncated
files, wrong magic, a missing initializer, shape mismatches, a cycle, an
unsupported op (the message names op type and node), huge declared
dimensions (no allocation is attempted: the run must stay under 1 GB of
address space), an opset newer than 18 or old enough that one of its ops
meant something else (an older one whose ops did not change must load), and
external data that points outside the model's directory. A model whose weights are in a side file (external
data) inside its directory loads and gives the same answer as the same
model with inline weights.
"""

import os
import random
import resource
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "py"))
sys.path.insert(0, HERE)
import wwtest  # noqa: E402
import onnxpb as pb  # noqa: E402

S = 224


def tiny_classifier(weights="inline", w_dims=(4, 3, 3, 3), extra_nodes=(), input_dims=(1, 3, S, S),
                    drop_init=None, opset=13, b_tensor=None, fcb_tensor=None):
    """image -> Conv(4, 3x3) -> Relu -> GlobalAveragePool -> Flatten -> Gemm(4 -> 5)."""
    rnd = random.Random(5)
    n_w = 1
    for d in w_dims:
        n_w *= d
    w = [rnd.uniform(-1, 1) for _ in range(n_w)]
    inits = []
    if weights == "inline":
        inits.append(pb.tensor("W", w_dims, w))
    else:
        inits.append(pb.tensor("W", w_dims, external=weights))
    inits.append(b_tensor or pb.tensor("B", [4], [0.1, -0.2, 0.3, 0.0]))
    inits.append(pb.tensor("FC", [5, 4], [rnd.uniform(-2, 2) for _ in range(20)]))
    inits.append(fcb_tensor or pb.tensor("FCB", [5], [0.0, 0.1, 0.2, 0.3, 0.4]))
    if drop_init:
        inits = [t for t in inits if b"\x42" + bytes([len(drop_init)]) + drop_init.encode() not in t]
    nodes = [
        pb.node("Conv", ["image", "W", "B"], ["c"], "conv0", [pb.attr_ints("pads", [1, 1, 1, 1])]),
        pb.node("Relu", ["c"], ["r"], "relu0"),
        pb.node("GlobalAveragePool", ["r"], ["p"], "pool0"),
        pb.node("Flatten", ["p"], ["f"], "flatten0"),
        pb.node("Gemm", ["f", "FC", "FCB"], ["logits"], "fc0", [pb.attr_int("transB", 1)]),
    ] + list(extra_nodes)
    return pb.model(nodes, inits, [("image", list(input_dims))], [("logits", ["batch", 5])], opset)


def weights_bytes(w_dims=(4, 3, 3, 3)):
    rnd = random.Random(5)
    n = 1
    for d in w_dims:
        n *= d
    return struct.pack("<%df" % n, *[rnd.uniform(-1, 1) for _ in range(n)])


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def main():
    c = wwtest.Checker("test_zoo_onnx_bad")
    sh = wwtest.shared_dir()
    image = wwtest.all_images(sh)[0]
    d = wwtest.tmp_dir("zoo-onnx-bad")
    with open(wwtest.wanwu_bin(), "rb") as f:
        sanitized = b"__asan_init" in f.read()  # ASan reserves terabytes: no address-space cap

    def write(name, data):
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def expect_error(name, data, *needles):
        p = write(name, data)
        r = wwtest.run_cli(["classify", "--json", "--model", p, image])
        msg = r.stderr
        ok = r.returncode == 1 and not r.crashed and all(n.lower() in msg.lower() for n in needles)
        c.check(ok, "%s: refused with a message containing %s" % (name, needles), r.describe())
        return r

    good = tiny_classifier()
    p = write("good.onnx", good)
    r = wwtest.run_cli(["classify", "--json", "--top", "5", "--model", p, image])
    objs, _ = wwtest.parse_json_lines(r.stdout)
    c.check(r.returncode == 0 and len(objs) == 1 and "top" in objs[0], "the well-formed tiny model runs",
            r.describe())
    good_top = objs[0]["top"] if objs and "top" in objs[0] else None

    # truncations at many points, and byte flips
    for cut in (1, 7, 30, len(good) // 3, len(good) // 2, len(good) - 9, len(good) - 1):
        p = write("truncated.onnx", good[:cut])
        r = wwtest.run_cli(["classify", "--json", "--model", p, image])
        c.check(r.returncode == 1 and not r.crashed and r.stderr.strip(),
                "truncated at %d of %d bytes: error, no crash" % (cut, len(good)), r.describe())
    rnd = random.Random(7)
    crashes = []
    for k in range(25):
        b = bytearray(good)
        for _ in range(3):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        p = write("flipped.onnx", bytes(b))
        r = wwtest.run_cli(["classify", "--json", "--model", p, image])
        if r.crashed or r.returncode not in (0, 1):
            crashes.append(r.describe())
    c.check(not crashes, "25 files with 3 random bytes changed: no crash", "\n".join(crashes[:2]))

    expect_error("wrong-magic.onnx", b"GIF89a" + good[6:], "")
    expect_error("not-protobuf.onnx", b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "ONNX")
    expect_error("missing-initializer.onnx", tiny_classifier(drop_init="FC"), "fc0", "'FC'",
                 "missing initializer")
    expect_error("shape-mismatch.onnx", tiny_classifier(w_dims=(4, 5, 3, 3)), "conv0",
                 "do not fit 3 input channels")
    bad_raw = tiny_classifier(b_tensor=pb.tensor("B", [4], raw=b"\x00" * 12))
    expect_error("short-raw-data.onnx", bad_raw, "'B'", "holds 3 values")
    cyc = pb.model([pb.node("Relu", ["b"], ["a"], "first"), pb.node("Relu", ["a"], ["b"], "second")],
                   [], [("image", [1, 3, S, S])], [("b", [1, 3, S, S])])
    expect_error("cycle.onnx", cyc, "first", "cycle")
    expect_error("unsupported-op.onnx",
                 tiny_classifier(extra_nodes=[pb.node("Einsum", ["logits"], ["e"], "my_einsum")]),
                 "Einsum", "my_einsum")
    with_limit = dict(os.environ)
    r = None
    if not sanitized:
        # the run must not even try to allocate a huge tensor (address space capped at 1 GB)
        import subprocess
        p = write("huge-input.onnx", tiny_classifier(input_dims=(1, 3, 1 << 40, 1 << 40)))
        proc = subprocess.run([wwtest.wanwu_bin(), "classify", "--model", p, image], capture_output=True,
                              text=True, preexec_fn=limit_memory, env=with_limit)
        c.check(proc.returncode == 1 and "declared dimension" in proc.stderr,
                "huge declared input dimension: refused under a 1 GB address-space limit",
                proc.stderr + proc.stdout)
        huge_init = tiny_classifier(fcb_tensor=pb.tensor("FCB", [1 << 20, 1 << 20, 1 << 20], raw=b""))
        p = write("huge-initializer.onnx", huge_init)
        proc = subprocess.run([wwtest.wanwu_bin(), "classify", "--model", p, image], capture_output=True,
                              text=True, preexec_fn=limit_memory)
        c.check(proc.returncode == 1 and "more than" in proc.stderr,
                "huge declared initializer: refused under a 1 GB address-space limit",
                proc.stderr + proc.stdout)
    else:
        expect_error("huge-input.onnx", tiny_classifier(input_dims=(1, 3, 1 << 40, 1 << 40)),
                     "declared dimension")
    # an older opset is read when every op means the same there (Gemm since 7,
    # Conv, Relu, GlobalAveragePool, Flatten since 1) ...
    p = write("opset-8.onnx", tiny_classifier(opset=8))
    r = wwtest.run_cli(["classify", "--json", "--top", "5", "--model", p, image])
    objs, _ = wwtest.parse_json_lines(r.stdout)
    c.check(r.returncode == 0 and len(objs) == 1 and objs[0].get("top") == good_top,
            "opset 8 (no op changed meaning since): same result as opset 13", r.describe())
    # ... and refused, naming the op, when one does not (Gemm-6 had a broadcast attribute)
    expect_error("opset-6.onnx", tiny_classifier(opset=6), "opset 6", "Gemm")
    expect_error("opset-19.onnx", tiny_classifier(opset=19), "opset 19")

    # external data: inside the directory works, outside is refused
    with open(os.path.join(d, "weights.bin"), "wb") as f:
        f.write(b"\x00" * 16 + weights_bytes())
    p = write("external.onnx", tiny_classifier(weights={"location": "weights.bin", "offset": 16,
                                                        "length": 4 * 108}))
    r = wwtest.run_cli(["classify", "--json", "--top", "5", "--model", p, image])
    objs, _ = wwtest.parse_json_lines(r.stdout)
    c.check(r.returncode == 0 and objs and objs[0].get("top") == good_top,
            "external data in the model's directory: loads, same answer as inline weights",
            r.describe())
    expect_error("external-escape.onnx", tiny_classifier(weights={"location": "../weights.bin"}),
                 "inside the model's directory", "'W'")
    expect_error("external-absolute.onnx", tiny_classifier(weights={"location": "/etc/passwd"}),
                 "not a relative path")
    expect_error("external-short.onnx", tiny_classifier(weights={"location": "weights.bin",
                                                                "offset": 400, "length": 432}),
                 "outside")
    c.done()


if __name__ == "__main__":
    main()
