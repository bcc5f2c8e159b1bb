#!/usr/bin/python3
"""`wanwu classify --recursive DIR --output FILE.jsonl [--resume] [--jobs N]`.

  * one uninterrupted run: one JSON line per image found under the tree
    (nested folders, a bad file gives an error line, hidden files and
    non-images are skipped), the lines equal `classify --json` on the same
    files, exit 1 because of the bad file;
  * an existing output without --resume is refused (nothing overwritten);
  * kill -9 at random moments, repeated, each time resuming: after every
    kill the file holds whole lines only (at most a torn last line, which
    --resume drops), never a file twice; at the end every image is there
    exactly once with the same answer as the uninterrupted run;
  * --resume on a finished file classifies nothing.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "py"))
import wwtest  # noqa: E402

N_IMAGES = 40
KILLS = 6
c = wwtest.Checker("test_batch_resume")


def fresh_dir(*parts):
    d = wwtest.tmp_dir("batch", *parts)
    shutil.rmtree(d)
    os.makedirs(d)
    return d


def read_lines(path):
    """(objects, problems, torn_tail): every complete line must be a JSON object."""
    data = open(path, "rb").read() if os.path.exists(path) else b""
    cut = data.rfind(b"\n") + 1
    objs, problems = [], []
    for n, line in enumerate(data[:cut].split(b"\n")[:-1], 1):
        try:
            o = json.loads(line.decode("utf-8"))
            assert isinstance(o, dict) and isinstance(o.get("file"), str)
            objs.append(o)
        except (ValueError, AssertionError, UnicodeDecodeError) as e:
            problems.append("line %d is not a result object (%s): %r" % (n, e, line[:120]))
    return objs, problems, data[cut:]


def answer(o):
    return ("error",) if "error" in o else tuple(e["class_index"] for e in o["top"])


def main():
    shared = wwtest.shared_dir(need_models=True)
    model = wwtest.real_model_path(shared)
    root = fresh_dir("tree")
    sample = wwtest.all_images(shared)
    picked = sample[3::len(sample) // N_IMAGES][:N_IMAGES]
    images = []
    for i, src in enumerate(picked):
        sub = os.path.join(root, ["", "a", os.path.join("a", "deeper"), "b"][i % 4])
        os.makedirs(sub, exist_ok=True)
        dst = os.path.join(sub, os.path.basename(src))
        os.symlink(src, dst)
        images.append(dst)
    bad = os.path.join(root, "b", "broken.jpg")
    with open(bad, "wb") as f:
        f.write(b"not an image at all")
    images.append(bad)
    with open(os.path.join(root, "notes.txt"), "w") as f:
        f.write("not an image\n")
    os.makedirs(os.path.join(root, ".hidden"))
    os.symlink(picked[0], os.path.join(root, ".hidden", "skipped.JPEG"))
    want = sorted(images)

    out_dir = fresh_dir("out")
    reference = os.path.join(out_dir, "reference.jsonl")
    r = wwtest.run_cli(["classify", "--model", model, "--recursive", root, "--output", reference])
    objs, problems, torn = read_lines(reference)
    c.check(r.returncode == 1 and not r.crashed, "uninterrupted run exits 1 (one bad file)", r.describe())
    c.check(not problems and not torn, "uninterrupted run: whole JSON lines only", "\n".join(problems))
    c.check(sorted(o["file"] for o in objs) == want,
            "one line per image under the tree (%d; hidden and non-image files skipped)" % len(want),
            "got %s\nwant %s" % (sorted(o["file"] for o in objs), want))
    c.check(r.stdout == "", "with --output nothing goes to stdout")
    ref = {o["file"]: o for o in objs}
    c.check("error" in ref.get(bad, {}), "the bad file has an error line")

    by_file, probs, _ = wwtest.classify_json([p for p in want if p != bad], model, k=5)
    same = [p for p in by_file if p in ref and answer(ref[p]) == answer(by_file[p])
            and all(abs(a["prob"] - b["prob"]) < 1e-6 for a, b in zip(ref[p]["top"], by_file[p]["top"]))]
    c.check(not probs and len(same) == len(want) - 1, "lines equal `classify --json` on the same files "
            "(%d of %d)" % (len(same), len(want) - 1), "\n".join(probs[:3]))
    for o in objs:
        if "error" not in o:
            c.check(not wwtest.check_result_object(o, arch="mobilenet_v2", k=5), "line format of %s" %
                    os.path.basename(o["file"]), wwtest.check_result_object(o))
            break

    before = open(reference, "rb").read()
    r = wwtest.run_cli(["classify", "--model", model, "--recursive", root, "--output", reference])
    c.check(r.returncode != 0 and "--resume" in r.stderr and open(reference, "rb").read() == before,
            "an existing output without --resume is refused and left alone", r.describe())

    # kill -9 at random moments, resume each time
    seed = int(os.environ.get("WANWU_TEST_SEED", int(time.time())))
    wwtest.log("kill times drawn with seed %d (WANWU_TEST_SEED repeats them)" % seed)
    rng = random.Random(seed)
    out = os.path.join(out_dir, "killed.jsonl")
    cmd = [wwtest.wanwu_bin(), "classify", "--model", model, "--recursive", root, "--output", out,
           "--resume", "--jobs", "2"]
    env = dict(os.environ, WANWU_PROGRESS="0")
    # Timing of a whole run (time to its first line = loading; then the time
    # per image), to put the kills at moments that matter.
    timing = os.path.join(out_dir, "timing.jsonl")
    t0 = time.time()
    p = subprocess.Popen(cmd[:cmd.index("--output") + 1] + [timing, "--jobs", "2"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    t_first = None
    while p.poll() is None:
        if t_first is None and read_lines(timing)[0]:
            t_first = time.time() - t0
        time.sleep(0.005)
    whole = time.time() - t0
    load_s = t_first if t_first is not None else whole / 2
    per_image_s = max(0.002, (whole - load_s) / len(want))
    wwtest.log("timing run: %.2fs, first line after %.2fs, %.1f ms per image" %
               (whole, load_s, 1000 * per_image_s))
    kills, partial = 0, 0
    for attempt in range(KILLS):
        lines_before = len(read_lines(out)[0])
        left = len(want) - lines_before
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        t_start = time.time()
        if attempt % 2:
            # after this run has written its first line (the model is loaded), a
            # random moment within the next few images
            while p.poll() is None and len(read_lines(out)[0]) == lines_before \
                    and time.time() - t_start < 120:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 3.0 * per_image_s))
        else:
            # any moment, loading included, before half of what is left is done
            time.sleep(rng.uniform(0.0, load_s + 0.5 * left * per_image_s))
        delay = time.time() - t_start
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
        p.stderr.close()
        objs, problems, torn = read_lines(out)
        files = [o["file"] for o in objs]
        c.check(not problems and len(files) == len(set(files)),
                "after kill %d at %.2fs: %d whole lines, no file twice%s" %
                (attempt + 1, delay, len(files), " (+ %d-byte torn tail)" % len(torn) if torn else ""),
                "\n".join(problems))
        partial += 0 < len(files) < len(want)
        if attempt == 2 and objs and not torn:
            with open(out, "ab") as f:  # a torn last line, as a crash mid-write would leave
                f.write(b'{"file":"' + files[0].encode()[:10])
    c.check(kills >= 1 and partial >= 1, "runs were killed mid-way (%d of %d killed, %d with part of the "
            "images done)" % (kills, KILLS, partial))

    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=1500)
    objs, problems, torn = read_lines(out)
    files = [o["file"] for o in objs]
    c.check(r.returncode in (0, 1) and r.returncode >= 0, "final resume finishes (exit %d)" % r.returncode,
            r.stderr.decode("utf-8", "replace")[-2000:])
    c.check(not problems and not torn, "final file: whole JSON lines only, no torn last line", "\n".join(problems))
    c.check(sorted(files) == want, "every image exactly once after %d kills and resumes" % kills,
            "missing %s\ntwice %s" % (sorted(set(want) - set(files)),
                                       sorted(f for f in set(files) if files.count(f) > 1)))
    diff = [f for f in files if f in ref and answer(ref[f]) != answer({f: o for o in objs if o["file"] == f}[f])]
    c.check(not diff, "same answers as the uninterrupted run", "differ: %s" % diff)

    size = os.path.getsize(out)
    r = wwtest.run_cli(["classify", "--model", model, "--recursive", root, "--output", out, "--resume"])
    c.check(r.returncode == 0 and os.path.getsize(out) == size and "already" in r.stderr,
            "--resume on a finished file adds nothing", r.describe())
    r = wwtest.run_cli(["classify", "--model", model, "--recursive", root, "--resume"])
    c.check(r.returncode == 2 and not r.crashed, "--resume without --output is a usage error", r.describe())
    c.done()


if __name__ == "__main__":
    main()
