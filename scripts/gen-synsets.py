#!/usr/bin/python3
"""Regenerates src/data/imagenet_synsets.c: the 1000 ImageNet-1k WordNet ids
("wnids", e.g. n01440764) in torchvision's class-index order.

An ImageNet wnid is "n" + the 8-digit offset of a noun synset in WordNet 3.0,
and torchvision's class index is the position of the wnid in the sorted list
of the 1000 ILSVRC-2012 wnids. Sources, all offline:

  * WordNet 3.0 as Debian's `wordnet-base` ships it (/usr/share/wordnet/data.noun):
    which offsets exist and the words of each synset;
  * torchvision's class names (torchvision.models._meta._IMAGENET_CATEGORIES);
  * $WANWU_SHARED/imagenet-sample/labels.tsv: the wnid of every even class index.

Each odd class index i lies between the known wnids of classes i-1 and i+1,
so its wnid is the one WordNet noun synset in that range whose words include
torchvision's name for class i. Where WordNet has several such synsets in the
range (or torchvision renamed the class), the choice is taken from the
ILSVRC-2012 synset mapping (LOC_synset_mapping.txt, "n01440764 tench, ...",
line i = class i) and listed below; the script still checks that each one
is a WordNet synset inside its range.

Usage: apt-get install wordnet-base; scripts/gen-synsets.py
"""
import os
import re
import sys

from torchvision.models._meta import _IMAGENET_CATEGORIES as NAMES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("WANWU_SHARED") or os.path.join(ROOT, "..", "shared")
WORDNET_NOUNS = "/usr/share/wordnet/data.noun"

# class index -> wnid, from the ILSVRC-2012 mapping, where the name alone is ambiguous.
FROM_ILSVRC_MAPPING = {
    11: "n01531178", 55: "n01729977", 107: "n01910747", 121: "n01981276",
    277: "n02119022", 281: "n02123045", 345: "n02403003", 411: "n02730930",
    417: "n02782093", 427: "n02795169", 431: "n02804414", 443: "n02834397",
    471: "n02950826", 483: "n02980441", 501: "n03045698", 511: "n03100240",
    529: "n03188531", 541: "n03249569", 549: "n03291819", 553: "n03337140",
    581: "n03459775", 587: "n03481172", 597: "n03527444", 631: "n03690938",
    639: "n03710721", 643: "n03724870", 667: "n03787032", 693: "n03873416",
    697: "n03877472", 717: "n03930630", 723: "n03944341", 727: "n03956157",
    733: "n03976657", 745: "n04009552", 753: "n04040759", 763: "n04086273",
    771: "n04125021", 783: "n04153751", 787: "n04192698", 801: "n04251144",
    813: "n04270147", 815: "n04275548", 819: "n04296562", 827: "n04330267",
    847: "n04389033", 851: "n04404412", 881: "n04515003", 897: "n04554684",
    987: "n12144580",
}


def fail(msg):
    sys.exit("gen-synsets: " + msg)


def norm(s):
    return s.lower().replace("_", " ").strip()


def wordnet_nouns():
    """{offset string: [words]} for every noun synset."""
    words = {}
    with open(WORDNET_NOUNS, encoding="latin-1") as f:
        for line in f:
            if line.startswith("  "):  # licence header
                continue
            p = line.split(" ")
            count = int(p[3], 16)
            words[p[0]] = [norm(re.sub(r"\(.*\)$", "", p[4 + 2 * k])) for k in range(count)]
    return words


def known_from_sample():
    known = {}
    with open(os.path.join(SHARED, "imagenet-sample", "labels.tsv")) as f:
        header = f.readline().rstrip("\n").split("\t")
        col_syn, col_idx = header.index("synset"), header.index("class_index")
        for line in f:
            if line.strip():
                p = line.rstrip("\n").split("\t")
                known[int(p[col_idx])] = p[col_syn]
    return known


def main():
    if not os.path.isfile(WORDNET_NOUNS):
        fail("%s not found: apt-get install wordnet-base" % WORDNET_NOUNS)
    if len(NAMES) != 1000:
        fail("torchvision lists %d classes, expected 1000" % len(NAMES))
    nouns = wordnet_nouns()
    offsets = sorted(nouns)
    known = known_from_sample()
    wnids = [None] * 1000
    for i, w in known.items():
        if w[1:] not in nouns:
            fail("labels.tsv synset %s (class %d) is not a WordNet 3.0 noun synset" % (w, i))
        wnids[i] = w
    for i in range(1000):
        if wnids[i]:
            continue
        lo = wnids[i - 1][1:] if i > 0 and wnids[i - 1] else None
        hi = wnids[i + 1][1:] if i < 999 and wnids[i + 1] else "99999999"
        if lo is None:
            fail("class %d: neighbour %d has no known synset" % (i, i - 1))
        in_range = [o for o in offsets if lo < o < hi]
        if i in FROM_ILSVRC_MAPPING:
            w = FROM_ILSVRC_MAPPING[i]
            if w[1:] not in in_range:
                fail("class %d: listed %s is not a WordNet synset between %s and %s" % (i, w, lo, hi))
            wnids[i] = w
            continue
        cands = [o for o in in_range if norm(NAMES[i]) in nouns[o]]
        if len(cands) != 1:
            fail("class %d (%r): %d WordNet candidates between n%s and n%s: %s; add it to "
                 "FROM_ILSVRC_MAPPING" % (i, NAMES[i], len(cands), lo, hi, cands))
        wnids[i] = "n" + cands[0]
    if wnids != sorted(wnids) or len(set(wnids)) != 1000:
        fail("result is not 1000 distinct sorted wnids")
    for i, w in known.items():
        assert wnids[i] == w

    out = [
        "/* The 1000 ImageNet-1k WordNet ids in torchvision's class-index order",
        " * (sorted). Generated by scripts/gen-synsets.py from WordNet 3.0 (Debian's",
        " * wordnet-base), torchvision's class names and the sample's labels.tsv. */",
        '#include "data/imagenet_synsets.h"',
        "",
        "#include <string.h>",
        "",
        "static const char imagenet_synsets[1000][10] = {",
    ]
    for k in range(0, 1000, 6):
        out.append("    " + " ".join('"%s",' % w for w in wnids[k:k + 6]))
    out += [
        "};",
        "",
        "const char *ww_imagenet_synset(int class_index)",
        "{",
        "    if (class_index < 0 || class_index >= 1000) return NULL;",
        "    return imagenet_synsets[class_index];",
        "}",
        "",
        "int ww_imagenet_synset_index(const char *wnid)",
        "{",
        "    if (!wnid) return -1;",
        "    int lo = 0, hi = 999;",
        "    while (lo <= hi) {",
        "        int mid = lo + (hi - lo) / 2;",
        "        int c = strncmp(wnid, imagenet_synsets[mid], 9);",
        "        if (c == 0) return mid;",
        "        if (c < 0) hi = mid - 1;",
        "        else lo = mid + 1;",
        "    }",
        "    return -1;",
        "}",
        "",
    ]
    with open(os.path.join(ROOT, "src", "data", "imagenet_synsets.c"), "w") as f:
        f.write("\n".join(out))
    print("wrote src/data/imagenet_synsets.c: 1000 wnids, %d from labels.tsv, %d from the "
          "ILSVRC mapping, the rest matched by name in WordNet" % (len(known), len(FROM_ILSVRC_MAPPING)))


if __name__ == "__main__":
    main()
