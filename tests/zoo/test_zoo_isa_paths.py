#!/usr/bin/python3
"""Every ISA path end to end: parity with PyTorch with WANWU_ISA forced.

The kernel tests compare each kernel's AVX-512, AVX2 and portable variants
with the reference on random shapes; this test runs the four architectures
(random weights, tests/zoo/zoo_models.py) through `wanwu classify --json` with
WANWU_ISA=avx2 and WANWU_ISA=scalar on 8 images each (1 and 2 threads), so
that the paths a machine without AVX-512 takes are proven on whole networks
too: PyTorch's top-5 classes, probabilities within 1e-4. (The default path,
AVX-512 on this machine, is test_zoo_pth's.)
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "py"))
sys.path.insert(0, HERE)
import wwtest  # noqa: E402
import test_zoo_pth  # noqa: E402
import zoo_models  # noqa: E402

ISAS = ("avx2", "scalar")


def cpu_has(flag):
    """Whether /proc/cpuinfo lists the flag (a forced ISA the CPU lacks falls back)."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and flag in line.split() for line in f)
    except OSError:
        return False


def main():
    c = wwtest.Checker("test_zoo_isa_paths")
    sh = wwtest.shared_dir()
    wwtest.wanwu_bin()
    wwtest.import_torch(2)
    man = zoo_models.ensure_models()
    images = wwtest.spread_images(sh, 20, 2)
    summary = []
    few = images[:6] + [g for g in wwtest.grayscale_images(images) if g not in images[:6]][:2]
    for arch in zoo_models.ARCHS:
        path = man["files"][arch]
        # same tag and image list as test_zoo_pth, so the PyTorch cache is shared
        ref = zoo_models.torch_topk_cached(arch, path, images, "default")
        for isa in ISAS:
            if arch == zoo_models.ARCHS[0]:
                # the forced instruction set is the one the kernels report using
                r = wwtest.run_cli(["bench", "--model", path, "--runs", "1", "--warmup", "0",
                                    "--json"], env={"WANWU_ISA": isa})
                got = None
                try:
                    got = json.loads(r.stdout.strip().splitlines()[-1]).get("isa")
                except (ValueError, IndexError):
                    pass
                want = "portable" if isa == "scalar" or not cpu_has(isa) else isa
                c.check(r.returncode == 0 and got == want,
                        "WANWU_ISA=%s: wanwu bench --json reports isa %r" % (isa, want),
                        r.describe())
            threads = "2" if isa == "avx2" else "1"
            name = "%s WANWU_ISA=%s --threads %s" % (arch, isa, threads)
            wwtest.log("== " + name)
            test_zoo_pth.compare(c, name, arch, ref, few, ["--threads", threads], path, summary,
                                 env={"WANWU_ISA": isa})
    wwtest.log("\nper run: " + "; ".join(summary))
    c.done()


if __name__ == "__main__":
    main()
