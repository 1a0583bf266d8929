#!/usr/bin/env python3
"""Builds BERT-base-sized checkpoints with random weights for `scripts/bench-convert`.

    pip install torch numpy crc32c
    python3 tools/make_convert_checkpoints.py OUT_DIR

writes OUT_DIR/{torch-zip,torch-legacy,torch-fp16,torch-bf16,tf,tf-adam}, each a
checkpoint (438 MB in float32) with bert_config.json and a vocab.txt. The TF
bundles are written byte for byte as TF's BundleWriter/TableBuilder writes
them (no compression), so that TensorFlow itself is not needed.
"""
import torch, json, os, struct, sys, numpy as np, collections
if len(sys.argv) != 2:
    sys.exit("usage: make_convert_checkpoints.py OUT_DIR")
out = sys.argv[1]
V, H, L, I, P, T, C = 30522, 768, 12, 3072, 512, 2, 2
g = torch.Generator().manual_seed(0)
sd = collections.OrderedDict()
def r(*s): return torch.randn(*s, generator=g) * 0.02
sd["bert.embeddings.word_embeddings.weight"] = r(V, H)
sd["bert.embeddings.position_embeddings.weight"] = r(P, H)
sd["bert.embeddings.token_type_embeddings.weight"] = r(T, H)
sd["bert.embeddings.LayerNorm.weight"] = 1 + r(H); sd["bert.embeddings.LayerNorm.bias"] = r(H)
for l in range(L):
    p = f"bert.encoder.layer.{l}."
    for m in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]:
        sd[p + m + ".weight"] = r(H, H); sd[p + m + ".bias"] = r(H)
    sd[p + "attention.output.LayerNorm.weight"] = 1 + r(H); sd[p + "attention.output.LayerNorm.bias"] = r(H)
    sd[p + "intermediate.dense.weight"] = r(I, H); sd[p + "intermediate.dense.bias"] = r(I)
    sd[p + "output.dense.weight"] = r(H, I); sd[p + "output.dense.bias"] = r(H)
    sd[p + "output.LayerNorm.weight"] = 1 + r(H); sd[p + "output.LayerNorm.bias"] = r(H)
sd["bert.pooler.dense.weight"] = r(H, H); sd["bert.pooler.dense.bias"] = r(H)
sd["classifier.weight"] = r(C, H); sd["classifier.bias"] = r(C)
cfg = dict(vocab_size=V, hidden_size=H, num_hidden_layers=L, num_attention_heads=12, intermediate_size=I,
           hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
           max_position_embeddings=P, type_vocab_size=T, initializer_range=0.02)
vocab = "\n".join(["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"tok{i}" for i in range(V - 104)]) + "\n"
def folder(name, config=True):
    d = os.path.join(out, name); os.makedirs(d, exist_ok=True)
    if config: json.dump(cfg, open(os.path.join(d, "bert_config.json"), "w"))
    open(os.path.join(d, "vocab.txt"), "w").write(vocab)
    return d
torch.save(sd, os.path.join(folder("torch-zip"), "pytorch_model.bin"))
torch.save(sd, os.path.join(folder("torch-legacy"), "pytorch_model.bin"), _use_new_zipfile_serialization=False)
torch.save(collections.OrderedDict((k, v.half()) for k, v in sd.items()), os.path.join(folder("torch-fp16"), "pytorch_model.bin"))
torch.save(collections.OrderedDict((k, v.bfloat16()) for k, v in sd.items()), os.path.join(folder("torch-bf16"), "pytorch_model.bin"))

# TF bundle, written as TF's BundleWriter/TableBuilder would (no compression).
import crc32c as _c
def crc32c(b): return _c.crc32c(b)
def mask(c): return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF
def varint(v):
    o = bytearray()
    while v >= 0x80: o.append((v & 0x7F) | 0x80); v >>= 7
    o.append(v); return bytes(o)
def field_v(n, v): return varint(n << 3) + varint(v)
def field_b(n, b): return varint(n << 3 | 2) + varint(len(b)) + b
def tf_name(hf):
    if hf == "classifier.weight": return "output_weights"
    if hf == "classifier.bias": return "output_bias"
    parts = hf.split("."); outp = []; i = 0
    while i < len(parts):
        if parts[i] == "layer" and i + 1 < len(parts) and parts[i+1].isdigit(): outp.append("layer_" + parts[i+1]); i += 2; continue
        outp.append(parts[i]); i += 1
    if outp[-1] == "weight":
        outp.pop()
        if not outp[-1].endswith("_embeddings"): outp.append("gamma" if outp[-1] == "LayerNorm" else "kernel")
    elif outp[-1] == "bias" and outp[-2] == "LayerNorm": outp[-1] = "beta"
    return "/".join(outp)

def write_bundle(d, tensors, adam=False):
    items = []
    for hf, t in tensors.items():
        name = tf_name(hf)
        a = t.numpy()
        if name.endswith("kernel"): a = np.ascontiguousarray(a.T)
        items.append((name, a))
        if adam:
            items.append((name + "/adam_m", np.zeros_like(a))); items.append((name + "/adam_v", np.zeros_like(a)))
    items.append(("global_step", np.array(1000, dtype=np.int64)))
    items.sort(key=lambda x: x[0].encode())
    prefix = os.path.join(d, "bert_model.ckpt")
    entries = []
    with open(prefix + ".data-00000-of-00001", "wb") as f:
        off = 0
        for name, a in items:
            b = a.tobytes()
            f.write(b)
            dt = 1 if a.dtype == np.float32 else 9
            shape = b"".join(field_b(2, field_v(1, s)) for s in a.shape)
            e = field_v(1, dt) + field_b(2, shape)
            if off: e += field_v(4, off)
            if len(b): e += field_v(5, len(b))
            e += b"\x35" + struct.pack("<I", mask(crc32c(b)))
            entries.append((name.encode(), e)); off += len(b)
    entries.insert(0, (b"", field_v(1, 1) + field_b(3, b"\x08\x01")))
    # one data block per <= 256 KiB, restart interval 16
    fileb = bytearray()
    def block(kvs, interval):
        buf = bytearray(); restarts = [0]; last = b""; cnt = 0
        for k, v in kvs:
            sh = 0
            if cnt < interval:
                while sh < min(len(last), len(k)) and last[sh] == k[sh]: sh += 1
            else: restarts.append(len(buf)); cnt = 0
            buf += varint(sh) + varint(len(k) - sh) + varint(len(v)) + k[sh:] + v
            last = k; cnt += 1
        for r in restarts: buf += struct.pack("<I", r)
        buf += struct.pack("<I", len(restarts)); return bytes(buf)
    def emit(contents):
        off = len(fileb); fileb.extend(contents); fileb.append(0)
        fileb.extend(struct.pack("<I", mask(crc32c(contents + b"\x00"))))
        return varint(off) + varint(len(contents))
    index = []; i = 0
    while i < len(entries):
        chunk = entries[i:i+2000]; i += len(chunk)
        h = emit(block(chunk, 16)); index.append((chunk[-1][0] + b"\xff", h))
    meta = emit(block([], 16)); idx = emit(block(index, 1))
    footer = meta + idx; footer += b"\x00" * (40 - len(footer)); footer += struct.pack("<Q", 0xdb4775248b80fb57)
    fileb.extend(footer)
    open(prefix + ".index", "wb").write(fileb)
write_bundle(folder("tf"), sd)
write_bundle(folder("tf-adam"), sd, adam=True)
