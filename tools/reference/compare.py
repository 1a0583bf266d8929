#!/usr/bin/env python3
"""Compares reference records made anew with the committed ones, by the
contract's error (docs/CONTRACT.md section 5: largest absolute difference / largest
absolute reference value, per score vector; scalars: |difference| / |reference|,
with the absolute difference beside it).

Usage: python3 tools/reference/compare.py NEW_JSONL COMMITTED_JSONL

Every record of NEW_JSONL must be in COMMITTED_JSONL (by id) with the same
keys, tokens, input_ids and token_type_ids (where present) and the same vector
lengths. Prints the worst error per score (`gs`, `lrp`, ... over every class)
and dtype; exits 1 on a structural difference.
"""
import json
import re
import sys


def family(key):
    return re.sub(r"_\d+$", "", key)


def main(argv):
    if len(argv) != 3:
        print("usage: compare.py NEW_JSONL COMMITTED_JSONL", file=sys.stderr)
        sys.exit(2)
    new_path, ref_path = argv[1:]
    with open(ref_path) as f:
        ref = {r["id"]: r for r in map(json.loads, f)}
    worst = {}  # (dtype, family) -> (err, abs, id)
    bad = 0
    n = 0
    with open(new_path) as f:
        for line in f:
            a = json.loads(line)
            n += 1
            b = ref.get(a["id"])
            if b is None:
                print(f"{a['id']}: not in {ref_path}")
                bad += 1
                continue
            for k in ("tokens", "input_ids", "token_type_ids"):
                if a.get(k) != b.get(k):
                    print(f"{a['id']}: {k} differ")
                    bad += 1
            if list(a) != list(b):
                print(f"{a['id']}: keys differ: {list(a)} vs {list(b)}")
                bad += 1
            for dt in ("f64", "f32"):
                if list(a[dt]) != list(b[dt]):
                    print(f"{a['id']}.{dt}: keys differ: {list(a[dt])} vs {list(b[dt])}")
                    bad += 1
                    continue
                for k, x in a[dt].items():
                    y = b[dt][k]
                    if isinstance(y, list):
                        if len(x) != len(y):
                            print(f"{a['id']}.{dt}.{k}: length {len(x)} vs {len(y)}")
                            bad += 1
                            continue
                        diff = max((abs(u - v) for u, v in zip(x, y)), default=0.0)
                        scale = max((abs(v) for v in y), default=0.0)
                    else:
                        diff, scale = abs(x - y), abs(y)
                    err = diff / scale if scale > 0 else diff
                    key = (dt, family(k))
                    if key not in worst or err > worst[key][0]:
                        worst[key] = (err, diff, a["id"] + ("" if family(k) == k else k[len(family(k)):]))
    print(f"{n} records compared with {ref_path}; structural differences: {bad}")
    for (dt, fam), (err, diff, where) in sorted(worst.items()):
        print(f"  {dt} {fam:16s} worst error {err:.2e} (abs {diff:.2e}) at {where}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
