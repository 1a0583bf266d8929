#!/usr/bin/env python3
"""Makes the input texts of Tests/Fixtures/reference-extra/ (see its README.md,
"The inputs"): SST-2 dev sentences not in the shared texts files, shuffled by
random.Random(20261127), drawn in order into singles (with their label) and
pairs, plus texts built to sit on or past the token budget, and Unicode stress
texts (hand-written, below).

This is a rebuild: the script that made the committed files was lost. It
gives the committed minilm-sst2-extra singles xs0-xs138 and ordinary pairs
xp0-xp13 and every Unicode text byte for byte; the budget texts are made by the
rules the README states (exact wordpiece counts, cuts at word boundaries, long
joined texts), from the same pool, but they are other sentences than the
committed ones, and the tiny-bert-extra draws differ from the first single on.
The committed texts and records are the reference; this makes new sets like them.

Usage (from the repository root; pip install transformers, for the wordpiece counts):

    python3 tools/reference/make_texts.py OUT_DIR   # -> OUT_DIR/{minilm-sst2,tiny-bert}-extra.texts.jsonl
"""
import json
import os
import random
import sys

from transformers import BertTokenizerFast

DEV = "data/sst2/dev.tsv"
SHARED = ["Tests/Fixtures/reference/minilm-sst2.texts.jsonl", "Tests/Fixtures/reference/tiny-bert.texts.jsonl"]

UNICODE = [
    '\xc5ngstr\xf6m Caf\xe9 NA\xcfVE R\xe9sum\xe9 Z\xfcrich \xc9COLE fa\xe7ade co\xf6perate \xd8resund stra\xdfe',  # xu0
    'e\u0301 a\u0308 \u0301\u0302 o\u0303 n\u0303o \u0300\u0301\u0302\u0303\u0304 \u0336s\u0336t\u0336r\u0336i\u0336k\u0336e\u0336',  # xu1
    '\u6211\u559c\u6b22\u8fd9\u90e8\u7535\u5f71\uff0c\u975e\u5e38\u597d\u770b\uff01\u6f14\u5458\u7684\u8868\u6f14\u5f88\u51fa\u8272\u3002',  # xu2
    '\u3053\u306e\u6620\u753b\u306f\u672c\u5f53\u306b\u7d20\u6674\u3089\u3057\u304b\u3063\u305f\u3002\u30ab\u30bf\u30ab\u30ca \uff8a\uff9d\uff76\uff78 \u3072\u3089\u304c\u306a',  # xu3
    '\uc815\ub9d0 \uc7ac\ubbf8\uc788\ub294 \uc601\ud654\uc600\uc5b4\uc694 \u314b\u314b\u314b \ud55c\uad6d\uc5b4 \u1100\u1101\u1102',  # xu4
    'great film \U0001f468\u200d\U0001f469\u200d\U0001f467 \U0001f1eb\U0001f1f7 \U0001f44d\U0001f3fd \U0001f602\U0001f602 \U0001f3ac \u2764\ufe0f \u263a \u2713',  # xu5
    'nul\x00 bell\x07 esc\x1b del\x7f \ufffd zero\u200bwidth join\u200dner bom\ufeff soft\xadhyphen',  # xu6
    'nbsp\xa0space em\u2003space ideo\u3000space tab\there new\nline crlf\r\nend line\u2028sep para\u2029sep',  # xu7
    '\xabquoted\xbb \u201elow\u201c \u201ccurly\u201d \u2018single\u2019 \u2014 en\u2013dash \u2026 \xbfqu\xe9? \xa1s\xed! $5.00 \u20ac 100 % ^&*~`|\\ \xf7\xd7\xb1',  # xu8
    '\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645 123 \u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd 456 \u0641\u064a\u0644\u0645 \u0631\u0627\u0626\u0639',  # xu9
    '\U0001d401\U0001d428\U0001d425\U0001d41d \U0001d456\U0001d461\U0001d44e\U0001d459\U0001d456\U0001d450 \ufb01ne \ufb02ow \uff21\uff22\uff23\uff11\uff12\uff13 \uff46\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48 \u216b \u2460 \u338f \u2103',  # xu10
    'supercalifragilisticexpialidocioussupercalifragilisticexpialidocioussupercalifragilisticexpialidocioussupercalifragilisticexpialidocious aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc short',  # xu11
    '[CLS] [SEP] [PAD] [UNK] [MASK] [cls] [ mask ] [unused0] ##ing ## #',  # xu12
    "don't u.s.a. e-mail 3.14 1,000,000 #hashtag @user http://x.y/z?q=1&r=2 C++ (parens) [brackets] {braces}",  # xu13
    '\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e0a\u0e32\u0e27\u0e42\u0e25\u0e01 \u0bb5\u0ba3\u0b95\u0bcd\u0b95\u0bae\u0bcd \u0c95\u0ca8\u0ccd\u0ca8\u0ca1 \u10e5\u10d0\u10e0\u10d7\u10e3\u10da\u10d8 \u0540\u0561\u0575\u0565\u0580\u0565\u0576',  # xu14
    '\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3 \u1f08\u03b8\u1fc6\u03bd\u03b1\u03b9 \u1f40\u03b4\u03c5\u03c3\u03c3\u03b5\u03cd\u03c2 \u03c3\u03af\u03c3\u03c5\u03c6\u03bf\u03c2 \u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440 \u0401\u0416\u0418\u041a \u0130stanbul \u0131i',  # xu15
    'this movie is \U0001f525\U0001f525\U0001f525 \u2014 absolutely wonderful ! \U0001f60d but the ending ... \U0001f612 meh',  # xu16
    '\u7535\u8868\u4e50\u5f71\u4e8b\u5458\u8282\u753b\u51fa\u8282\u753b\u753b\u6545\u7f8e\u97f3\u5458\u9762\u97f3\u753b\u97f3\u5bfc\u97f3\u6f14\u97f3\u6f14\u597d\u5e38\u6f14\u611f\u4e8b\u97f3\u597d\u5458\u975e\u6f14\u611f\u4eba\u8282\u6f14\u60c5\u6f14\u6f14\u975e\u597d\u5bfc\u4e50\u5e38\u8868\u753b\u6f14\u5458\u6f14\u4e50\u5f71\u597d\u5bfc\u7f8e\u5458\u6f14\u4e3d\u5bfc\u7f8e\u753b\u51fa\u5f71\u5bfc\u51fa\u5f71\u8282\u753b\u7535\u6f14\u8868\u5f71\u5e38\u60c5\u770b\u5458\u611f\u6f14\u6f14\u8272\u6545\u5458\u97f3\u611f\u5f71\u6f14\u4eba\u5f71\u60c5\u4e8b\u770b\u6f14\u51fa\u4e50\u9762\u97f3\u975e\u8868\u4e3d\u7f8e\u6f14\u4e8b\u975e\u5bfc\u7f8e\u975e\u4e50\u597d\u4e50\u4e8b\u6545\u6f14\u8282\u5458\u6f14\u51fa\u51fa\u8282\u7f8e\u4e3d\u9762\u6545\u611f\u8868\u8868\u4eba\u7535\u4e3d\u6f14\u5458\u9762\u597d\u8868\u753b\u97f3\u770b\u4e50\u7535\u7535\u6545\u6f14\u611f\u6f14\u5bfc\u4e8b\u6f14\u6f14\u753b\u7f8e\u8272\u9762\u9762\u6f14\u97f3\u51fa\u8272\u4e3d\u5bfc\u4e8b\u5f71\u6f14\u5458\u51fa\u5e38\u6f14\u60c5\u611f\u60c5\u4e50\u5bfc\u5458\u5e38\u5f71\u7535\u4e3d\u975e\u597d\u8282\u51fa\u97f3\u51fa\u4e50\u8282\u4e50\u975e\u51fa\u6f14\u5e38\u4e50\u5bfc\u4e3d\u4eba\u97f3\u6f14\u4eba\u4e3d\u4e50\u4e50',  # xu17
    '\u200b\xad\ufeff \x00\x07 \u200d',  # xu18
]
UNICODE_PAIR = ("\xc7a m'a plu : \xab tr\xe8s bien \xbb \U0001f44d", '\u30c0\u30e1\u6620\u753b \u2014 2/10 \u2717 \u7cdf\u7cd5')
# tiny-bert-extra's Unicode texts: a subset of the above.
TINY_UNICODE = [0, 1, 5, 6, 11, 12, 17, 18]


class Pool:
    """The eligible dev sentences in shuffled order; drawing removes them."""

    def __init__(self, rng):
        with open(DEV, encoding="utf-8") as f:
            rows = [line.rstrip("\n").split("\t") for line in f][1:]
        shared = []
        for path in SHARED:
            with open(path, encoding="utf-8") as f:
                for r in map(json.loads, f):
                    shared += [r["text"]] + ([r["text_b"]] if r.get("text_b") else [])
        # excluded: a dev sentence anywhere in a shared text (single, pair, inside a long text)
        self.items = [(s, int(y)) for s, y in rows if not any(s in t for t in shared)]
        rng.shuffle(self.items)

    def take(self):
        return self.items.pop(0)

    def ordinary(self, singles, pairs):
        """`singles` single sentences with their label, then `pairs` pairs."""
        for i in range(singles):
            s, y = self.take()
            yield {"id": f"xs{i}", "text": s, "label": y}
        for i in range(pairs):
            yield {"id": f"xp{i}", "text": self.take()[0], "text_b": self.take()[0]}

    def joined(self, tok, at_least):
        """Whole sentences joined by a space until the text has at least
        `at_least` wordpieces."""
        parts = []
        while len(tok.tokenize(" ".join(parts))) < at_least:
            parts.append(self.take()[0])
        return " ".join(parts)

    def exact(self, tok, n):
        """Words of consecutive pool sentences, from the first start where a
        word boundary falls at exactly `n` wordpieces; uses those sentences up."""
        for start in range(len(self.items)):
            words, count = [], 0
            for k in range(start, len(self.items)):
                for w in self.items[k][0].split():
                    count += len(tok.tokenize(w))
                    words.append(w)
                    if count >= n:
                        break
                if count >= n:
                    break
            text = " ".join(words)
            if count == n and len(tok.tokenize(text)) == n:
                del self.items[start : k + 1]
                return text
        sys.exit(f"make_texts: no {n}-wordpiece text left in the pool")


def minilm_plan(pool, tok):
    yield from pool.ordinary(139, 14)
    yield {"id": "xp14", "text": pool.exact(tok, 62), "text_b": pool.exact(tok, 63)}  # = the budget 125
    yield {"id": "xp15", "text": pool.exact(tok, 63), "text_b": pool.exact(tok, 63)}  # one over, a tie
    yield {"id": "xp16", "text": pool.joined(tok, 135), "text_b": pool.joined(tok, 112)}  # both long
    yield {"id": "xp17", "text": pool.take()[0], "text_b": pool.joined(tok, 173)}  # only B cut
    yield {"id": "xp18", "text": pool.joined(tok, 173), "text_b": pool.take()[0]}  # only A cut
    yield {"id": "xp19", "text": UNICODE_PAIR[0], "text_b": UNICODE_PAIR[1]}
    yield {"id": "xl0", "text": pool.exact(tok, 126)}  # T = 128, not cut
    yield {"id": "xl1", "text": pool.exact(tok, 127)}  # the last one cut
    for i, n in enumerate([143, 175, 178, 220, 225, 262, 324, 388, 512, 782]):
        yield {"id": f"xl{i + 2}", "text": pool.joined(tok, n)}
    for i, t in enumerate(UNICODE):
        yield {"id": f"xu{i}", "text": t}


def tiny_plan(pool, tok):
    yield from pool.ordinary(28, 2)
    yield {"id": "xp2", "text": pool.exact(tok, 30), "text_b": pool.exact(tok, 31)}  # = the budget 61
    yield {"id": "xp3", "text": pool.exact(tok, 31), "text_b": pool.exact(tok, 31)}  # a tie
    yield {"id": "xp4", "text": pool.joined(tok, 78), "text_b": pool.joined(tok, 50)}
    yield {"id": "xp5", "text": pool.take()[0], "text_b": pool.joined(tok, 121)}
    yield {"id": "xp6", "text": pool.joined(tok, 121), "text_b": pool.take()[0]}
    yield {"id": "xp7", "text": UNICODE_PAIR[0], "text_b": UNICODE_PAIR[1]}
    yield {"id": "xl0", "text": pool.exact(tok, 62)}
    yield {"id": "xl1", "text": pool.exact(tok, 63)}
    yield {"id": "xl2", "text": pool.joined(tok, 104)}
    yield {"id": "xl3", "text": pool.joined(tok, 138)}
    for i, k in enumerate(TINY_UNICODE):
        yield {"id": f"xu{i}", "text": UNICODE[k]}


def write(path, recs):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in recs:
            line = json.dumps(r, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
            f.write(line + "\n")


def main(argv):
    if len(argv) != 2:
        print("usage: make_texts.py OUT_DIR", file=sys.stderr)
        sys.exit(2)
    os.makedirs(argv[1], exist_ok=True)
    pool = Pool(random.Random(20261127))  # one pool: the two sets use disjoint sentences
    for name, model, plan in (("minilm-sst2-extra", "models/minilm-sst2", minilm_plan),
                              ("tiny-bert-extra", "Tests/Fixtures/tiny-bert/hf", tiny_plan)):
        tok = BertTokenizerFast.from_pretrained(model)
        write(os.path.join(argv[1], f"{name}.texts.jsonl"), list(plan(pool, tok)))


if __name__ == "__main__":
    main(sys.argv)
