#!/usr/bin/python3
"""Weight cache (src/model/weight_cache.h): a load that maps packed weights
from the cache gives the same logits, bit for bit, as one that packs them,
and an entry is never used for anything but the file and build it came
from.

With tests/model/tool_weight_cache (load with a cache directory, run once
on a fixed input, print the cache state and a hash of the logits), on the
four architectures' random weight files (tests/zoo/zoo_models.py):
  * no cache, then "stored", then "hit": the same logits each time;
  * every forced instruction set the CPU has, and another input size:
    entries of their own, each hit giving its own uncached logits;
  * the weight file changed (times only; another model's bytes at the same
    path): not a hit, and the new file's logits;
  * a file changed within the last 2 s is not stored (its times may not
    tell it from its next version yet);
  * the weight file cut and rewritten between the load and the run, with
    no cache, storing and from the cache: the same logits (a loaded model
    never reads its file again);
  * damaged entries (cut short, a header byte changed, an allocation log
    reordered with its checksums fixed up, someone else's file) are not
    used, and are replaced; temporary files a killed load left are removed
    once old;
  * a directory that cannot be written: the load still works;
  * `wanwu bench --json` reports the state, and WANWU_CACHE_DIR=off
    turns the cache off.
"""

import glob
import os
import shutil
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "py"))
sys.path.insert(0, os.path.join(HERE, "..", "zoo"))
import wwtest  # noqa: E402
import zoo_models  # noqa: E402

SETTLE_S = 3.1  # WW_WEIGHT_CACHE_SETTLE_S, plus the whole-second rounding

# cache_header in weight_cache.c: magic[8], header_bytes, byte_order,
# identity[256], alloc_count, data_offset, data_bytes, log_hash, header_hash
HEADER = struct.Struct("<8sII256sQQQQQ")


def fnv1a(data):
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def tool():
    d = os.environ.get("WANWU_TOOLS_DIR")
    p = os.path.join(d, "tool_weight_cache") if d else ""
    if not p or not os.access(p, os.X_OK):
        wwtest.skip("tool_weight_cache not found (WANWU_TOOLS_DIR=%r)" % d)
    return p


def run(model, cache, crop=None, isa=None, clobber=False):
    """{"cache", "isa", "logits"} from one tool run."""
    env = dict(os.environ)
    env.pop("WANWU_CACHE_DIR", None)
    if clobber:
        env["TOOL_CLOBBER"] = "1"
    if isa:
        env["WANWU_ISA"] = isa
    args = [tool(), model, cache] + ([str(crop)] if crop else [])
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    out = {"status": p.returncode, "text": p.stdout + p.stderr}
    for line in p.stdout.splitlines():
        k, _, v = line.partition(" ")
        out[k] = v
    return out


def entries(cache):
    return sorted(glob.glob(os.path.join(cache, "*.wwpack")))


def settle(path):
    """Waits until `path` is old enough to be stored."""
    st = os.stat(path)
    wait = max(st.st_mtime, st.st_ctime) + SETTLE_S - time.time()
    if wait > 0:
        time.sleep(wait)


def rewrite_log(entry, mutate):
    """Applies mutate(list of allocation sizes) to an entry's log and fixes
    up both checksums, so only the replay itself can notice."""
    with open(entry, "r+b") as f:
        head = bytearray(f.read(HEADER.size))
        fields = list(HEADER.unpack(head))
        count = fields[4]
        log = list(struct.unpack("<%dQ" % count, f.read(8 * count)))
        mutate(log)
        raw = struct.pack("<%dQ" % count, *log)
        fields[7] = fnv1a(raw)
        fields[8] = 0
        packed = HEADER.pack(*fields)
        fields[8] = fnv1a(packed[:HEADER.size - 8])
        f.seek(0)
        f.write(HEADER.pack(*fields))
        f.write(raw)


def main():
    c = wwtest.Checker("weight cache")
    man = zoo_models.ensure_models()
    work = wwtest.tmp_dir("weight-cache-test-%d" % os.getpid())
    try:
        models = {}
        for arch, src in sorted(man["files"].items()):
            models[arch] = os.path.join(work, arch + ".pth")
            shutil.copyfile(src, models[arch])
        settle(models[sorted(models)[-1]])

        # every architecture: off, stored, hit
        ref = {}
        for arch, path in sorted(models.items()):
            cache = os.path.join(work, "cache-" + arch)
            off = run(path, "off")
            if not c.check(off["status"] == 0 and off.get("cache") == "off",
                           "%s: loads without a cache" % arch, off["text"]):
                continue
            ref[arch] = off["logits"]
            first, second = run(path, cache), run(path, cache)
            c.check(first.get("cache") == "stored" and len(entries(cache)) == 1,
                    "%s: the first load stores one entry" % arch, first["text"])
            c.check(first.get("logits") == ref[arch], "%s: the storing load's logits" % arch,
                    "%s vs %s" % (first.get("logits"), ref[arch]))
            c.check(second.get("cache") == "hit", "%s: the next load is a hit" % arch,
                    second["text"])
            c.check(second.get("logits") == ref[arch],
                    "%s: the hit's logits are the packed load's, bit for bit" % arch,
                    "%s vs %s" % (second.get("logits"), ref[arch]))

        # instruction sets and input sizes each get their own entry
        path = models["resnet18"]
        cache = os.path.join(work, "cache-variants")
        best = run(path, "off")["isa"]
        isas = {"avx512": ["avx512", "avx2", "scalar"], "avx2": ["avx2", "scalar"]}.get(best, ["scalar"])
        variants = [(isa, None) for isa in isas] + [(None, 160)]
        for n, (isa, crop) in enumerate(variants):
            name = "resnet18 %s" % ("WANWU_ISA=" + isa if isa else "crop %d" % crop)
            off = run(path, "off", crop, isa)
            stored, hit = run(path, cache, crop, isa), run(path, cache, crop, isa)
            c.check(stored.get("cache") == "stored" and len(entries(cache)) == n + 1,
                    "%s: an entry of its own" % name, stored["text"])
            c.check(hit.get("cache") == "hit" and hit.get("logits") == off.get("logits"),
                    "%s: hit, with the uncached logits" % name,
                    "%s\n%s vs %s" % (hit.get("cache"), hit.get("logits"), off.get("logits")))

        # the weight file changes
        cache = os.path.join(work, "cache-change")
        path = os.path.join(work, "changing.pth")
        shutil.copyfile(models["resnet18"], path)
        fresh = run(path, cache)
        c.check(fresh.get("cache") == "not stored" and not entries(cache),
                "a weight file changed under 2 s ago is not stored", fresh["text"])
        settle(path)
        run(path, cache)
        c.check(run(path, cache).get("cache") == "hit", "once settled, it is stored and hit")
        os.utime(path, None)  # times only
        touched = run(path, cache)
        c.check(touched.get("cache") != "hit" and touched.get("logits") == ref.get("resnet18"),
                "new times on the weight file: not a hit", touched["text"])
        shutil.copyfile(models["mobilenet_v2"], path + ".new")
        os.replace(path + ".new", path)  # another model's bytes at the same path
        settle(path)
        other = run(path, cache)
        c.check(other.get("cache") == "stored" and other.get("logits") == ref.get("mobilenet_v2"),
                "another model at the same path: its own logits, stored anew", other["text"])
        c.check(len(entries(cache)) == 1, "the new entry replaced the old one (same path)",
                "\n".join(entries(cache)))
        c.check(run(path, cache).get("logits") == ref.get("mobilenet_v2"),
                "and the next load hits the new entry's logits")

        # the weight file rewritten under a loaded model (cut to nothing, then
        # other bytes): a model never reads its file after loading
        for arch in ("resnet18", "mobilenet_v2"):
            path = os.path.join(work, "clobbered-" + arch + ".pth")
            got = {}
            shutil.copyfile(models[arch], path)
            got["off"] = run(path, "off", clobber=True)
            shutil.copyfile(models[arch], path)
            settle(path)
            got["stored"] = run(path, os.path.join(work, "cache-clobber-a"), clobber=True)
            shutil.copyfile(models[arch], path)
            settle(path)
            cache = os.path.join(work, "cache-clobber-b")
            run(path, cache)
            got["hit"] = run(path, cache, clobber=True)
            for mode, g in got.items():
                c.check(g.get("cache") == mode and g.get("logits") == ref.get(arch),
                        "%s, weight file rewritten after the load (%s): the same logits" % (arch, mode),
                        g["text"])

        # damaged entries are not used, and are replaced
        path = models["resnet18"]
        cache = os.path.join(work, "cache-damage")
        run(path, cache)
        entry = entries(cache)[0]
        size = os.path.getsize(entry)

        def damage(name, how):
            how()
            got = run(path, cache)
            c.check(got.get("cache") == "stored" and got.get("logits") == ref.get("resnet18"),
                    "%s: not used, the load packs and stores again" % name, got["text"])
            again = run(path, cache)
            c.check(again.get("cache") == "hit" and os.path.getsize(entry) == size,
                    "%s: replaced by a whole entry" % name, again["text"])

        def cut():
            with open(entry, "r+b") as f:
                f.truncate(size - 64)

        def flip_header():
            with open(entry, "r+b") as f:
                f.seek(40)  # inside the identity (the build ID)
                b = f.read(1)
                f.seek(40)
                f.write(bytes([b[0] ^ 1]))

        def reorder_log():
            def swap(log):
                i = next(i for i in range(len(log) - 1) if log[i] != log[i + 1])
                log[i], log[i + 1] = log[i + 1], log[i]
            rewrite_log(entry, swap)

        def grow_log():
            def move(log):
                i = next(i for i in range(len(log) - 1) if log[i] > 64)
                log[i] -= 64  # the same total: only the replay can tell
                log[i + 1] += 64
            rewrite_log(entry, move)

        damage("an entry cut short", cut)
        damage("a header byte changed", flip_header)
        damage("allocation log reordered (checksums fixed up)", reorder_log)
        damage("allocation sizes moved between neighbours (checksums fixed up)", grow_log)
        if os.geteuid() == 0:
            damage("an entry owned by another user", lambda: os.chown(entry, 65534, 65534))

        # temporary files a killed load left behind: old ones go, recent ones stay
        old, recent = entry + ".tmp.AbC123", entry + ".tmp.XyZ789"
        for t in (old, recent):
            with open(t, "wb") as f:
                f.write(b"\0" * 4096)
        os.utime(old, (time.time() - 3600, time.time() - 3600))
        os.remove(entry)
        got = run(path, cache)
        c.check(got.get("cache") == "stored" and not os.path.exists(old) and os.path.exists(recent),
                "a store removes this entry's temporary files older than 10 minutes, not newer ones",
                "%s old exists %s recent exists %s" % (got.get("cache"), os.path.exists(old),
                                                      os.path.exists(recent)))
        c.check(sorted(os.listdir(cache)) == sorted([os.path.basename(entry),
                                                      os.path.basename(recent)]),
                "no other files left in the cache directory", "\n".join(os.listdir(cache)))

        # a cache directory that cannot be written
        blocker = os.path.join(work, "not-a-dir")
        with open(blocker, "w") as f:
            f.write("x")
        got = run(models["resnet18"], os.path.join(blocker, "cache"))
        c.check(got.get("cache") == "not stored" and got.get("logits") == ref.get("resnet18"),
                "an unwritable cache directory: the load works, nothing stored", got["text"])

        # the command-line tool
        def bench_state(cache_dir):
            env = dict(os.environ, WANWU_CACHE_DIR=cache_dir)
            p = subprocess.run([wwtest.wanwu_bin(), "bench", "--model", models["resnet18"],
                                "--runs", "1", "--warmup", "0", "--json"], env=env,
                               capture_output=True, text=True, timeout=600)
            objs, _ = wwtest.parse_json_lines(p.stdout)
            return objs[0].get("weight_cache") if p.returncode == 0 and objs else p.stderr

        cli_cache = os.path.join(work, "cache-cli")
        states = [bench_state(cli_cache), bench_state(cli_cache)]
        c.check(states == ["stored", "hit"], "wanwu bench --json: weight_cache stored, then hit",
                repr(states))
        got = bench_state("off")
        c.check(got == "off", "WANWU_CACHE_DIR=off: weight_cache off", repr(got))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    c.done()


if __name__ == "__main__":
    main()
