#!/usr/bin/env python3
"""A BERT-base-sized classifier with random weights (normal, std 0.02; LayerNorm
scales 1, as BERT initializes), for the speed figures of the README:

    python3 tools/bench/make_base_model.py OUT_DIR

writes OUT_DIR/config.json, model.safetensors (float32, 438 MB) and the
bundled model's vocabulary and tokenizer files (the same uncased BERT
vocabulary of 30,522 entries), so that `bertlrp-batch --model OUT_DIR` and
tools/bench/seed_speed.py read the same model. Needs numpy only.
"""
import json, os, shutil, sys

import numpy as np

if len(sys.argv) != 2:
    sys.exit("usage: make_base_model.py OUT_DIR")
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
V, H, L, I, P, T, C = 30522, 768, 12, 3072, 512, 2, 2
rng = np.random.default_rng(0)
tensors = {}
def r(*shape): return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
def norm(prefix):
    tensors[prefix + ".weight"] = np.ones(H, np.float32); tensors[prefix + ".bias"] = np.zeros(H, np.float32)
tensors["bert.embeddings.word_embeddings.weight"] = r(V, H)
tensors["bert.embeddings.position_embeddings.weight"] = r(P, H)
tensors["bert.embeddings.token_type_embeddings.weight"] = r(T, H)
norm("bert.embeddings.LayerNorm")
for l in range(L):
    p = f"bert.encoder.layer.{l}."
    for m in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]:
        tensors[p + m + ".weight"] = r(H, H); tensors[p + m + ".bias"] = r(H)
    norm(p + "attention.output.LayerNorm")
    tensors[p + "intermediate.dense.weight"] = r(I, H); tensors[p + "intermediate.dense.bias"] = r(I)
    tensors[p + "output.dense.weight"] = r(H, I); tensors[p + "output.dense.bias"] = r(H)
    norm(p + "output.LayerNorm")
tensors["bert.pooler.dense.weight"] = r(H, H); tensors["bert.pooler.dense.bias"] = r(H)
tensors["classifier.weight"] = r(C, H); tensors["classifier.bias"] = r(C)

# safetensors: 8-byte little-endian header length, JSON header, raw little-endian data.
header, offset = {}, 0
for name, t in tensors.items():
    header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
    offset += t.nbytes
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(len(text).to_bytes(8, "little")); f.write(text)
    for t in tensors.values():
        f.write(t.astype("<f4").tobytes())
config = dict(architectures=["BertForSequenceClassification"], model_type="bert", vocab_size=V, hidden_size=H,
              num_hidden_layers=L, num_attention_heads=12, intermediate_size=I, hidden_act="gelu",
              max_position_embeddings=P, type_vocab_size=T, layer_norm_eps=1e-12, initializer_range=0.02,
              id2label={"0": "negative", "1": "positive"}, label2id={"negative": 0, "positive": 1})
with open(os.path.join(out, "config.json"), "w") as f:
    json.dump(config, f, indent=2)
bundled = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "minilm-sst2")
for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
    shutil.copy(os.path.join(bundled, name), os.path.join(out, name))
print(f"{out}: {len(tensors)} tensors, {offset / 1e6:.0f} MB")
