#!/usr/bin/env python3
"""Statistics of an extra reference set against the shared one
(Tests/Fixtures/reference-extra/README.md, "Statistics"): schema identical to
the shared records (keys, order, lengths, all finite), no id, text or input_ids
shared with them, token counts, and the seed's own float32 error against its
float64 in both sets (error = max|f32 - f64| / max|f64| per vector, over every
(example, class) pair).

Usage: python3 tools/reference/check_extra.py EXTRA_JSONL EXTRA_TEXTS SHARED_JSONL SHARED_TEXTS
"""
import json
import math
import re
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def err(a, b):
    return max(abs(x - y) for x, y in zip(a, b)) / max(max(abs(y) for y in b), 1e-300)


def f32_report(recs):
    classes = sorted({int(k[3:]) for k in recs[0]["f64"] if re.fullmatch(r"gs_\d+", k)})
    logit = max(abs(x - y) for r in recs for x, y in zip(r["f32"]["logits"], r["f64"]["logits"]))
    agree = sum(
        max(range(len(classes)), key=lambda c: r["f32"]["logits"][c])
        == max(range(len(classes)), key=lambda c: r["f64"]["logits"][c])
        for r in recs
    )
    worst = {m: max(err(r["f32"][f"{m}_{c}"], r["f64"][f"{m}_{c}"]) for r in recs for c in classes) for m in ("gs", "gi", "lrp")}
    over = sum(err(r["f32"][f"lrp_{c}"], r["f64"][f"lrp_{c}"]) > 1e-2 for r in recs for c in classes)
    lat = max(err(r["f32"]["lat"], r["f64"]["lat"]) for r in recs)
    return (
        f"seed's float32 vs its float64: logits max |diff| {logit:.2e}, predicted class agrees {agree}/{len(recs)}; "
        f"gs max err {worst['gs']:.2e}; gi max err {worst['gi']:.2e}; lrp max err {worst['lrp']:.2e} "
        f"({over}/{len(recs) * len(classes)} pairs > 1e-2); lat max err {lat:.2e}"
    )


def schema(rec):
    return [(k, len(v) if isinstance(v, list) else None) for k, v in rec.items()]


def main(argv):
    if len(argv) != 5:
        print("usage: check_extra.py EXTRA_JSONL EXTRA_TEXTS SHARED_JSONL SHARED_TEXTS", file=sys.stderr)
        sys.exit(2)
    extra, extra_texts, shared, shared_texts = (load(p) for p in argv[1:])
    bad = []
    keys = list(shared[0])
    for r in extra:
        t = len(r["tokens"])
        if list(r) != keys or len(r["input_ids"]) != t or len(r["token_type_ids"]) != t:
            bad.append(r["id"])
        for dt in ("f64", "f32"):
            if list(r[dt]) != list(shared[0][dt]):
                bad.append(r["id"])
            for k, v in r[dt].items():
                vals = v if isinstance(v, list) else [v]
                if (k != "logits" and isinstance(v, list) and len(v) != t) or not all(math.isfinite(x) for x in vals):
                    bad.append(r["id"])
    print(f"{len(extra)} records, schema {'identical to' if not bad else 'DIFFERS from'} the shared records"
          f" (keys, order, lengths, all finite){'' if not bad else ': ' + ', '.join(sorted(set(bad)))}")
    ids = {r["id"] for r in shared}
    texts = {r["text"] for r in shared_texts} | {r["text_b"] for r in shared_texts if r.get("text_b")}
    seqs = {tuple(r["input_ids"]) for r in shared}
    print(f"id clashes with shared: {sum(r['id'] in ids for r in extra)}; "
          f"texts also in shared texts: {sum(r['text'] in texts or r.get('text_b') in texts for r in extra_texts if r)}; "
          f"identical input_ids in shared: {sum(tuple(r['input_ids']) in seqs for r in extra)}")
    lens = sorted(len(r["tokens"]) for r in extra)
    pairs = sum(1 in r["token_type_ids"] for r in extra)
    print(f"T: min {lens[0]}, median {lens[(len(lens) - 1) // 2]}, max {lens[-1]}; pairs {pairs}; at T = max: {lens.count(lens[-1])}")
    print("shared: " + f32_report(shared))
    print("extra : " + f32_report(extra))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
