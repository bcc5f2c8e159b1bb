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

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "py"))
sys.path.insert(0, HERE)
import wwtest  # noqa: E402
import zoo_models  # noqa: E402

K = 5
PROB_TOL = 1e-4
ISAS = ("avx2", "scalar")


def main():
    c = wwtest.Checker("test_zoo_isa_paths")
    sh = wwtest.shared_dir()
    wwtest.wanwu_bin()
    wwtest.import_torch(2)
    man = zoo_models.ensure_models()
    images = wwtest.spread_images(sh, 20, 2)
    few = images[:6] + [g for g in wwtest.grayscale_images(images) if g not in images[:6]][:2]
    for arch in zoo_models.ARCHS:
        path = man["files"][arch]
        # same tag and image list as test_zoo_pth, so the PyTorch cache is shared
        ref = zoo_models.torch_topk_cached(arch, path, images, "default")
        for isa in ISAS:
            threads = "2" if isa == "avx2" else "1"
            name = "%s WANWU_ISA=%s --threads %s" % (arch, isa, threads)
            wwtest.log("== " + name)
            by_file, problems, _ = wwtest.classify_json(few, path, K, ["--threads", threads],
                                                        env={"WANWU_ISA": isa})
            c.check(not problems, "%s: wanwu ran and printed one JSON line per image" % name,
                    "\n".join(problems[:5]))
            bad, maxdiff, matched = [], 0.0, 0
            for img in few:
                o = by_file.get(img)
                if o is None:
                    continue
                if "error" in o:
                    bad.append("%s: wanwu error: %s" % (os.path.basename(img), o["error"]))
                    continue
                probs, md, _ = wwtest.compare_topk(os.path.basename(img), ref[img], o, K, PROB_TOL)
                bad += probs
                if not probs:
                    matched += 1
                    maxdiff = max(maxdiff, md)
            c.check(matched == len(few) and not bad,
                    "%s: top-%d and probs (tol %.0e) match PyTorch on %d/%d images, max |dprob| %.2e"
                    % (name, K, PROB_TOL, matched, len(few), maxdiff), "\n".join(bad[:10]))
    c.done()


if __name__ == "__main__":
    main()
