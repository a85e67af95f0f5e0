"""chat / achat through the real SDKs against the stub: text, tools, structured output, images,
usage; and the wire payload each provider receives."""

from __future__ import annotations

import json

import pytest

from shared_core.messages import ChatRequest, ImagePart, Message, TextPart, ToolCall, ToolSpec
from shared_core.pricing import cost
from shared_core.usage import Usage
from tests.stub_llm_server import Reply, StubLLMServer, Tokens, ToolCallSpec

WEATHER = ToolSpec(
    "get_weather",
    "Current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME = ToolSpec("get_time", "Local time in a city.",
                {"type": "object", "properties": {"city": {"type": "string"}}})
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["answer", "confidence"],
    "additionalProperties": False,
}


def camel(d: dict, snake: str) -> object:
    """A Gemini wire field; google-genai writes some nested fields in proto snake_case (which
    the API accepts as well as lowerCamelCase)."""
    head, *rest = snake.split("_")
    camel_key = head + "".join(w.title() for w in rest)
    return d[camel_key] if camel_key in d else d[snake]


def ask(text: str = "What's the weather in Paris?", **kw: object) -> ChatRequest:
    return ChatRequest(messages=(Message.system("Be brief."), Message.user(text)), **kw)  # type: ignore[arg-type]


def test_text(make, stub: StubLLMServer, provider_name: str) -> None:
    stub.script(provider_name, [Reply(text="Sunny, 21 C.", usage=Tokens(input=30, output=6))])
    p = make(provider_name)
    r = p.chat(ask())
    assert r.text == "Sunny, 21 C."
    assert r.tool_calls == ()
    assert r.stop_reason == "stop"
    assert r.usage == Usage(input_tokens=30, output_tokens=6)
    assert r.cost_usd == pytest.approx(cost(r.usage, p.spec))
    assert (r.provider, r.spec) == (provider_name, p.spec)
    assert r.model and r.raw
    [sent] = stub.requests_for(provider_name)
    assert sent.model == p.model and not sent.stream
    assert "test-key" in json.dumps(sent.headers)  # the key reached the SDK...
    assert "test-key" not in repr(p)  # ...but not our repr


async def test_async_text(make, stub: StubLLMServer, provider_name: str) -> None:
    stub.script(provider_name, [Reply(text="async hi", usage=Tokens(input=3, output=2))])
    r = await make(provider_name).achat(ask())
    assert (r.text, r.usage.total_tokens) == ("async hi", 5)


def test_system_message_goes_where_each_api_wants_it(make, stub, provider_name) -> None:
    make(provider_name).chat(ask("hello"))
    body = stub.requests[-1].json
    if provider_name == "openai":
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    elif provider_name == "anthropic":
        assert body["system"] == "Be brief."
        assert [m["role"] for m in body["messages"]] == ["user"]
        assert body["max_tokens"] == 4096
    else:
        assert body["systemInstruction"]["parts"][0]["text"] == "Be brief."
        assert [c["role"] for c in body["contents"]] == ["user"]


def test_generation_options_are_sent(make, stub, provider_name) -> None:
    make(provider_name).chat(ask(temperature=0.2, max_tokens=50, stop=("END",), top_p=0.9))
    body = stub.requests[-1].json
    if provider_name == "openai":
        assert (body["temperature"], body["max_tokens"], body["stop"], body["top_p"]) == (
            0.2, 50, ["END"], 0.9)
    elif provider_name == "anthropic":
        assert (body["temperature"], body["max_tokens"], body["stop_sequences"]) == (
            0.2, 50, ["END"])
    else:
        cfg = body["generationConfig"]
        assert (cfg["temperature"], cfg["maxOutputTokens"], cfg["stopSequences"]) == (
            0.2, 50, ["END"])


def test_reasoning_models_get_max_completion_tokens(make, stub) -> None:
    make("openai:gpt-5-mini").chat(ask(max_tokens=64))
    body = stub.requests[-1].json
    assert body["max_completion_tokens"] == 64 and "max_tokens" not in body


def test_extra_is_passed_through(make, stub, provider_name) -> None:
    make(provider_name).chat(ask(extra={"seed_for_test": 7}))
    assert stub.requests[-1].json["seed_for_test"] == 7


def test_single_tool_call(make, stub, provider_name) -> None:
    stub.script(provider_name, [
        Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"}, id="call_1")]),
    ])
    r = make(provider_name).chat(ask(tools=(WEATHER,), tool_choice="auto"))
    assert r.stop_reason == "tool_calls"
    assert len(r.tool_calls) == 1
    call = r.tool_calls[0]
    assert (call.id, call.name, call.arguments) == ("call_1", "get_weather", {"city": "Paris"})
    body = stub.requests[-1].json
    if provider_name == "openai":
        assert body["tools"][0]["function"]["name"] == "get_weather"
        assert body["tools"][0]["function"]["parameters"] == WEATHER.parameters
        assert body["tool_choice"] == "auto"
    elif provider_name == "anthropic":
        assert body["tools"][0]["input_schema"] == WEATHER.parameters
        assert body["tool_choice"] == {"type": "auto"}
    else:
        decl = body["tools"][0]["functionDeclarations"][0]
        assert decl["name"] == "get_weather"
        assert camel(decl, "parameters_json_schema") == WEATHER.parameters
        assert body["toolConfig"]["functionCallingConfig"]["mode"] == "AUTO"


@pytest.mark.parametrize("choice", ["required", "none", "get_time"])
def test_tool_choice(make, stub, provider_name, choice) -> None:
    make(provider_name).chat(ask(tools=(WEATHER, TIME), tool_choice=choice))
    body = stub.requests[-1].json
    if provider_name == "openai":
        want = choice if choice != "get_time" else {
            "type": "function", "function": {"name": "get_time"}}
        assert body["tool_choice"] == want
    elif provider_name == "anthropic":
        want = {"required": {"type": "any"}, "none": {"type": "none"},
                "get_time": {"type": "tool", "name": "get_time"}}[choice]
        assert body["tool_choice"] == want
    else:
        cfg = body["toolConfig"]["functionCallingConfig"]
        assert cfg["mode"] == {"required": "ANY", "none": "NONE", "get_time": "ANY"}[choice]
        if choice == "get_time":
            assert cfg["allowedFunctionNames"] == ["get_time"]


def test_parallel_tool_calls_and_round_trip(make, stub, provider_name) -> None:
    stub.script(provider_name, [
        Reply(text="Checking.", tool_calls=[
            ToolCallSpec("get_weather", {"city": "Paris"}, id="c1"),
            ToolCallSpec("get_time", {"city": "Tokyo"}, id="c2"),
        ]),
        Reply(text="Paris: sunny. Tokyo: 09:00."),
    ])
    p = make(provider_name)
    req = ask("Weather in Paris and time in Tokyo?", tools=(WEATHER, TIME))
    first = p.chat(req)
    assert [(c.name, c.arguments) for c in first.tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_time", {"city": "Tokyo"})]
    follow = ChatRequest(
        messages=req.messages + (
            first.message,
            Message.tool(first.tool_calls[0].id, '{"sky": "sunny"}'),
            Message.tool(first.tool_calls[1].id, "09:00"),
        ),
        tools=req.tools,
    )
    final = p.chat(follow)
    assert final.text == "Paris: sunny. Tokyo: 09:00." and final.stop_reason == "stop"
    body = stub.requests[-1].json
    if provider_name == "openai":
        assistant, tool1, tool2 = body["messages"][2:]
        assert [tc["id"] for tc in assistant["tool_calls"]] == ["c1", "c2"]
        assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {
            "city": "Paris"}
        assert tool1 == {"role": "tool", "tool_call_id": "c1", "content": '{"sky": "sunny"}'}
        assert tool2["tool_call_id"] == "c2"
    elif provider_name == "anthropic":
        assistant, results = body["messages"][1:]
        assert assistant["content"][0] == {"type": "text", "text": "Checking."}
        assert [b["id"] for b in assistant["content"][1:]] == ["c1", "c2"]
        assert assistant["content"][1]["input"] == {"city": "Paris"}
        assert results["role"] == "user"  # both results in one user turn
        assert [b["tool_use_id"] for b in results["content"]] == ["c1", "c2"]
    else:
        model_turn, results = body["contents"][1:]
        assert model_turn["role"] == "model"
        calls = [p["functionCall"] for p in model_turn["parts"] if "functionCall" in p]
        assert [(c["name"], c["args"], c.get("id")) for c in calls] == [
            ("get_weather", {"city": "Paris"}, "c1"), ("get_time", {"city": "Tokyo"}, "c2")]
        responses = [p["functionResponse"] for p in results["parts"]]
        assert responses[0] == {"id": "c1", "name": "get_weather",
                                "response": {"sky": "sunny"}}
        assert responses[1] == {"id": "c2", "name": "get_time", "response": {"result": "09:00"}}


def test_gemini_calls_without_ids_get_ids_that_round_trip_by_name(make, stub) -> None:
    stub.script("google", [Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"})])])
    p = make("google")
    req = ask(tools=(WEATHER,))
    first = p.chat(req)
    [call] = first.tool_calls
    assert call.id.startswith("gcall_")
    p.chat(ChatRequest(messages=req.messages + (first.message, Message.tool(call.id, "cold")),
                       tools=req.tools))
    body = stub.requests[-1].json
    sent_call = body["contents"][1]["parts"][0]["functionCall"]
    assert "id" not in sent_call  # an invented id is never sent to Gemini
    assert body["contents"][2]["parts"][0]["functionResponse"] == {
        "name": "get_weather", "response": {"result": "cold"}}


def test_structured_output(make, stub, provider_name) -> None:
    answer = {"answer": "Paris", "confidence": 0.9}
    stub.script(provider_name, [Reply(text=json.dumps(answer))])
    r = make(provider_name).chat(ask("Capital of France?", response_schema=SCHEMA,
                                     response_schema_name="capital"))
    assert json.loads(r.text) == answer
    body = stub.requests[-1].json
    if provider_name == "openai":
        assert body["response_format"] == {
            "type": "json_schema", "json_schema": {"name": "capital", "schema": SCHEMA}}
    elif provider_name == "anthropic":
        assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    else:
        cfg = body["generationConfig"]
        assert cfg["responseMimeType"] == "application/json"
        assert cfg["responseJsonSchema"] == SCHEMA


def test_anthropic_structured_output_by_forced_tool_on_older_models(make, stub) -> None:
    answer = {"answer": "Paris", "confidence": 0.9}
    stub.script("anthropic", [Reply(tool_calls=[ToolCallSpec("capital", answer)])] * 2)
    p = make("anthropic:claude-3-5-haiku")
    req = ask("Capital of France?", response_schema=SCHEMA, response_schema_name="capital")
    r = p.chat(req)
    assert json.loads(r.text) == answer
    assert r.tool_calls == () and r.stop_reason == "stop"
    body = stub.requests[-1].json
    assert body["tool_choice"] == {"type": "tool", "name": "capital"}
    assert body["tools"][-1]["input_schema"] == SCHEMA and "output_config" not in body
    end = list(p.stream(req))[-1].response
    assert json.loads(end.text) == answer and end.tool_calls == ()


def test_images(make, stub, provider_name) -> None:
    msg = Message.user((TextPart("What is this?"), ImagePart(url="https://x.test/cat.png"),
                        ImagePart(data="aGVsbG8=", media_type="image/jpeg")))
    make(provider_name).chat(ChatRequest(messages=(msg,)))
    body = stub.requests[-1].json
    if provider_name == "openai":
        parts = body["messages"][0]["content"]
        assert parts[1] == {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}}
        assert parts[2]["image_url"]["url"] == "data:image/jpeg;base64,aGVsbG8="
    elif provider_name == "anthropic":
        parts = body["messages"][0]["content"]
        assert parts[1]["source"] == {"type": "url", "url": "https://x.test/cat.png"}
        assert parts[2]["source"] == {"type": "base64", "media_type": "image/jpeg",
                                      "data": "aGVsbG8="}
    else:
        parts = body["contents"][0]["parts"]
        assert camel(parts[1]["fileData"], "file_uri") == "https://x.test/cat.png"
        assert camel(parts[2]["inlineData"], "mime_type") == "image/jpeg"
        assert parts[2]["inlineData"]["data"] == "aGVsbG8="


def test_usage_normalises_cached_cache_write_and_reasoning(make, stub, provider_name) -> None:
    tokens = Tokens(input=1000, output=300, cached=600, reasoning=120,
                    cache_write=0 if provider_name == "google" else 100)
    stub.script(provider_name, [Reply(text="ok", usage=tokens)])
    p = make(provider_name)
    u = p.chat(ask()).usage
    assert u == Usage(input_tokens=1000, output_tokens=300, cached_input_tokens=600,
                      cache_write_tokens=tokens.cache_write, reasoning_tokens=120)


def test_stop_reasons(make, stub, provider_name) -> None:
    stub.script(provider_name, [Reply(text="trunc", stop="length"),
                                Reply(text="", stop="content_filter")])
    p = make(provider_name)
    assert p.chat(ask()).stop_reason == "length"
    assert p.chat(ask()).stop_reason == "content_filter"


def test_response_message_round_trips(make, stub, provider_name) -> None:
    stub.script(provider_name, [Reply(text="hi", tool_calls=[ToolCallSpec("f", {"x": 1}, "i")])])
    r = make(provider_name).chat(ask(tools=(ToolSpec("f"),)))
    assert r.message == Message.assistant("hi", (ToolCall("i", "f", {"x": 1}),))


def test_gemini_thought_signatures_are_sent_back(make, stub) -> None:
    sig = "c2lnbmF0dXJlLWJ5dGVz"  # base64
    stub.script("google", [Reply(tool_calls=[
        ToolCallSpec("get_weather", {"city": "Rome"}, id="g1", thought_signature=sig)])])
    p = make("google")
    req = ask(tools=(WEATHER,))
    first = p.chat(req)
    p.chat(ChatRequest(messages=req.messages + (first.message, Message.tool("g1", "warm")),
                       tools=req.tools))
    part = stub.requests[-1].json["contents"][1]["parts"][0]
    assert camel(part, "thought_signature") == sig


def test_openai_compatible_server_without_usage_warns_and_cost_is_none(make, stub) -> None:
    stub.script("openai", [Reply(text="no usage here", omit_usage=True)] * 2)
    p = make("openai:llama3.1:8b")
    with pytest.warns(UserWarning, match="reported no token usage"):
        r = p.chat(ask())
    assert r.cost_usd is None and r.usage == Usage()
    with pytest.warns(UserWarning, match="reported no token usage"):
        end = list(p.stream(ask()))[-1].response
    assert end.text == "no usage here" and end.cost_usd is None


def test_anthropic_long_non_streaming_call_is_allowed(make, stub) -> None:
    r = make("anthropic:claude-sonnet-4-5").chat(ask(max_tokens=64_000))
    assert r.text and stub.requests[-1].json["max_tokens"] == 64_000
