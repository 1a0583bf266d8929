"""Reads a reference texts file (one {"id", "text", optional "text_b", ...} a
line, UTF-8), shared by the reference drivers beside this file."""
import json
import sys


def read_texts(path, ids, prog):
    """The records of `path`, in file order; only those whose id is in `ids`
    when it is not empty (every one of them must exist)."""
    with open(path, encoding="utf-8") as f:
        recs = [json.loads(line) for line in f if line.strip()]
    want = set(ids)
    if want:
        missing = want - {r["id"] for r in recs}
        if missing:
            sys.exit(f"{prog}: {path}: no record with id {sorted(missing)[0]}")
        recs = [r for r in recs if r["id"] in want]
    return recs
