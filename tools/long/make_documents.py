#!/usr/bin/env python3
"""Long documents for the --long window measurement (README "Long documents"):
SST-2 dev sentences of one label joined into documents of about 600-3000
WordPiece tokens (IMDb length), as a TSV with sentence and label columns.

    python3 tools/long/make_documents.py data/sst2/dev.tsv 200 > docs.tsv
    python3 tools/long/make_documents.py data/sst2/dev.tsv 20 mixed > mixed.tsv

`mixed`: sentences of both labels in each document (its label: the
majority), so that the windows of a document disagree more often.

Token counts are estimated (1.2 pieces a word, SST-2 is tokenized already);
the run's records give the exact ones. Seeded: the same file every time.
Standard library only; the output is not committed (make it when measuring).
"""
import random
import sys


def main():
    path, n = sys.argv[1], int(sys.argv[2])
    mixed = len(sys.argv) > 3 and sys.argv[3] == "mixed"
    by_label = {}
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            sentence, label = line.rstrip("\n").split("\t")
            by_label.setdefault(label, []).append(sentence)
    rng = random.Random(14)
    labels = sorted(by_label)
    print("sentence\tlabel")
    for i in range(n):
        label = labels[i % len(labels)]
        target = rng.randint(600, 3000)
        words, parts, votes = 0, [], {}
        while words * 1.2 < target:
            pick = rng.choice(labels) if mixed else label
            s = rng.choice(by_label[pick])
            parts.append(s)
            votes[pick] = votes.get(pick, 0) + 1
            words += len(s.split())
        if mixed:
            label = max(sorted(votes), key=votes.get)
        print(" ".join(parts) + "\t" + label)


def windows_as_examples():
    """The same windows as separate examples: reads a --long window run's
    records (JSONL on standard input) and prints each window's text (the
    span of the record's text its tokens cover) as a TSV record."""
    import json
    print("sentence\tlabel")
    for line in sys.stdin:
        r = json.loads(line)
        chars = list(r["text"])
        for start, end in r.get("windows", [[1, len(r["tokens"]) - 1]]):
            a, b = r["offsets"][start][0], r["offsets"][end - 1][1]
            print("".join(chars[a:b]) + "\t" + r.get("label", ""))


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--windows":
        windows_as_examples()
    else:
        main()
