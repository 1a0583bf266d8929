#!/usr/bin/env python3
"""Generates Tests/Fixtures/tokenizer-extra/*.jsonl: reference tokenizations
by Hugging Face's `tokenizers` (pip install tokenizers) of texts that are not
in the shared fixtures: SST-2 dev sentences mixed with random code points of
every plane, accents and combining sequences, CJK (including the U+2B820 range
the library does not isolate), special tokens inside words, long words,
control characters, emoji, Hangul, characters whose NFD or lowercase changes
their class. Deterministic (seeded).

Files:
  options.jsonl  one case a line: text, options {lowercase, strip_accents,
                 chinese, clean_text}, tokens, ids, offsets (no [CLS]/[SEP]);
                 built on Tests/Fixtures/tokenizer/vocab.txt.
  bundled.jsonl  text, optional text_b, tokens/ids/offsets/segments of the full
                 encoding with [CLS]/[SEP] by models/minilm-sst2/tokenizer.json
                 (offsets null for the template's special tokens).

Usage: python3 tools/gen_tokenizer_cases.py [SCALE OUT_DIR SEED]   (from the repository root)
"""
import json, random, sys
import tokenizers
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

# Optional arguments (for stress runs, not the committed files): SCALE OUT_DIR SEED
SCALE = int(sys.argv[1]) if len(sys.argv) > 1 else 1
OUT = sys.argv[2] if len(sys.argv) > 2 else "Tests/Fixtures/tokenizer-extra"
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 20261127)
VOCAB = "Tests/Fixtures/tokenizer/vocab.txt"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

sentences = [l.split("\t")[0] for l in open("data/sst2/dev.tsv", encoding="utf-8").read().split("\n")[1:] if l]
words = [w for s in sentences for w in s.split()]

def random_cp(plane_bias=True):
    while True:
        r = rng.random()
        if r < 0.35:
            cp = rng.randrange(0x80, 0x3000)        # scripts, accents, punctuation, marks
        elif r < 0.55:
            cp = rng.randrange(0x3000, 0x10000)     # CJK, Hangul, compatibility, private use, specials
        elif r < 0.75:
            cp = rng.randrange(0x10000, 0x30000)    # SMP (emoji, historic), SIP (CJK ext)
        elif r < 0.85:
            cp = rng.randrange(0x30000, 0x110000)   # mostly unassigned, tags, PUA planes
        else:
            cp = rng.choice(INTERESTING)
        if not 0xD800 <= cp <= 0xDFFF:
            return chr(cp)

INTERESTING = [
    0x0, 0x1, 0x7, 0x9, 0xA, 0xB, 0xC, 0xD, 0x1C, 0x1F, 0x7F, 0x85, 0xA0, 0xAD, 0x130, 0x131, 0x149, 0x1E9E,
    0xDF, 0x3A3, 0x3C2, 0x2126, 0x212A, 0x212B, 0x37E, 0x387, 0x1FEF, 0x1FEE, 0x340, 0x341, 0x343, 0x344,
    0x301, 0x316, 0x334, 0x345, 0x35C, 0x360, 0x0F73, 0x0F75, 0x0F81, 0x0F71, 0x0F72, 0x0F80, 0x1D165,
    0x1D16D, 0x1D15E, 0x1D160, 0x2000, 0x2001, 0x200B, 0x200C, 0x200D, 0x2028, 0x2029, 0x202F, 0x205F,
    0x3000, 0x1680, 0x180E, 0xFEFF, 0xFFFD, 0xFFFE, 0xFFFF, 0xE000, 0xF8FF, 0xF0000, 0x10FFFD, 0xE0001,
    0xE0041, 0x2E4F, 0x2E52, 0x0898, 0x1AC1, 0x0378, 0xD7FF, 0x2B81F, 0x2B820, 0x2B91F, 0x2B920, 0x2CEAF,
    0x2CEB0, 0x4E00, 0x9FFF, 0x3400, 0x4DBF, 0x20000, 0x2A6DF, 0x2A700, 0xF900, 0xFAFF, 0x2F800, 0x2FA1D,
    0xAC00, 0xD7A3, 0xAC01, 0x1100, 0x1161, 0x11A8, 0x3131, 0x1F600, 0x1F468, 0x1F3FB, 0xFE0F, 0x20E3,
    0x1F1FA, 0x1F1F8, 0xFF21, 0xFF41, 0xFF61, 0xFF9E, 0x2160, 0x24B6, 0x1E00, 0x1EA0, 0x1EC7, 0x1F80,
    0x10400, 0x10428, 0x1E900, 0x16E40, 0x104B0, 0x10C80, 0xA7C0, 0xA7CB, 0xA7DC, 0x1C89, 0x2C2F,
    0x5B, 0x5D, 0x23, 0x24, 0x2B, 0x3C, 0x3D, 0x3E, 0x5E, 0x60, 0x7C, 0x7E, 0xA7, 0xB6, 0xBF, 0xA1,
]

COMBINING_SEQS = [
    "e\u0301", "a\u0301\u0316", "a\u0316\u0301", "o\u0308\u0304", "\u0301a", "\u0301\u0316x", "q\u0307\u0323",
    "\u1EC7\u0300", "\u00E9\u0316", "\u0F73\u0F71", "a\u0301\u0F73", "\u0344\u0316", "\u1D165\u1D16D\u1D165",
    "\u0915\u093C\u094D", "\u05D1\u05BC\u05B7", "\u0627\u064E\u0651", "Z\u0351\u036B\u0343\u036A\u0302",
    "n\u0303\u0303\u0303", "\u0130stanbul", "\u0130" * 3, "\u03A3\u039F\u03A3", "\u1E9E", "STRASSE\u1E9E",
    "\u00C5ngstr\u00F6m", "\u212Bngstr\u00F6m", "\u2126hm", "caf\u00E9", "cafe\u0301", "na\u00EFve",
    "\u1F80\u0345", "\u0390", "\u1FEF", "a\u037Eb", "\uFB01", "\uFB2C", "\u01C4", "\u01C5", "\u1E9B\u0323",
    "\U0001F468\u200D\U0001F469\u200D\U0001F467", "\U0001F44D\U0001F3FD", "1\uFE0F\u20E3", "\U0001F1FA\U0001F1F8",
    "\uD55C\uAD6D\uC5B4", "\u1100\u1161\u11A8", "\u3131\u314F", "\u304B\u3099", "\u30AC", "\uFF76\uFF9E",
]

def piece():
    r = rng.random()
    if r < 0.30:
        return rng.choice(words)
    if r < 0.45:
        return "".join(random_cp() for _ in range(rng.randint(1, 6)))
    if r < 0.55:
        return rng.choice(COMBINING_SEQS)
    if r < 0.62:
        s = rng.choice(SPECIALS)
        r2 = rng.random()
        if r2 < 0.2:
            s = s.lower()
        elif r2 < 0.35:
            s = s[:-1]
        return s
    if r < 0.70:  # word with specials or punctuation inside
        w = rng.choice(words)
        k = rng.randint(0, len(w))
        return w[:k] + rng.choice(SPECIALS + ["-", "'", "\u2019", "\u00AD", "\u200B", "\u0301", "##"]) + w[k:]
    if r < 0.74:  # long words around the 100-character limit
        n = rng.choice([99, 100, 101, 150])
        base = rng.choice(["a", "ab", "\u00E9", "\u0130", "e\u0301", "x\u0316", "\u4E00", "un"])
        return (base * n)[: n if len(base) == 1 else n * len(base)]
    if r < 0.80:
        return rng.choice([" ", "  ", "\t", "\n", "\r\n", "\u00A0", "\u3000", "\u2028", "\u0085", "\x0b", "\x00", "\ufffd"])
    return rng.choice(words).upper() if rng.random() < 0.5 else rng.choice(words).capitalize()

def make_text():
    r = rng.random()
    if r < 0.25:
        s = rng.choice(sentences)
        # sprinkle a few insertions into a real sentence
        for _ in range(rng.randint(1, 4)):
            k = rng.randint(0, len(s))
            s = s[:k] + piece() + s[k:]
        return s
    n = rng.randint(1, 12)
    sep = lambda: rng.choice([" ", " ", " ", "", "\t", "  "])
    return "".join(piece() + sep() for _ in range(n))

def build(lowercase, strip_accents, chinese, clean_text):
    model = WordPiece.from_file(VOCAB, unk_token="[UNK]", max_input_chars_per_word=100)
    tok = Tokenizer(model)
    tok.normalizer = normalizers.BertNormalizer(clean_text=clean_text, handle_chinese_chars=chinese,
                                                strip_accents=strip_accents, lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.add_special_tokens(SPECIALS)
    return tok

CONFIGS = [  # (lowercase, strip_accents, chinese, clean_text, count)
    (True, None, True, True, 500),
    (False, None, True, True, 300),
    (True, False, True, True, 120),
    (False, True, True, True, 120),
    (True, None, False, True, 60),
    (False, None, False, True, 40),
    (True, None, True, False, 60),
    (False, None, True, False, 40),
]

n_options = 0
with open(f"{OUT}/options.jsonl", "w", encoding="utf-8") as f:
    for lowercase, strip, chinese, clean, count in CONFIGS:
        tok = build(lowercase, strip, chinese, clean)
        for _ in range(count * SCALE):
            text = make_text()
            e = tok.encode(text, add_special_tokens=False)
            f.write(json.dumps({"text": text,
                                "options": {"lowercase": lowercase, "strip_accents": strip,
                                            "chinese": chinese, "clean_text": clean},
                                "tokens": e.tokens, "ids": e.ids,
                                "offsets": [list(o) for o in e.offsets]}, ensure_ascii=False) + "\n")
            n_options += 1

bundled = Tokenizer.from_file("models/minilm-sst2/tokenizer.json")
bundled.no_truncation()
bundled.no_padding()
n_bundled = 0
with open(f"{OUT}/bundled.jsonl", "w", encoding="utf-8") as f:
    for k in range(250 * SCALE):
        text = make_text() if k % 2 else rng.choice(sentences)
        rec = {"text": text}
        if k % 3 == 0:
            b = make_text() if rng.random() < 0.7 else rng.choice(sentences)
            # An empty B is a single sentence for the seed (and here); HF differs, so skip those.
            if bundled.encode(b, add_special_tokens=False).ids:
                rec["text_b"] = b
        e = bundled.encode(rec["text"], rec.get("text_b"))
        specials = e.special_tokens_mask
        rec.update({"tokens": e.tokens, "ids": e.ids, "segments": e.type_ids,
                    "offsets": [None if specials[i] else list(o) for i, o in enumerate(e.offsets)]})
        f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        n_bundled += 1

print(f"tokenizers {tokenizers.__version__}: {n_options} option cases, {n_bundled} bundled cases", file=sys.stderr)
