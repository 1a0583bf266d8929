#!/usr/bin/env python3
"""Reference scores of the transformer-aware methods (docs/CONTRACT.md section 5b):
makes Tests/Fixtures/reference/{tiny-bert,minilm-sst2}.rules.jsonl (the record
layout is in that folder's README.md).

- attnlrp: LXT 2.1's `lxt.efficient` AttnLRP for BERT (`monkey_patch` of
  transformers' modeling_bert, eager attention); relevance =
  sum_h w * grad at the word embeddings, output gradient onehot(c).
- cplrp: the same patched model with the attention probabilities detached and
  the halving after A.v removed (CP-LRP).
- ixg: the same product with the ordinary gradient (the unpatched model).
- ig: Captum's LayerIntegratedGradients on bert.embeddings.word_embeddings,
  method "gausslegendre", 32 steps, baseline [PAD] except at [CLS]/[SEP];
  ig_delta is Captum's convergence delta.
- rollout: 0.5 * mean_heads(A) + 0.5 * I per layer, multiplied from the last
  layer down to the first, row 0.

Needs transformers 4.x (LXT 2.1 patches the 4.x BERT classes); made with
torch 2.13.0+cpu (any CPU build: torchvision, which lxt pulls in, is then
broken and must go, or transformers' import fails):

    python3 -m venv venv4
    venv4/bin/pip install lxt==2.1 captum==0.7.0 "transformers==4.57.*" torch safetensors
    venv4/bin/pip uninstall -y torchvision

Usage (from the repository root):

    venv4/bin/python tools/reference/rules_reference.py MODEL_DIR TEXTS_JSONL MAX_LEN OUT_JSONL {all|predicted} [ID ...]

TEXTS_JSONL: one {"id", "text", optional "text_b", ...} a line. `all`: every
class; `predicted`: the class of the float64 logits' maximum. With IDs, only
those records (in input order). Each example runs on its own (batch of one,
no padding), in float64 (`f64`) and float32 (`f32`), on one thread. Compare
with tools/reference/compare.py.
"""
import json
import sys
import types

import torch

torch.set_num_threads(1)


def torchvision_or_stub():
    """LXT's model map imports torchvision for its ViT patches, which BERT does
    not use. The PyPI torchvision wheel needs a CUDA build of torch; with a CPU
    build its import fails, and a stand-in with the one name LXT reads
    (`vision_transformer.nn`, which is torch.nn) takes its place."""
    try:
        import torchvision.models.vision_transformer  # noqa: F401
    except Exception:
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        vt = types.ModuleType("torchvision.models.vision_transformer")
        vt.nn = torch.nn
        models = types.ModuleType("torchvision.models")
        models.vision_transformer = vt
        tv = types.ModuleType("torchvision")
        tv.models = models
        sys.modules.update({"torchvision": tv, "torchvision.models": models, "torchvision.models.vision_transformer": vt})

import transformers.models.bert.modeling_bert as modeling_bert  # noqa: E402
from captum.attr import LayerIntegratedGradients  # noqa: E402
from transformers import BertTokenizerFast  # noqa: E402

from texts import read_texts  # noqa: E402  (beside this file)

DTYPES = (("f64", torch.float64), ("f32", torch.float32))


def load(model_cls, model_dir, dtype):
    model = model_cls.from_pretrained(model_dir, attn_implementation="eager", torch_dtype=torch.float32)
    model = model.to(dtype)  # float16 checkpoints widen exactly
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def encode(tok, rec, max_len):
    """[CLS] A [SEP] (B [SEP]); pairs truncated longest first (the seed's rule).
    Also which positions hold the template's [CLS]/[SEP] (not a "[CLS]" or
    "[SEP]" written in the text, which the tokenizer also keeps whole)."""
    enc = tok(rec["text"], rec.get("text_b"), truncation=True, max_length=max_len, return_special_tokens_mask=True)
    return enc["input_ids"], enc["token_type_ids"], enc["special_tokens_mask"]


def embed_times_grad(model, ids, types, c):
    """sum_h w_t,h * dlogit_c/dw_t,h, w = the word-embedding rows (the gradient
    at the word embeddings is the gradient at the embedding sum)."""
    w = model.bert.embeddings.word_embeddings(ids).detach().requires_grad_(True)
    logits = model(inputs_embeds=w, token_type_ids=types).logits
    (g,) = torch.autograd.grad(logits[0, c], w)
    return (w * g).sum(-1)[0].tolist()


def ordinary_scores(model, tok, ids, types, special, targets, classes=None):
    """logits, rollout, ixg, ig of the unpatched model, for `classes` (default:
    every class or the predicted one, by `targets`)."""
    with torch.no_grad():
        out = model(input_ids=ids, token_type_ids=types, output_attentions=True)
    logits = out.logits
    rollout = None
    for a in out.attentions:  # [1, heads, T, T], first layer first
        t = a.shape[-1]
        a_hat = 0.5 * a[0].mean(dim=0) + 0.5 * torch.eye(t, dtype=a.dtype)
        rollout = a_hat if rollout is None else a_hat @ rollout
    res = {"logits": logits[0].tolist(), "rollout": rollout[0].tolist()}

    # IG's baseline: [PAD] everywhere but the template's [CLS] and [SEP]s.
    base = torch.tensor([[i if s else tok.pad_token_id for i, s in zip(ids[0].tolist(), special)]])

    def forward(input_ids, token_type_ids):
        return model(input_ids=input_ids, token_type_ids=token_type_ids).logits

    lig = LayerIntegratedGradients(forward, model.bert.embeddings.word_embeddings)
    per_class = {}
    if classes is None:
        classes = list(range(logits.shape[-1])) if targets == "all" else [int(logits[0].argmax())]
    for c in classes:
        ixg = embed_times_grad(model, ids, types, c)
        attr, delta = lig.attribute(
            inputs=ids,
            baselines=base,
            additional_forward_args=(types,),
            target=c,
            n_steps=32,
            method="gausslegendre",
            return_convergence_delta=True,
        )
        per_class[c] = {f"ixg_{c}": ixg, f"ig_{c}": attr.sum(-1)[0].tolist(), f"ig_delta_{c}": delta.item()}
    return res, per_class


def patch_lxt():
    """lxt.efficient's AttnLRP patch of transformers' BERT, plus a CP-LRP switch
    on its self-attention: with `cp_lrp` set on a module, the attention
    probabilities are detached and the context's gradient is not halved."""
    torchvision_or_stub()
    from lxt.efficient import monkey_patch
    from lxt.efficient.models import bert as lxt_bert

    monkey_patch(modeling_bert)
    attn_cls = modeling_bert.BERT_SELF_ATTENTION_CLASSES["eager"]
    assert attn_cls is lxt_bert.BertSelfAttention
    lxt_forward = attn_cls.forward

    def forward(self, hidden_states, attention_mask=None, *args, **kwargs):
        if not getattr(self, "cp_lrp", False):
            return lxt_forward(self, hidden_states, attention_mask, *args, **kwargs)
        # LXT's eager path (absolute positions, no cache, no cross-attention),
        # with the two CP-LRP changes.
        query_layer = self.transpose_for_scores(self.query(hidden_states))
        key_layer = self.transpose_for_scores(self.key(hidden_states))
        value_layer = self.transpose_for_scores(self.value(hidden_states))
        attention_scores = torch.matmul(query_layer, key_layer.transpose(-1, -2))
        attention_scores = lxt_bert.divide_gradient(attention_scores, 2)
        attention_scores = attention_scores / lxt_bert.math.sqrt(self.attention_head_size)
        if attention_mask is not None:
            attention_scores = attention_scores + attention_mask
        attention_probs = torch.nn.functional.softmax(attention_scores, dim=-1)
        attention_probs = self.dropout(attention_probs).detach()  # CP-LRP: constants
        context_layer = torch.matmul(attention_probs, value_layer)  # CP-LRP: no halving
        context_layer = context_layer.permute(0, 2, 1, 3).contiguous()
        context_layer = context_layer.view(context_layer.size()[:-2] + (self.all_head_size,))
        return (context_layer,)

    attn_cls.forward = forward
    return modeling_bert.BertForSequenceClassification, attn_cls


def main(argv):
    if len(argv) < 6 or argv[5] not in ("all", "predicted"):
        print("usage: rules_reference.py MODEL_DIR TEXTS_JSONL MAX_LEN OUT_JSONL {all|predicted} [ID ...]", file=sys.stderr)
        sys.exit(2)
    model_dir, texts, max_len, out_path, targets = argv[1:6]
    recs = read_texts(texts, argv[6:], "rules_reference")
    tok = BertTokenizerFast.from_pretrained(model_dir)
    encoded = [encode(tok, r, int(max_len)) for r in recs]

    # Pass 1, before LXT patches anything: the ordinary model.
    plain = {name: load(modeling_bert.BertForSequenceClassification, model_dir, dt) for name, dt in DTYPES}
    rows, classes = [], []
    for n, (rec, (ids, types, special)) in enumerate(zip(recs, encoded)):
        ids_t, types_t = torch.tensor([ids]), torch.tensor([types])
        row = {"id": rec["id"], "tokens": tok.convert_ids_to_tokens(ids)}
        parts, cls = {}, None
        for name, _ in DTYPES:  # f64 first: its prediction is the target of both
            res, per_class = ordinary_scores(plain[name], tok, ids_t, types_t, special, targets, cls)
            cls = list(per_class)
            parts[name] = (res, per_class)
        classes.append(cls)
        rows.append((row, parts))
        print(f"ordinary {n + 1}/{len(recs)} {rec['id']} T={len(ids)}", file=sys.stderr)
    del plain

    # Pass 2: LXT's patched model (AttnLRP) and its CP-LRP variant.
    model_cls, attn_cls = patch_lxt()
    lxt = {name: load(model_cls, model_dir, dt) for name, dt in DTYPES}
    with open(out_path, "w") as out:
        for n, ((row, parts), (ids, types, _), cls) in enumerate(zip(rows, encoded, classes)):
            ids_t, types_t = torch.tensor([ids]), torch.tensor([types])
            for name, _ in DTYPES:
                model = lxt[name]
                res, per_class = parts[name]
                rec = dict(res)
                for c in cls:
                    for m in model.modules():
                        if isinstance(m, attn_cls):
                            m.cp_lrp = False
                    rec[f"attnlrp_{c}"] = embed_times_grad(model, ids_t, types_t, c)
                    for m in model.modules():
                        if isinstance(m, attn_cls):
                            m.cp_lrp = True
                    rec[f"cplrp_{c}"] = embed_times_grad(model, ids_t, types_t, c)
                for c in cls:
                    rec.update(per_class[c])
                row[name] = rec
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(f"lxt {n + 1}/{len(rows)} {row['id']}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
