#!/usr/bin/env python3
"""Synthetic conversations for the demo model, rendered with Step 3.5 Flash's real chat template.

Every answer is computed, not made up: arithmetic, unit conversions, word and list puzzles, and tool use over
four invented tools (a calculator, a unit converter, a file lister, a weather lookup) whose responses come from
a seeded simulation. Each conversation has an optional system prompt, the user's question, the assistant's
`<think>` reasoning and answer, and for tool questions the tool call in the template's XML format, the tool's
response and the final answer. Rendering goes through `Scripts/chat/make_corpus.py`'s environment (the way
transformers runs chat templates, after llama.cpp's StepFun preprocessing), so the text is byte for byte what
the server's template renders.

Writes JSON lines {"kind", "messages", "tools", "text"} to Scripts/train/work/chat/{train,heldout}.jsonl;
held-out conversations come from seeds the training set never uses.

Usage: Scripts/train/.venv/bin/python Scripts/train/conversations.py [--train N] [--heldout N]
"""
import argparse
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "chat"))
import make_corpus  # noqa: E402  (the template environment and llama.cpp's preprocessing)

OUT = os.path.join(HERE, "work", "chat")


def fn(name, description, properties, required):
    return {"type": "function", "function": {"name": name, "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required}}}


CALCULATOR = fn("calculator", "Evaluates an arithmetic expression with + - * / and parentheses.",
                {"expression": {"type": "string", "description": "For example (12 + 7) * 3"}}, ["expression"])
CONVERT = fn("convert_units", "Converts a value between units of length, mass or temperature.",
             {"value": {"type": "number"}, "from_unit": {"type": "string"}, "to_unit": {"type": "string"}},
             ["value", "from_unit", "to_unit"])
FILES = fn("list_files", "Lists the files in a directory, optionally only those ending in a suffix.",
           {"path": {"type": "string"}, "suffix": {"type": "string"}}, ["path"])
WEATHER = fn("get_weather", "Current weather for a city.",
             {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, ["city"])
TOOLS = {"calculator": CALCULATOR, "convert_units": CONVERT, "list_files": FILES, "get_weather": WEATHER}

SYSTEMS = [None, None, "You are a helpful assistant.", "You are a concise assistant. Answer briefly.",
           "You are Switchyard's demo model. Think step by step, then answer.", "Answer in one sentence."]
CITIES = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Toronto", "Sydney", "Berlin", "Nairobi", "Seoul", "Madrid", "Denver"]
CONDITIONS = ["sunny", "cloudy", "raining", "snowing", "windy", "foggy"]
WORDS = ["apple", "switch", "python", "garden", "rocket", "silver", "window", "planet", "thread", "kernel", "matrix", "yellow"]
# unit -> (dimension, factor to the base unit); temperatures convert by formula.
UNITS = {"m": ("length", 1.0), "km": ("length", 1000.0), "cm": ("length", 0.01), "mm": ("length", 0.001),
         "mile": ("length", 1609.344), "ft": ("length", 0.3048), "in": ("length", 0.0254),
         "kg": ("mass", 1.0), "g": ("mass", 0.001), "lb": ("mass", 0.45359237), "oz": ("mass", 0.028349523125)}
DIRS = {"/home/ada/project": ["README.md", "main.py", "utils.py", "data.csv", "notes.txt", "test_main.py"],
        "/var/log": ["syslog", "auth.log", "kern.log", "dpkg.log"],
        "/home/ada/photos": ["beach.jpg", "city.png", "cat.jpg", "plan.pdf"],
        "/srv/site": ["index.html", "style.css", "app.js", "logo.svg", "about.html"]}


def num(x):
    """A number as people write it: integers without a point, others to at most 4 decimals."""
    if abs(x - round(x)) < 1e-9:
        return str(int(round(x)))
    return f"{x:.4f}".rstrip("0").rstrip(".")


def arithmetic(r):
    a, b, c = r.randint(2, 99), r.randint(2, 99), r.randint(2, 9)
    shape = r.randrange(4)
    if shape == 0:
        return f"{a} + {b}", a + b
    if shape == 1:
        return f"{a} - {b}", a - b
    if shape == 2:
        return f"{a} * {c}", a * c
    return f"({a} + {b}) * {c}", (a + b) * c


def convert(value, src, dst):
    if src in ("C", "F"):
        return value * 9 / 5 + 32 if src == "C" else (value - 32) * 5 / 9
    return value * UNITS[src][1] / UNITS[dst][1]


def unit_pair(r):
    if r.random() < 0.2:
        src = r.choice(["C", "F"])
        return src, "F" if src == "C" else "C"
    dim = r.choice(["length", "mass"])
    src, dst = r.sample([u for u, (d, _) in UNITS.items() if d == dim], 2)
    return src, dst


def plain(r):
    """A question answered without tools: reasoning, then the answer."""
    kind = r.randrange(5)
    if kind == 0:
        expr, v = arithmetic(r)
        return (r.choice([f"What is {expr}?", f"Compute {expr}.", f"How much is {expr}?"]),
                f"I need to evaluate {expr}. It equals {v}.", f"{expr} = {v}.")
    if kind == 1:
        w = r.choice(WORDS)
        return (f"Spell the word '{w}' backwards.", f"The letters of {w} in reverse order are {' '.join(reversed(w))}.",
                f"'{w}' backwards is '{w[::-1]}'.")
    if kind == 2:
        xs = r.sample(range(1, 100), r.randint(3, 6))
        s = sorted(xs)
        return (f"Sort these numbers from smallest to largest: {', '.join(map(str, xs))}.",
                f"The smallest is {s[0]} and the largest is {s[-1]}; in order: {', '.join(map(str, s))}.",
                f"Sorted: {', '.join(map(str, s))}.")
    if kind == 3:
        w, ch = r.choice(WORDS), None
        ch = r.choice(sorted(set(w)))
        n = w.count(ch)
        return (f"How many times does the letter '{ch}' appear in '{w}'?",
                f"Going through {w} letter by letter, '{ch}' appears {n} time{'s' if n != 1 else ''}.",
                f"The letter '{ch}' appears {n} time{'s' if n != 1 else ''} in '{w}'.")
    xs = [r.randint(1, 50) for _ in range(r.randint(3, 5))]
    return (f"What is the sum of {', '.join(map(str, xs))}?", f"Adding them up: {' + '.join(map(str, xs))} = {sum(xs)}.",
            f"The sum is {sum(xs)}.")


def tool_use(r):
    """A question that needs one of the tools: (tool names offered, question, reasoning, call, response, final)."""
    name = r.choice(list(TOOLS))
    if name == "calculator":
        a, b = r.randint(100, 9999), r.randint(100, 9999)
        op = r.choice(["*", "+", "-"])
        expr = f"{a} {op} {b}"
        v = eval(expr)  # noqa: S307  (an expression this function built from two integers)
        return (name, r.choice([f"Use the calculator to compute {expr}.", f"What is {expr}? Please use a tool.",
                                f"Calculate {expr} exactly."]),
                f"This multiplication is large, so I will use the calculator." if op == "*" else
                "I will use the calculator to get this exactly.",
                {"expression": expr}, json.dumps({"result": v}), f"{expr} = {v}.")
    if name == "convert_units":
        src, dst = unit_pair(r)
        value = r.choice([r.randint(1, 500), round(r.uniform(0.5, 100), 1)])
        v = convert(value, src, dst)
        return (name, r.choice([f"Convert {num(value)} {src} to {dst}.", f"How many {dst} is {num(value)} {src}?"]),
                f"The user wants {num(value)} {src} in {dst}; the convert_units tool does this.",
                {"value": value, "from_unit": src, "to_unit": dst}, json.dumps({"value": round(v, 4), "unit": dst}),
                f"{num(value)} {src} is {num(round(v, 4))} {dst}.")
    if name == "list_files":
        path = r.choice(list(DIRS))
        suffix = r.choice([None, None] + sorted({"." + f.rsplit(".", 1)[1] for f in DIRS[path] if "." in f}))
        files = [f for f in DIRS[path] if suffix is None or f.endswith(suffix)]
        args = {"path": path} if suffix is None else {"path": path, "suffix": suffix}
        ask = f"What files are in {path}?" if suffix is None else f"Which {suffix} files are in {path}?"
        return (name, ask, f"I should list the directory {path} with the list_files tool.", args, json.dumps({"files": files}),
                f"{path} contains {len(files)} matching file{'s' if len(files) != 1 else ''}: {', '.join(files)}." if files
                else f"There are no {suffix} files in {path}.")
    city = r.choice(CITIES)
    unit = r.choice([None, "celsius", "fahrenheit"])
    t = r.randint(-10, 35)
    shown = t if unit != "fahrenheit" else round(t * 9 / 5 + 32)
    cond = r.choice(CONDITIONS)
    args = {"city": city} if unit is None else {"city": city, "unit": unit}
    sym = "°F" if unit == "fahrenheit" else "°C"
    return (name, r.choice([f"What's the weather in {city}?", f"Is it cold in {city} right now?",
                            f"Tell me the current weather in {city}" + (f" in {unit}." if unit else ".")]),
            f"I need the current weather in {city}, so I will call get_weather.", args,
            json.dumps({"city": city, "temperature": shown, "unit": unit or "celsius", "condition": cond}),
            f"It is {shown} {sym} and {cond} in {city}.")


def conversation(seed):
    r = random.Random(seed)
    messages, tools = [], None
    system = r.choice(SYSTEMS)
    if system:
        messages.append({"role": "system", "content": system})
    kind = r.choices(["plain", "tool", "tools-unused", "two-turn"], weights=[3, 4, 2, 1])[0]
    if kind == "tool":
        name, q, think, args, response, final = tool_use(r)
        others = [t for t in TOOLS if t != name]
        offered = sorted([name] + r.sample(others, r.randint(0, 3)))
        tools = [TOOLS[t] for t in offered]
        messages += [{"role": "user", "content": q},
                     {"role": "assistant", "content": "", "reasoning_content": think,
                      "tool_calls": [{"type": "function", "function": {"name": name, "arguments": args}}]},
                     {"role": "tool", "content": response},
                     {"role": "assistant", "content": final, "reasoning_content": "The tool answered; I can reply now."}]
    else:
        if kind == "tools-unused":
            tools = [TOOLS[t] for t in sorted(r.sample(list(TOOLS), r.randint(1, 4)))]
        turns = 2 if kind == "two-turn" else 1
        for _ in range(turns):
            q, think, answer = plain(r)
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": answer, "reasoning_content": think}]
    return kind, messages, tools


def render(env, template, messages, tools, generation_prompt=False):
    return template.render(messages=make_corpus.preprocess(messages), tools=tools, add_generation_prompt=generation_prompt,
                           bos_token=make_corpus.BOS)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=20000)
    ap.add_argument("--heldout", type=int, default=400)
    a = ap.parse_args()
    if not os.path.exists(make_corpus.TEMPLATE):
        sys.exit("conversations: the chat template is missing; run bash Scripts/chat/fetch-template.sh")
    env = make_corpus.environment()
    template = env.from_string(open(make_corpus.TEMPLATE, encoding="utf-8").read())
    os.makedirs(OUT, exist_ok=True)
    # Training seeds count up from 0; held-out seeds come from a range training never reaches.
    for split, seeds in (("train", range(a.train)), ("heldout", range(10**9, 10**9 + a.heldout))):
        with open(os.path.join(OUT, f"{split}.jsonl"), "w", encoding="utf-8") as f:
            for s in seeds:
                kind, messages, tools = conversation(s)
                f.write(json.dumps({"kind": kind, "messages": messages, "tools": tools,
                                    "text": render(env, template, messages, tools)}, ensure_ascii=False) + "\n")
        print(f"{split}: {len(seeds)} conversations in {os.path.relpath(os.path.join(OUT, split + '.jsonl'))}")


if __name__ == "__main__":
    main()
