#!/usr/bin/env python3
"""Measures the demo model through Switchyard's serving path (Docs/MODEL.md's tables).

- Chat: held-out conversations that need no tool, cut before the assistant's first turn, sent to
  `/v1/chat/completions` greedily. Well-formed: the reply closed its reasoning (`</think>`; the server hands
  it back as `reasoning_content`), has an answer, and ended its turn (`finish_reason` "stop").
- Tools: held-out conversations whose answer needs a tool, cut the same way and sent with their tools. Pass:
  the server's parser returned a tool call (`finish_reason` "tool_calls") to a tool that was offered, with
  arguments that are valid for its schema (required present, no unknown names, types and enums respected).
- MTP: `switchyard generate --draft K` for K = 1, 2, 3 on code and chat prompts: tokens per pass, acceptance per
  draft position, and decode speed against `--draft 0`; and whether the greedy text equals `--draft 0`'s.

Usage: Scripts/train/.venv/bin/python Scripts/train/evaluate.py --gguf MODEL.gguf [--n 20] [--out report.json]
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORK = os.path.join(HERE, "work")
SY = os.path.join(ROOT, ".build", "release", "switchyard")


def prompts(kind, n):
    """The first n held-out conversations of a kind, cut before the first assistant turn."""
    out = []
    with open(os.path.join(WORK, "chat", "heldout.jsonl"), encoding="utf-8") as f:
        for line in f:
            c = json.loads(line)
            if (kind == "tool") != (c["kind"] == "tool"):
                continue
            first = next(i for i, m in enumerate(c["messages"]) if m["role"] == "assistant")
            out.append({"messages": c["messages"][:first], "tools": c["tools"], "expected": c["messages"][first]})
            if len(out) == n:
                break
    return out


def valid_arguments(schema, args):
    """Whether `args` (a dict) satisfies a tool's JSON schema: required present, known names, types, enums."""
    props, required = schema.get("properties", {}), schema.get("required", [])
    if not isinstance(args, dict) or any(r not in args for r in required) or any(k not in props for k in args):
        return False
    types = {"string": str, "number": (int, float), "integer": int, "boolean": bool, "object": dict, "array": list}
    for k, v in args.items():
        want = types.get(props[k].get("type"))
        if want and (not isinstance(v, want) or (isinstance(v, bool) and props[k].get("type") in ("number", "integer"))):
            return False
        if "enum" in props[k] and v not in props[k]["enum"]:
            return False
    return True


class Server:
    def __init__(self, gguf):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen([SY, "serve", "-m", gguf, "--host", "127.0.0.1", "--port", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def chat(self, body):
        data = json.dumps(body).encode()
        for attempt in range(240):
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{self.port}/v1/chat/completions", data=data,
                                             headers={"Content-Type": "application/json"})
                return json.loads(urllib.request.urlopen(req, timeout=120).read())
            except OSError:
                if self.proc.poll() is not None or attempt == 239:
                    raise
                time.sleep(0.5)

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def serving(gguf, n, max_tokens):
    server = Server(gguf)
    try:
        chat_ok, chat_rows = 0, []
        for p in prompts("chat", n):
            r = server.chat({"messages": p["messages"], "tools": p["tools"], "temperature": 0, "max_tokens": max_tokens})
            ch = r["choices"][0]
            m = ch["message"]
            ok = ch["finish_reason"] == "stop" and bool((m.get("reasoning_content") or "").strip()) and bool((m.get("content") or "").strip())
            chat_ok += ok
            chat_rows.append({"question": p["messages"][-1]["content"], "reply": m.get("content"), "ok": ok})
        tool_ok, tool_rows = 0, []
        for p in prompts("tool", n):
            r = server.chat({"messages": p["messages"], "tools": p["tools"], "temperature": 0, "max_tokens": max_tokens})
            ch = r["choices"][0]
            calls = ch["message"].get("tool_calls") or []
            offered = {t["function"]["name"]: t["function"]["parameters"] for t in p["tools"]}
            ok = ch["finish_reason"] == "tool_calls" and len(calls) > 0
            for c in calls:
                try:
                    args = json.loads(c["function"]["arguments"])
                except (ValueError, TypeError):
                    args = None
                ok = ok and c["function"]["name"] in offered and valid_arguments(offered[c["function"]["name"]], args)
            tool_ok += ok
            tool_rows.append({"question": p["messages"][-1]["content"], "calls": calls, "ok": ok})
        return {"chat_well_formed": chat_ok / max(1, len(chat_rows)), "chat_n": len(chat_rows),
                "tool_valid": tool_ok / max(1, len(tool_rows)), "tool_n": len(tool_rows),
                "chat": chat_rows, "tools": tool_rows}
    finally:
        server.close()


def drafting(gguf, n_tokens):
    """Tokens per pass and acceptance with --draft 1..3, and whether greedy text matches --draft 0."""
    code = ["def main(argv):\n", "class Queue:\n    def __init__(self", "import os\nimport sys\n\n\ndef ", "    for i in range("]
    chat = ["<|im_start|>user\nWhat is 25 + 17?<|im_end|>\n<|im_start|>assistant\n<think>\n",
            "<|im_start|>user\nSpell the word 'garden' backwards.<|im_end|>\n<|im_start|>assistant\n<think>\n"]
    out = {}
    for name, ps in (("code", code), ("chat", chat)):
        rows = []
        for k in (0, 1, 2, 3):
            texts, per_pass, speed, acc = [], [], [], []
            for p in ps:
                r = subprocess.run([SY, "generate", "-m", gguf, "-p", p, "-n", str(n_tokens), "--temp", "0", "--draft", str(k),
                                    "--ignore-eos", "--verbose"], capture_output=True, text=True, check=True)
                texts.append(r.stdout)
                m = re.search(r"decode: \d+ forward passes in [\d.]+ ms \(([\d.]+) tokens/s\)", r.stderr)
                speed.append(float(m.group(1)) if m else float("nan"))
                m = re.search(r"([\d.]+) tokens per pass; acceptance (.*)", r.stderr)
                if m:
                    per_pass.append(float(m.group(1)))
                    acc.append(re.findall(r"d(\d) ([\d.]+)", m.group(2)))
            rows.append({"draft": k, "texts": texts, "tokens_per_pass": sum(per_pass) / len(per_pass) if per_pass else 1.0,
                         "decode_tok_s": sum(speed) / len(speed), "acceptance": acc})
        for r in rows[1:]:
            r["same_text_as_draft_0"] = r["texts"] == rows[0]["texts"]
        out[name] = rows
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--draft-tokens", type=int, default=96)
    ap.add_argument("--out", default=os.path.join(WORK, "evaluate.json"))
    a = ap.parse_args()
    report = {"serving": serving(a.gguf, a.n, a.max_tokens), "drafting": drafting(a.gguf, a.draft_tokens)}
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
    s = report["serving"]
    print(f"chat well-formed {s['chat_well_formed']:.2f} of {s['chat_n']}, tool calls valid {s['tool_valid']:.2f} of {s['tool_n']}")
    for name, rows in report["drafting"].items():
        print(name + ": " + "; ".join(f"draft {r['draft']} {r['tokens_per_pass']:.2f} tok/pass {r['decode_tok_s']:.0f} tok/s"
                                      + (f" same={r['same_text_as_draft_0']}" if r["draft"] else "") for r in rows))


if __name__ == "__main__":
    sys.exit(main())
