#!/usr/bin/env python3
"""The real client SDKs against a running `switchyard serve`: openai (chat, streamed and not, tools,
usage, logprobs, completions, models, errors) and anthropic (messages, streamed and not, tools, thinking and
tool_use blocks in the history, count_tokens, errors). Usage: test_sdk.py BASE_URL API_KEY. Exits non-zero on
the first failure, naming it."""
import sys

import anthropic
import openai

BASE, KEY = sys.argv[1], sys.argv[2]
MODEL = "switchyard-tiny"
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)


oa = openai.OpenAI(base_url=BASE + "/v1", api_key=KEY, max_retries=0)
r = oa.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hello"}], max_tokens=8, temperature=0)
check(r.choices[0].finish_reason in ("length", "stop") and r.usage.completion_tokens <= 8 and r.usage.prompt_tokens > 0, "openai chat")
stream = oa.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hello"}], max_tokens=6, temperature=0,
                                    stream=True, stream_options={"include_usage": True})
chunks = list(stream)
check(chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6, "openai streamed usage")
check(any(c.choices and c.choices[0].finish_reason for c in chunks), "openai streamed finish_reason")
history = [{"role": "system", "content": "Use tools."}, {"role": "user", "content": "Weather in Bern?"},
           {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                                  "function": {"name": "get_weather", "arguments": "{\"city\": \"Bern\"}"}}]},
           {"role": "tool", "tool_call_id": "c1", "content": "21 C"}]
r = oa.chat.completions.create(model=MODEL, messages=history, tools=[WEATHER], max_tokens=4, temperature=0, logprobs=True, top_logprobs=2)
check(r.choices[0].logprobs is not None and len(r.choices[0].logprobs.content) == r.usage.completion_tokens, "openai tools + logprobs")
check(len(r.choices[0].logprobs.content[0].top_logprobs) == 2, "openai top_logprobs")
c = oa.completions.create(model=MODEL, prompt="Once upon", max_tokens=5, temperature=0)
check(isinstance(c.choices[0].text, str) and c.usage.completion_tokens <= 5, "openai completions")
check([m.id for m in oa.models.list()] == [MODEL], "openai models")
for kwargs, err in [({"n": 2}, openai.BadRequestError), ({"model": "nope"}, openai.NotFoundError)]:
    try:
        args = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 2, **kwargs}
        oa.chat.completions.create(**args)
        check(False, f"openai {kwargs} accepted")
    except err as e:
        check("error" in (e.body if isinstance(e.body, dict) else {"error": e.body}) or e.message, f"openai {kwargs} error body")
try:
    openai.OpenAI(base_url=BASE + "/v1", api_key="wrong", max_retries=0).models.list()
    check(False, "openai wrong key accepted")
except openai.AuthenticationError:
    check(True, "openai 401")

# Responses (Codex): input items with a function call and its output, a function tool and a built-in tool
# type that is accepted and ignored.
items = [{"type": "message", "role": "developer", "content": "Be brief."},
         {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in Bern?"}]},
         {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{\"city\": \"Bern\"}"},
         {"type": "function_call_output", "call_id": "c1", "output": "21 C"}]
rtools = [{"type": "function", "name": "get_weather", "description": "Weather", "parameters": WEATHER["function"]["parameters"]},
          {"type": "web_search"}]
resp = oa.responses.create(model=MODEL, input=items, tools=rtools, max_output_tokens=6, temperature=0)
check(resp.status in ("completed", "incomplete") and resp.usage.output_tokens == 6 and len(resp.output) >= 1, "openai responses")
events = list(oa.responses.create(model=MODEL, input="Hello", max_output_tokens=5, temperature=0, stream=True))
kinds = [e.type for e in events]
check(kinds[0] == "response.created" and kinds[-1] in ("response.completed", "response.incomplete"), f"openai responses stream {kinds[:3]}")
check(any(k.endswith(".delta") for k in kinds) and "response.output_item.done" in kinds, "openai responses stream deltas")
check([e.sequence_number for e in events] == list(range(len(events))), "openai responses sequence numbers")

an = anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0)
m = an.messages.create(model=MODEL, max_tokens=8, system="Be brief.", messages=[{"role": "user", "content": "Hello"}])
check(m.stop_reason in ("max_tokens", "end_turn") and m.usage.output_tokens <= 8 and len(m.content) >= 1, "anthropic message")
tools = [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
hist = [{"role": "user", "content": "Weather in Bern?"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "call the tool", "signature": ""},
                                          {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Bern"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "21 C"}]}]
with an.messages.stream(model=MODEL, max_tokens=6, messages=hist, tools=tools) as s:
    events = [e.type for e in s]
    final = s.get_final_message()
check(events[0] == "message_start" and "message_stop" in events and final.usage.output_tokens == 6, f"anthropic stream {events[:4]}")
n = an.messages.count_tokens(model=MODEL, messages=hist, tools=tools)
check(n.input_tokens > 0, "anthropic count_tokens")
try:
    anthropic.Anthropic(base_url=BASE, api_key="wrong", max_retries=0).messages.create(model=MODEL, max_tokens=2, messages=[{"role": "user", "content": "x"}])
    check(False, "anthropic wrong key accepted")
except anthropic.AuthenticationError:
    check(True, "anthropic 401")
print(f"sdk: {checks} checks passed against {BASE} (openai {openai.__version__}, anthropic {anthropic.__version__})")
