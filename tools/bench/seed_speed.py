#!/usr/bin/env python3
"""The seed's own code timed on the seed's four methods, for the README's
speed comparison: BERT-LRP (frankaging/BERT-LRP at 85b30a7; only
code/model/BERT.py and code/util/lrp.py, unchanged, as
tools/reference/seed_reference.py loads them) on the examples `bertlrp-batch
tokenize` gives, float32, eval mode:

    bertlrp-batch tokenize --model MODEL_DIR INPUT > ids.jsonl
    python3 tools/bench/seed_speed.py SEED_DIR MODEL_DIR ids.jsonl [--batch 8] [--threads 2] [--repeats 1]

Per batch (padded to its longest example, attention mask set): the forward
pass, lat (`backward_lat`, with the model's layer and head counts), then for
the predicted class the seed's `backward_gradient` (gs), `backward_gradient_input`
(gi) and `backward_lrp` (lrp) from logits ⊙ onehot, as its notebook does.
Prints the load time and, per repeat, the timed loop's seconds, examples/s and CPU seconds
(the loop only: loading and tokenizing are not in it). Needs torch, safetensors
and numpy (no transformers: the ids come from our tokenizer).
"""
import argparse
import json
import os
import sys
import time

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "reference"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("seed_dir"); ap.add_argument("model_dir"); ap.add_argument("ids_jsonl")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    start = time.perf_counter()
    from seed_reference import load_seed, build_model
    seed = load_seed(a.seed_dir)
    model, config, num_labels = build_model(seed, a.model_dir, torch.float32)
    print(f"load {time.perf_counter() - start:.2f} s", flush=True)
    records = [json.loads(line) for line in open(a.ids_jsonl) if line.strip()]
    if a.limit:
        records = records[: a.limit]
    batches = []
    for i in range(0, len(records), a.batch):
        chunk = records[i : i + a.batch]
        t = max(len(r["ids"]) for r in chunk)
        ids = torch.zeros(len(chunk), t, dtype=torch.long)
        types = torch.zeros(len(chunk), t, dtype=torch.long)
        mask = torch.zeros(len(chunk), t, dtype=torch.long)
        for b, r in enumerate(chunk):
            n = len(r["ids"])
            ids[b, :n] = torch.tensor(r["ids"]); types[b, :n] = torch.tensor(r["segments"]); mask[b, :n] = 1
        lens = torch.tensor([[len(r["ids"])] for r in chunk])
        batches.append((ids, types, mask, lens))
    tokens = sum(len(r["ids"]) for r in records)
    print(f"{len(records)} examples, {tokens} tokens, batches of {a.batch}, {a.threads} thread(s)", flush=True)
    for rep in range(a.repeats):
        start, cpu = time.perf_counter(), time.process_time()
        checksum = 0.0
        for ids, types, mask, lens in batches:
            _, logits, attn, _ = model(ids, types, mask, lens, labels=torch.zeros(ids.shape[0], dtype=torch.long))
            lat = torch.ones_like(ids, dtype=torch.float32).new_zeros(ids.shape)
            lat[:, 0] = 1.0
            lat = torch.stack(config.num_attention_heads * [lat], dim=1).unsqueeze(dim=2)
            for i in reversed(range(config.num_hidden_layers)):
                lat = torch.matmul(lat, attn[i])
            lat = lat.sum(dim=1).squeeze(dim=1)
            onehot = torch.zeros(logits.shape)
            onehot[torch.arange(logits.shape[0]), logits.argmax(dim=-1)] = 1.0
            sg = logits * onehot
            gs = model.backward_gradient(sg).norm(dim=-1) ** 2
            gi = model.backward_gradient_input(sg).norm(dim=-1) ** 2
            lrp = model.backward_lrp(sg).abs().sum(dim=-1)
            checksum += float((gs.sum() + gi.sum() + lrp.sum() + lat.sum()).detach())
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"repeat {rep + 1}: {seconds:.2f} s, {len(records) / seconds:.2f} examples/s, "
              f"{cpu:.2f} CPU-s (checksum {checksum:.4g})", flush=True)


if __name__ == "__main__":
    main()
