#!/usr/bin/env python3
"""Builds the model directory that transformers 5 saves for a two-class BERT
classifier, unedited, and what transformers computes with it.

    python3 -m venv venv && venv/bin/pip install torch transformers   # made with transformers 5.24.0, torch 2.15.0
    venv/bin/python tools/make_hf5_model.py Tests/Fixtures/hf5-tiny          # the committed fixture
    venv/bin/python tools/make_hf5_model.py --base /tmp/hf5-base             # BERT-base sized (438 MB), by hand

The model is `BertForSequenceClassification(BertConfig(num_labels=2, ...)).save_pretrained(OUT/model)`
and `BertTokenizerFast(vocab.txt).save_pretrained(OUT/model)`: config.json has no id2label,
the tokenizer is tokenizer.json + tokenizer_config.json (no vocab.txt). The vocabulary is
Tests/Fixtures/tiny-bert/hf/vocab.txt (5000 tokens); the tiny model has hidden size 16, 2 layers, initializer_range 0.2.

OUT/expected.json: for each sentence, transformers' tokens and float32 logits (model.eval()),
and the tokens transformers gives when tokenizer_config.json says do_lower_case false while
tokenizer.json lowercases (the normalizer is rebuilt from tokenizer_config.json).
"""
import json, os, shutil, sys
import torch, transformers
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertTokenizerFast

args = sys.argv[1:]
base = "--base" in args
args = [a for a in args if a != "--base"]
if len(args) != 1:
    sys.exit("usage: make_hf5_model.py [--base] OUT_DIR")
out = args[0]
here = os.path.dirname(os.path.abspath(__file__))
vocab = os.path.join(here, "..", "Tests", "Fixtures", "tiny-bert", "hf", "vocab.txt")
vocab_size = sum(1 for _ in open(vocab, encoding="utf-8"))

torch.manual_seed(0)
if base:
    config = BertConfig(num_labels=2, vocab_size=vocab_size)
else:
    config = BertConfig(num_labels=2, vocab_size=vocab_size, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=32,
                        initializer_range=0.2)  # larger than the default 0.02, so that logits depend on the text
model = BertForSequenceClassification(config).eval()
model_dir = os.path.join(out, "model")
shutil.rmtree(model_dir, ignore_errors=True)
model.save_pretrained(model_dir)
BertTokenizerFast(vocab).save_pretrained(model_dir)

sentences = ["it's a charming and often affecting journey.", "Hello World, the film is UNFUNNY.",
             "a gorgeous , witty , seductive movie .", "Café naïve résumé 中文"]
tok = AutoTokenizer.from_pretrained(model_dir)
# The same directory with tokenizer_config.json saying do_lower_case false.
cased_dir = os.path.join(out, "cased-tmp")
shutil.rmtree(cased_dir, ignore_errors=True)
shutil.copytree(model_dir, cased_dir)
tc = json.load(open(os.path.join(cased_dir, "tokenizer_config.json")))
tc["do_lower_case"] = False
json.dump(tc, open(os.path.join(cased_dir, "tokenizer_config.json"), "w"))
assert json.load(open(os.path.join(cased_dir, "tokenizer.json")))["normalizer"]["lowercase"] is True
cased = AutoTokenizer.from_pretrained(cased_dir)
shutil.rmtree(cased_dir)

records = []
for s in sentences:
    enc = tok(s, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits[0].tolist()
    records.append({"text": s, "tokens": tok.convert_ids_to_tokens(enc["input_ids"][0]), "logits": logits,
                    "cased_tokens": cased.convert_ids_to_tokens(cased(s)["input_ids"])})
json.dump({"transformers": transformers.__version__, "torch": torch.__version__, "records": records},
          open(os.path.join(out, "expected.json"), "w"), indent=1, ensure_ascii=False)
print(sorted(os.listdir(model_dir)), "config keys:", sorted(json.load(open(os.path.join(model_dir, "config.json")))))
