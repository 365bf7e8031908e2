#!/usr/bin/env python3
"""Renders a corpus of conversations with Step 3.5 Flash's real chat template, the way Hugging Face
transformers runs chat templates (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
tojson = json.dumps with the template's ensure_ascii), after llama.cpp's StepFun preprocessing (message
contents, reasoning_content and text parts trimmed of leading and trailing whitespace; tool-call arguments
given as a JSON string parsed into an object). Writes Tests/Fixtures/chat-template/corpus.jsonl: one case per
line, {"name", "messages", "tools", "add_generation_prompt", "bos_token", "rendered"}; the Swift renderer
must reproduce "rendered" byte for byte.

Usage: bash Scripts/chat/fetch-template.sh && python3 Scripts/chat/make_corpus.py   (needs jinja2 from PyPI)
"""
import copy
import json
import os
import random

from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TEMPLATE = os.path.join(HERE, "work", "StepFun3.5-Flash.jinja")
OUT = os.path.join(ROOT, "Tests", "Fixtures", "chat-template", "corpus.jsonl")
BOS = "<|BOS|>"
WS = " \t\n\v\f\r"


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers' chat-template tojson (jinja2's own escapes HTML characters).
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    return env


def preprocess(messages):
    """llama.cpp's StepFun workaround (common/chat.cpp trim_all_content) and OpenAI string arguments."""
    out = copy.deepcopy(messages)
    for m in out:
        c = m.get("content")
        if isinstance(c, str):
            m["content"] = c.strip(WS)
        elif isinstance(c, list):
            for part in c:
                if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                    part["text"] = part["text"].strip(WS)
        if isinstance(m.get("reasoning_content"), str):
            m["reasoning_content"] = m["reasoning_content"].strip(WS)
        for call in m.get("tool_calls") or []:
            target = call.get("function", call)
            if isinstance(target.get("arguments"), str):
                target["arguments"] = json.loads(target["arguments"])
    return out


WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City, e.g. Zürich"},
                          "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}
CALC = {"type": "function", "function": {"name": "calculator", "description": "Evaluates an arithmetic expression: \"2*(3+4)\"",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}, "precision": {"type": "integer", "minimum": 0, "default": 6}},
                       "required": ["expression"]}}}
FILES = {"type": "function", "function": {"name": "list_files", "parameters": {"type": "object", "properties": {
         "path": {"type": "string"}, "recursive": {"type": "boolean"}, "filters": {"type": "array", "items": {"type": "string"}},
         "limits": {"type": "object", "properties": {"max": {"type": "number"}}}}}}}
CONVERT = {"type": "function", "function": {"name": "convert_units", "description": "Converts 1.5 km → m, with ratios like 0.001",
           "parameters": {"type": "object", "properties": {"value": {"type": "number"}, "from": {"type": "string"}, "to": {"type": "string"}}}}}
TOOLSETS = [[WEATHER], [CALC, FILES], [WEATHER, CALC, FILES, CONVERT]]

USER_TEXTS = ["Hello!", "What's the weather in Zürich?", "  Compute 2*(3+4), please.\n\n", "日本語で答えてください。",
              "List the files under /tmp recursively", "Tab\tseparated and \"quoted\" \\ text", "Convert 1.5 km to m",
              "Emoji 😀 and accents é à", "<b>html</b> & ampersands < > are fine", ""]
REASONING = ["The user wants the weather; I should call the tool.", "  Let me think.\n\n", "Step 1: parse.\nStep 2: answer.", "",
             "日本語の推論"]
ANSWERS = ["It is 21 °C and sunny.", "The answer is 14.\n\n", "Here are the files.", "Done!", "はい、どうぞ。"]


def call(name, args, wrap=True, string_args=False):
    a = json.dumps(args, ensure_ascii=False) if string_args else args
    f = {"name": name, "arguments": a}
    return {"id": f"call_{name}", "type": "function", "function": f} if wrap else f


CALLS = [
    ("get_weather", {"city": "Zürich", "unit": "celsius"}),
    ("calculator", {"expression": "2*(3+4)", "precision": 3}),
    ("list_files", {"path": "/tmp", "recursive": True, "filters": ["*.txt", "*.md"], "limits": {"max": 10.5}}),
    ("convert_units", {"value": 1.5, "from": "km", "to": "m"}),
    ("list_files", {"path": "/home/a b", "recursive": False, "filters": [], "limits": {"max": 1e-05}}),
    ("calculator", {"expression": "x\ny", "precision": None}),
    ("convert_units", {"value": 12345678901234567890, "from": "g", "to": "kg"}),
    ("convert_units", {"value": 0.1, "from": "\"in\"", "to": "cm"}),
]


def hand_cases():
    cases = []
    add = lambda name, messages, tools=None, gen=True: cases.append((name, messages, tools, gen))
    add("user only", [{"role": "user", "content": "Hi"}])
    add("user only, no generation prompt", [{"role": "user", "content": "Hi"}], gen=False)
    add("system first", [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}])
    add("system later (not first) renders as system", [{"role": "user", "content": "Hi"}, {"role": "system", "content": "Be nice."},
                                                        {"role": "user", "content": "Again"}])
    add("observation role", [{"role": "system", "content": "S"}, {"role": "user", "content": "Run it"},
                             {"role": "system", "name": "observation", "content": "exit 0"}])
    add("system blocks as parts", [{"role": "system", "content": [{"type": "text", "text": "Part one. "}, {"type": "text", "text": "Part two."}]},
                                   {"role": "user", "content": "Go"}])
    add("content parts with an image", [{"role": "user", "content": [{"type": "text", "text": "Look: "}, {"type": "image"},
                                                                    {"type": "text", "text": " what is it?\n"}]}])
    add("content as a mapping with text", [{"role": "user", "content": {"type": "text", "text": "mapped"}}])
    add("content as a mapping with value", [{"role": "user", "content": {"value": "valued"}}])
    add("content as parts with value", [{"role": "user", "content": [{"type": "text", "value": "v1"}, {"type": "text", "text": "t2"}]}])
    add("null content", [{"role": "user", "content": "Call it"}, {"role": "assistant", "content": None,
                                                              "tool_calls": [call(*CALLS[0])]}])
    add("reasoning_content after the last query",
        [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1", "reasoning_content": "R1"},
         {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2", "reasoning_content": "R2"}])
    add("inline think split", [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "<think>\nhidden\n</think>\n\nshown"}])
    add("inline think without opening tag", [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "only close</think>after"}])
    add("earlier turn's </think> before the last query",
        [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "<think>old</think>old answer"}, {"role": "user", "content": "Q2"}])
    add("tools, no system", [{"role": "user", "content": "Weather?"}], [WEATHER])
    add("tools with system", [{"role": "system", "content": "Use tools."}, {"role": "user", "content": "Weather?"}], TOOLSETS[2])
    add("tool call then response then answer",
        [{"role": "user", "content": "Weather in Zürich?"},
         {"role": "assistant", "content": "", "reasoning_content": "Need the tool.", "tool_calls": [call(*CALLS[0])]},
         {"role": "tool", "tool_call_id": "call_get_weather", "content": "{\"temp\": 21}"},
         {"role": "assistant", "content": "21 °C.", "reasoning_content": "Got it."}], [WEATHER])
    add("consecutive tool responses merge",
        [{"role": "user", "content": "Two things"},
         {"role": "assistant", "content": "", "tool_calls": [call(*CALLS[1]), call(*CALLS[2])]},
         {"role": "tool", "content": "14"}, {"role": "tool", "content": "[\"a.txt\"]"}, {"role": "tool", "content": "third"}], TOOLSETS[1])
    add("tool message first", [{"role": "tool", "content": "orphan"}, {"role": "user", "content": "Hi"}])
    add("tool message last without generation prompt", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "",
                                                        "tool_calls": [call(*CALLS[3])]}, {"role": "tool", "content": "1500"}], [CONVERT], False)
    add("unwrapped tool call (no function key)", [{"role": "user", "content": "Hi"},
                                                 {"role": "assistant", "content": "x", "tool_calls": [call(*CALLS[1], wrap=False)]}], [CALC])
    add("string arguments (OpenAI) parsed", [{"role": "user", "content": "Hi"},
                                            {"role": "assistant", "content": "", "tool_calls": [call(*CALLS[2], string_args=True)]}], [FILES])
    add("tool call without arguments", [{"role": "user", "content": "Hi"},
                                       {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "noop"}}]}])
    add("multi-step: user turn wrapping a tool response is not a query",
        [{"role": "user", "content": "Start"}, {"role": "assistant", "content": "a1", "reasoning_content": "r1"},
         {"role": "user", "content": "<tool_response>result</tool_response>"}, {"role": "assistant", "content": "a2", "reasoning_content": "r2"}])
    add("trimming of content and reasoning", [{"role": "user", "content": "\n\n  padded question \t\n"},
                                              {"role": "assistant", "content": "Let me check.\n\n", "reasoning_content": "I am thinking.\n\n"},
                                              {"role": "user", "content": [{"type": "text", "text": "First part.\n\n"},
                                                                           {"type": "text", "text": "Second part.\n\n"}]}])
    add("unknown role is skipped", [{"role": "user", "content": "Hi"}, {"role": "developer", "content": "ignored"}])
    add("empty assistant", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}])
    add("values of every type", [{"role": "user", "content": "Hi"},
                                 {"role": "assistant", "content": "", "tool_calls": [call(*CALLS[4]), call(*CALLS[5]), call(*CALLS[6]), call(*CALLS[7])]}],
        TOOLSETS[2])
    return cases


def random_case(rng, i):
    tools = rng.choice([None, None] + TOOLSETS)
    messages = []
    if rng.random() < 0.5:
        messages.append({"role": "system", "content": rng.choice(["You are helpful.", "  Answer briefly.\n", "系统提示"])})
    for _ in range(rng.randint(1, 4)):
        messages.append({"role": "user", "content": rng.choice(USER_TEXTS)})
        r = rng.random()
        a = {"role": "assistant", "content": rng.choice(ANSWERS)}
        if r < 0.3:
            a["reasoning_content"] = rng.choice(REASONING)
        elif r < 0.5:
            a["content"] = "<think>\n" + rng.choice(REASONING) + "\n</think>\n\n" + a["content"]
        if tools and rng.random() < 0.6:
            picks = rng.sample(CALLS, rng.randint(1, 2))
            a["content"] = rng.choice(["", "Calling tools.", a["content"]])
            a["tool_calls"] = [call(n, args, wrap=rng.random() < 0.8, string_args=rng.random() < 0.3) for n, args in picks]
            messages.append(a)
            for _ in picks:
                messages.append({"role": "tool", "content": rng.choice(["ok", "{\"temp\": 21.5}", "  spaced result  ", "[1, 2, 3]"])})
            if rng.random() < 0.7:
                messages.append({"role": "assistant", "content": rng.choice(ANSWERS), "reasoning_content": rng.choice(REASONING)})
        elif rng.random() < 0.8:
            messages.append(a)
        if rng.random() < 0.15:
            messages.append({"role": "system", "name": rng.choice(["observation", "other"]), "content": "note " + str(i)})
    return (f"random {i}", messages, tools, rng.random() < 0.8)


def main():
    with open(TEMPLATE, encoding="utf-8") as f:
        tmpl = environment().from_string(f.read())
    rng = random.Random(20261201)
    cases = hand_cases() + [random_case(rng, i) for i in range(40)]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as out:
        for name, messages, tools, gen in cases:
            ctx = {"messages": preprocess(messages), "bos_token": BOS, "add_generation_prompt": gen}
            if tools is not None:
                ctx["tools"] = tools
            rendered = tmpl.render(**ctx)
            out.write(json.dumps({"name": name, "messages": messages, "tools": tools, "add_generation_prompt": gen,
                                  "bos_token": BOS, "rendered": rendered}, ensure_ascii=False) + "\n")
    print(f"{len(cases)} cases in {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
