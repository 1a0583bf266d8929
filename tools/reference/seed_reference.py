#!/usr/bin/env python3
"""Reference scores of the seed's four methods (gs, gi, lrp, lat) by the seed's
own PyTorch code: makes Tests/Fixtures/reference/{tiny-bert,minilm-sst2}.jsonl
and Tests/Fixtures/reference-extra/*-extra.jsonl (the record layout and the
method are in those folders' README.md; docs/CONTRACT.md section 5).

The seed's code is not in this repository: give a checkout of
frankaging/BERT-LRP at commit 85b30a7 (only code/model/BERT.py and
code/util/lrp.py are used, unchanged):

    git clone https://github.com/frankaging/BERT-LRP seed
    git -C seed checkout 85b30a7816d4f3e6f1e96baf602a851cca760ef9

Usage (from the repository root; pip install torch transformers safetensors six,
any transformers version: only its BertTokenizerFast is used, `.tokenize()` per
segment, then the seed's truncation):

    python3 tools/reference/seed_reference.py SEED_DIR MODEL_DIR TEXTS_JSONL MAX_LEN OUT_JSONL [ID ...]

TEXTS_JSONL: one {"id", "text", optional "text_b", ...} a line. With IDs, only
those records are made (in input order). Each example runs on its own (batch of
one, no padding), once in float64 (`f64`) and once in float32 (`f32`), on one
thread. Compare with tools/reference/compare.py.
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file

from texts import read_texts  # beside this file


def load_seed(seed_dir):
    """Imports the seed's BERT.py the way its own scripts do (code/ on the path,
    so that its `from util.lrp import *` resolves)."""
    code = os.path.join(seed_dir, "code")
    for f in ("model/BERT.py", "util/lrp.py"):
        if not os.path.isfile(os.path.join(code, f)):
            sys.exit(f"seed_reference: {seed_dir}: no code/{f} (a checkout of BERT-LRP at 85b30a7?)")
    sys.path.insert(0, code)
    import model.BERT as seed  # noqa: E402
    return seed


def truncate_seq_pair(a, b, max_length):
    """The seed's `_truncate_seq_pair` (code/util/processor.py): pop from the end
    of the longer segment, B on ties."""
    while len(a) + len(b) > max_length:
        if len(a) > len(b):
            a.pop()
        else:
            b.pop()


def encode(tok, rec, max_len):
    """[CLS] A [SEP] (B [SEP]), token types 0/1, as the seed's processor."""
    a = tok.tokenize(rec["text"])
    b = tok.tokenize(rec["text_b"]) if rec.get("text_b") is not None else None
    if b is not None:
        truncate_seq_pair(a, b, max_len - 3)
        tokens = ["[CLS]"] + a + ["[SEP]"] + b + ["[SEP]"]
        types = [0] * (len(a) + 2) + [1] * (len(b) + 1)
    else:
        a = a[: max_len - 2]
        tokens = ["[CLS]"] + a + ["[SEP]"]
        types = [0] * len(tokens)
    return tokens, tok.convert_tokens_to_ids(tokens), types


def build_model(seed, model_dir, dtype):
    """The seed's BertForSequenceClassification with the model's config and
    weights (LayerNorm weight/bias renamed to gamma/beta, strict), hooks on
    (init_lrp), in `dtype`, eval mode (dropout off)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        hf = json.load(f)
    config = seed.BertConfig(
        vocab_size=hf["vocab_size"],
        hidden_size=hf["hidden_size"],
        num_hidden_layers=hf["num_hidden_layers"],
        num_attention_heads=hf["num_attention_heads"],
        intermediate_size=hf["intermediate_size"],
        max_position_embeddings=hf["max_position_embeddings"],
        type_vocab_size=hf["type_vocab_size"],
    )
    num_labels = len(hf["id2label"])
    state = {}
    for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items():
        if k.endswith("position_ids"):
            continue
        if ".LayerNorm." in k:
            k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        state[k] = v.to(torch.float64)  # float16/float32 weights widen exactly
    saved_stdout = sys.stdout
    sys.stdout = sys.stderr  # the seed prints "init_lrp = True" etc.
    try:
        model = seed.BertForSequenceClassification(config, num_labels, init_weight=False, init_lrp=True)
    finally:
        sys.stdout = saved_stdout
    model = model.to(dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True)
    model.eval()
    return model, config, num_labels


def backward_lat(input_ids, attention_probs, layers, heads, dtype):
    """The seed's BertForSequenceClassification.backward_lat with its hard-coded
    12 layers and 12 heads replaced by the model's counts and its start vector
    in the run's dtype (the seed makes it float32)."""
    attention_scores = torch.zeros_like(input_ids, dtype=dtype)
    attention_scores[:, 0] = 1.0
    attention_scores = torch.stack(heads * [attention_scores], dim=1).unsqueeze(dim=2)
    for i in reversed(range(layers)):
        attention_scores = torch.matmul(attention_scores, attention_probs[i])
    return attention_scores.sum(dim=1).squeeze(dim=1).unsqueeze(dim=-1).data


def scores(model, config, num_labels, ids, types, dtype):
    """One example alone, as the seed's notebook (code/notebook/lrp_visualize.ipynb):
    the backward passes start from logits * onehot(c)."""
    input_ids = torch.tensor([ids], dtype=torch.long)
    token_type_ids = torch.tensor([types], dtype=torch.long)
    mask = torch.ones_like(input_ids)
    seq_lens = torch.tensor([[len(ids)]], dtype=torch.long)
    _, logits, attn, _ = model(input_ids, token_type_ids, mask, seq_lens, labels=torch.tensor([0]))
    out = {"logits": logits[0].tolist()}
    lat = backward_lat(input_ids, attn, config.num_hidden_layers, config.num_attention_heads, dtype)
    out["lat"] = lat.sum(dim=-1)[0].tolist()
    for c in range(num_labels):
        onehot = torch.zeros(logits.shape)
        onehot[:, c] = 1.0
        sg = logits * onehot
        g = model.backward_gradient(sg)
        out[f"gs_{c}"] = (torch.norm(g, dim=-1) * torch.norm(g, dim=-1))[0].tolist()
        gi = model.backward_gradient_input(sg)
        out[f"gi_{c}"] = (torch.norm(gi, dim=-1) * torch.norm(gi, dim=-1))[0].tolist()
        r = model.backward_lrp(sg)
        out[f"lrp_{c}"] = torch.abs(r).sum(dim=-1)[0].tolist()
        out[f"lrp_signed_sum_{c}"] = r.sum().item()
    return out


def main(argv):
    if len(argv) < 6:
        print("usage: seed_reference.py SEED_DIR MODEL_DIR TEXTS_JSONL MAX_LEN OUT_JSONL [ID ...]", file=sys.stderr)
        sys.exit(2)
    seed_dir, model_dir, texts, max_len, out_path = argv[1:6]
    from transformers import BertTokenizerFast  # only here: tools/bench/seed_speed.py imports this file without it
    torch.set_num_threads(1)
    seed = load_seed(seed_dir)
    tok = BertTokenizerFast.from_pretrained(model_dir)
    models = {name: build_model(seed, model_dir, dt) for name, dt in (("f64", torch.float64), ("f32", torch.float32))}
    dtypes = {"f64": torch.float64, "f32": torch.float32}
    recs = read_texts(texts, argv[6:], "seed_reference")
    with open(out_path, "w") as out:
        for n, rec in enumerate(recs):
            tokens, ids, types = encode(tok, rec, int(max_len))
            row = {"id": rec["id"], "tokens": tokens, "input_ids": ids, "token_type_ids": types}
            for name, (model, config, num_labels) in models.items():
                row[name] = scores(model, config, num_labels, ids, types, dtypes[name])
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(f"{n + 1}/{len(recs)} {rec['id']} T={len(ids)}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
