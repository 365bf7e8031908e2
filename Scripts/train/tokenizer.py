#!/usr/bin/env python3
"""Trains the demo model's tokenizer: byte-level BPE over the training corpus and conversations, with Step 3.5
Flash's special tokens, and the pre-tokenizer of llama.cpp's `qwen2` family (`tokenizer.ggml.pre = "qwen2"`,
which llama.cpp and Switchyard both implement): the split regex, then GPT-2's byte-to-unicode map.

Special tokens, in id order from 0: `<|BOS|>` (BOS, id 0 as in Step 3.5), `<|im_start|>`, `<|im_end|>` (EOS, the
chat end of turn) and `<|endoftext|>` (between code and document texts) are control tokens; `<think>`,
`</think>`, `<tool_call>`, `</tool_call>`, `<tool_response>`, `</tool_response>` and `<im_patch>` are
user-defined: matched whole in any text and rendered as their text, so the server's parsers see them.

Writes Scripts/train/work/tokenizer.json (Hugging Face format; export.py turns it into GGUF tokenizer metadata).

Usage: Scripts/train/.venv/bin/python Scripts/train/tokenizer.py [--vocab 8192]
"""
import argparse
import json
import os

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")
# llama.cpp's "qwen2" pre-tokenizer regex (the same string as Sources/Tokenizer/PreTokenizer.swift).
QWEN2 = (r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
         r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
CONTROL = ["<|BOS|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"]
USER_DEFINED = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<im_patch>"]


def texts():
    for name in ("corpus/train.jsonl", "chat/train.jsonl"):
        path = os.path.join(WORK, name)
        if not os.path.exists(path):
            raise SystemExit(f"tokenizer: {path} is missing; run corpus.py and conversations.py first")
        with open(path, encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)["text"]


def build(vocab):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    specials = [AddedToken(t, special=True, normalized=False) for t in CONTROL] + \
               [AddedToken(t, special=False, normalized=False) for t in USER_DEFINED]
    trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts(), trainer)
    for i, t in enumerate(CONTROL + USER_DEFINED):
        assert tok.token_to_id(t) == i, f"special token {t} is not id {i}"
    return tok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", type=int, default=8192)
    a = ap.parse_args()
    tok = build(a.vocab)
    out = os.path.join(WORK, "tokenizer.json")
    tok.save(out)
    sample = "<|im_start|>user\nWhat is 12 + 30?<|im_end|>\n<|im_start|>assistant\n<think>\n"
    print(f"vocabulary {tok.get_vocab_size()} in {os.path.relpath(out)}; {sample!r} -> {tok.encode(sample).tokens}")


if __name__ == "__main__":
    main()
