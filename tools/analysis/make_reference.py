#!/usr/bin/env python3
"""Reference numbers for Tests/AnalysisTests/ReferenceTests.swift, from the
libraries the analyses imitate (never a test dependency; the output is committed):

- scikit-learn's classification_report(output_dict=True) and confusion_matrix
  of seeded random (truth, prediction) lists, zero-division cases included;
- scipy.stats.pearsonr / spearmanr of seeded random vectors with ties;
- the seed's word ranking: `load_attribution_scores(normalized=True)` of
  BERT-LRP's code/notebook/lrp_visualize.ipynb, re-implemented line for line
  below over our run shards (torch's float32 |s| / max|s|, Python's dict order,
  its stable sort), for Tests/Fixtures/analysis/run-a and run-b, per method,
  with and without special tokens; and the correlation of the two runs'
  per-token means over their common tokens (experiment 3.4).

Usage (from the repository root; needs numpy, scipy, scikit-learn and the zstd command):
    python3 tools/analysis/make_reference.py > Tests/Fixtures/analysis/reference.json
Made with numpy 2.4.6, scipy 1.17.1, scikit-learn 1.9.1, Python 3.11.7.
"""
import json, random, subprocess, sys
import numpy as np
from scipy import stats
from sklearn.metrics import classification_report, confusion_matrix

rng = random.Random(20261201)
out = {"classification": [], "correlation": [], "words": {}}

# Classification reports: 2-4 classes, some absent from truth or predictions.
for case in range(12):
    n_classes = rng.choice([2, 3, 4])
    n = rng.choice([1, 5, 20, 100])
    truth = [rng.randrange(n_classes) for _ in range(n)]
    if case % 3 == 0:
        pred = [rng.randrange(n_classes - 1) for _ in range(n)]   # a class never predicted
    else:
        pred = [t if rng.random() < 0.7 else rng.randrange(n_classes) for t in truth]
    rep = classification_report(truth, pred, output_dict=True, zero_division="warn")
    labels = sorted(set(truth) | set(pred))
    out["classification"].append({
        "truth": truth, "predicted": pred, "classes": labels,
        "accuracy": rep["accuracy"],
        "per_class": [rep[str(c)] for c in labels],
        "macro": rep["macro avg"], "weighted": rep["weighted avg"],
        "confusion": confusion_matrix(truth, pred).tolist(),
    })

# Correlations with ties.
for case in range(8):
    n = rng.choice([3, 10, 50, 200])
    x = [float(rng.randrange(5)) if case % 2 else rng.gauss(0, 1) for _ in range(n)]
    y = [xi + rng.gauss(0, 1) if case % 3 else float(rng.randrange(4)) for xi in x]
    out["correlation"].append({"x": x, "y": y, "pearson": float(stats.pearsonr(x, y)[0]),
                               "spearman": float(stats.spearmanr(x, y)[0])})

# The seed's ranking over our shards.
def records(run):
    text = subprocess.run(["zstdcat", f"Tests/Fixtures/analysis/{run}/part-00000.jsonl.zst"],
                          check=True, capture_output=True, text=True).stdout
    return [json.loads(l) for l in text.splitlines() if l]

def scores(r, method):
    return r[method] if method in r else r["attributions"][0][method]

def load_attribution_scores(recs, method, specials, min_freq=0):
    """The seed's function on our records: tokens and scores per sentence,
    normalized=True. Without `specials`, [CLS]/[SEP] (offset null) are dropped
    before the maximum, as docs/CONTRACT.md section 7 says."""
    word_lrp = {}
    for r in recs:
        keep = [i for i, o in enumerate(r["offsets"]) if specials or o is not None]
        tokens = [r["tokens"][i] for i in keep]
        a = np.abs(np.array([scores(r, method)[i] for i in keep], dtype=np.float32))
        s = (a / a.max()).tolist()          # torch.abs(x) / torch.max(torch.abs(x)) in float32
        for token, score in zip(tokens, s):
            word_lrp.setdefault(token, []).append(score)
    filtered = {k: sum(v) * 1.0 / len(v) for k, v in word_lrp.items() if len(v) > min_freq}
    ranked = [(k, v, len(word_lrp[k])) for k, v in filtered.items()]
    ranked.sort(key=lambda x: x[1], reverse=True)
    return ranked, filtered

runs = {name: records(name) for name in ["run-a", "run-b"]}
for method in ["gs", "lat"]:
    for specials in [False, True]:
        key = f"{method}{'+specials' if specials else ''}"
        both, _ = load_attribution_scores(runs["run-a"] + runs["run-b"], method, specials)
        means = [load_attribution_scores(runs[n], method, specials)[1] for n in ["run-a", "run-b"]]
        common = sorted(set(means[0]) & set(means[1]))
        x = [means[0][w] for w in common]; y = [means[1][w] for w in common]
        out["words"][key] = {
            "ranking": [{"token": t, "mean": m, "count": c} for t, m, c in both],
            "common_tokens": len(common),
            "pearson": float(stats.pearsonr(x, y)[0]), "spearman": float(stats.spearmanr(x, y)[0]),
        }
json.dump(out, sys.stdout, indent=None)
print()
