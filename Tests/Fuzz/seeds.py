#!/usr/bin/env python3
"""Writes the fuzz harnesses' seed corpora (Tests/Fuzz/corpus/NAME/), committed; rerun to regenerate.

gguf: small GGUF v3 files written here byte by byte (header, metadata of every value type, tensors of a
few types, alignment), so libFuzzer starts from valid structure. topology: the repository's topology files.
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
    print(f"seeds: {len(files)} gguf, {len(os.listdir(t))} topology in {OUT}")


if __name__ == "__main__":
    main()
