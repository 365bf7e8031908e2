#!/usr/bin/env python3
"""Writes the fuzz harnesses' seed corpora (Tests/Fuzz/corpus/NAME/), committed; rerun to regenerate.

gguf: small GGUF v3 files written here byte by byte (header, metadata of every value type, tensors of a
few types, alignment), so libFuzzer starts from valid structure. topology: the repository's topology files.
tokenizer: a mode byte (even: text, odd: little-endian Int32 ids) then text or ids. chat: a mode byte (bit 0
starts in the reasoning, bit 1 types values by a tool), a chunking seed, then model output. http: an
endpoint byte (FuzzHTTP's order: chat, completions, responses, messages, count_tokens, tokenize, detokenize,
apply-template) then a request body.
"""
import os, shutil, struct, glob

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, typ, payload):
    return s(key) + struct.pack("<I", typ) + payload


def gguf(kvs, tensors, alignment=32):
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    infos, blobs, off = b"", b"", 0
    for name, ggml_type, shape, data in tensors:
        infos += s(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        infos += struct.pack("<IQ", ggml_type, off)
        pad = (-len(data)) % alignment
        blobs += data + b"\0" * pad
        off += len(data) + pad
    body = head + infos
    body += b"\0" * ((-len(body)) % alignment)
    return body + blobs


def main():
    d = os.path.join(OUT, "gguf")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    meta = [
        kv("general.architecture", 8, s("step35")),
        kv("general.alignment", 4, struct.pack("<I", 32)),
        kv("step35.block_count", 4, struct.pack("<I", 2)),
        kv("step35.rope.freq_base", 6, struct.pack("<f", 10000.0)),
        kv("flag", 7, b"\1"),
        kv("i8", 1, b"\xff"), kv("i16", 3, struct.pack("<h", -2)), kv("i64", 11, struct.pack("<q", -3)),
        kv("u64", 10, struct.pack("<Q", 4)), kv("f64", 12, struct.pack("<d", 0.5)),
        kv("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 3) + s("a") + s("b") + s("<s>")),
        kv("ints", 9, struct.pack("<IQ", 5, 3) + struct.pack("<3i", 1, 2, 3)),
    ]
    f32 = struct.pack("<8f", *[i * 0.25 for i in range(8)])
    q8 = struct.pack("<e", 0.5) + bytes(range(32))  # one Q8_0 block
    f16 = struct.pack("<4e", 1.0, -2.0, 0.5, 0.0)
    files = {
        "empty-v3.gguf": gguf([], []),
        "meta-only.gguf": gguf(meta, []),
        "f32-tensor.gguf": gguf(meta[:2], [("w", 0, [8], f32)]),
        "q8-tensor.gguf": gguf(meta[:3], [("blk.0.ffn_up.weight", 8, [32, 1], q8)]),
        "two-tensors.gguf": gguf(meta, [("a", 1, [4], f16), ("b", 0, [4, 2], f32)]),
    }
    for name, b in files.items():
        open(os.path.join(d, name), "wb").write(b)
    t = os.path.join(OUT, "topology")
    shutil.rmtree(t, ignore_errors=True)
    os.makedirs(t)
    for f in sorted(glob.glob(os.path.join(HERE, "..", "..", "Topologies", "*.yaml"))):
        shutil.copy(f, t)
    open(os.path.join(t, "small.yaml"), "w").write("experts: 8\nheads: 1\nworkers: 2\nthreads: 1\ndispatch: int8\nmicro_batches: 2\n")
    open(os.path.join(t, "placement.yaml"), "w").write(
        "experts: 4\nheads: 1\nworkers: 2\nplacement:\n  - {layer: 1, worker: 0, experts: [0, 1]}\n  - {layer: 1, worker: 1, experts: [2, 3]}\n"
        "replicas:\n  - {layer: 2, expert: 0, workers: [0, 1]}\nnuma: [0, 0]\n")
    texts = ["def parse(path):\n    return open(path).read()\n", "你好，世界！今天天气怎么样？", "emoji 😀👍🏽 and\ttabs\r\n",
             "   many    spaces\n\n\n", "<think>not special</think><|im_start|>user", "1234567890 3.14159 -42 0x1F",
             "Ünïcödé ÅÆØ ß ﬁ", "\u200b\u00a0\ufeff"]
    seeds = {f"text-{i}": b"\0" + t.encode() for i, t in enumerate(texts)}
    seeds["ids"] = b"\1" + struct.pack("<8i", 1, 45, 287, 1180, 302, 79, 2650, 11)
    seeds["ids-special"] = b"\3" + struct.pack("<4i", 0, 1, 2, 3)
    seeds["ids-outside"] = b"\1" + struct.pack("<4i", -1, 2**31 - 1, 128815, 999999)
    write_all("tokenizer", seeds)
    call = ("<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n"
            "</parameter>\n<parameter=metric>\ntrue\n</parameter>\n<parameter=opts>\n{\"a\": [1, 2]}\n</parameter>\n</function>\n</tool_call>")
    outputs = {
        "reasoning-content": (1, "Let me think.\n</think>\n\nThe answer is 4."),
        "tool-call": (3, "The user wants weather.</think>\n" + call),
        "call-in-reasoning": (3, "I should call " + call + " then answer</think>ok"),
        "two-calls": (2, call + "\n" + call.replace("Paris", "Oslo")),
        "unfinished": (3, "</think><tool_call>\n<function=get_weather>\n<parameter=city>\nPar"),
        "not-a-tag": (0, "a < b and <tool_ and </thin k> stay text <tool_call>no function"),
        "numbers": (2, call.replace("3\n", "3.5e2\n").replace("true", "maybe")),
    }
    write_all("chat", {k: bytes([m, 7]) + t.encode() for k, (m, t) in outputs.items()})
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}}
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}]
    bodies = {
        "chat": (0, {"messages": msgs, "max_tokens": 4, "temperature": 0}),
        "chat-stream-tools": (0, {"messages": msgs, "max_tokens": 4, "stream": True, "tools": [tool], "tool_choice": "auto",
                                  "stream_options": {"include_usage": True}, "stop": ["\n"], "seed": 3, "top_p": 0.9}),
        "chat-tool-turn": (0, {"messages": msgs + [{"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                               "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
                               {"role": "tool", "tool_call_id": "c1", "content": "sunny"}], "max_tokens": 3, "tools": [tool]}),
        "completions": (1, {"prompt": "def f(x):", "max_tokens": 4, "stream": True, "ignore_eos": True}),
        "responses": (2, {"input": "Hi", "instructions": "Be brief.", "max_output_tokens": 4, "tools": [
            {"type": "function", "name": "get_weather", "parameters": tool["function"]["parameters"]}]}),
        "messages": (3, {"model": "fuzz", "max_tokens": 4, "system": "Be brief.", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Hi"}]}], "stream": True, "thinking": {"type": "enabled", "budget_tokens": 2}}),
        "count-tokens": (4, {"model": "fuzz", "messages": [{"role": "user", "content": "Hi"}]}),
        "tokenize": (5, {"content": "Hello <think>", "add_special": True}),
        "detokenize": (6, {"tokens": [1, 2, 3, 300]}),
        "apply-template": (7, {"messages": msgs, "tools": [tool]}),
    }
    import json
    write_all("http", {k: bytes([e]) + json.dumps(b).encode() for k, (e, b) in bodies.items()})
    print(f"seeds: {len(files)} gguf, {len(os.listdir(t))} topology, {len(seeds)} tokenizer, {len(outputs)} chat, {len(bodies)} http in {OUT}")


def write_all(name, seeds):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for k, b in seeds.items():
        open(os.path.join(d, k), "wb").write(b)


if __name__ == "__main__":
    main()
