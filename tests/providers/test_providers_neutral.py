"""The same tool conversation gives the same provider-neutral result on every provider."""

from __future__ import annotations

from shared_core.messages import ChatRequest, ChatResponse, Message, ToolSpec
from shared_core.providers import ChatProvider
from tests.stub_llm_server import Reply, StubLLMServer, Tokens, ToolCallSpec

TOOLS = (
    ToolSpec("get_weather", "Weather in a city",
             {"type": "object", "properties": {"city": {"type": "string"}}}),
    ToolSpec("convert", "Convert a temperature",
             {"type": "object", "properties": {"celsius": {"type": "number"}}}),
)


def _conversation(p: ChatProvider, stream: bool) -> list[ChatResponse]:
    def call(req: ChatRequest) -> ChatResponse:
        if stream:
            return list(p.stream(req))[-1].response  # type: ignore[union-attr]
        return p.chat(req)

    messages: tuple[Message, ...] = (Message.system("Use tools."),
                                     Message.user("Weather in Paris, in Fahrenheit?"))
    out = []
    for _ in range(3):
        r = call(ChatRequest(messages=messages, tools=TOOLS))
        out.append(r)
        if not r.tool_calls:
            break
        messages += (r.message,) + tuple(
            Message.tool(tc.id, f"result of {tc.name}") for tc in r.tool_calls)
    return out


def _script(stub: StubLLMServer, provider: str) -> None:
    stub.script(provider, [
        Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"}, id="a")],
              usage=Tokens(50, 8)),
        Reply(text="Converting.", tool_calls=[
            ToolCallSpec("convert", {"celsius": 21}, id="b"),
            ToolCallSpec("get_weather", {"city": "Paris"}, id="c")], usage=Tokens(80, 12)),
        Reply(text="It is 69.8 F and sunny in Paris.", usage=Tokens(120, 11)),
    ])


def _neutral(rs: list[ChatResponse]) -> list[tuple]:
    return [(r.text, [(c.id, c.name, c.arguments) for c in r.tool_calls], r.stop_reason,
             r.usage) for r in rs]


def test_same_tool_conversation_same_result(make, stub: StubLLMServer) -> None:
    results = {}
    for name in ("openai", "anthropic", "google"):
        for stream in (False, True):
            _script(stub, name)
            results[(name, stream)] = _neutral(_conversation(make(name), stream))
    first = results[("openai", False)]
    assert len(first) == 3 and first[-1][2] == "stop"
    for key, value in results.items():
        assert value == first, key
