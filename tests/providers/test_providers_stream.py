"""stream / astream: deltas, the usage event, the assembled response, dropped streams."""

from __future__ import annotations

import pytest

from shared_core._errors import ProviderConnectionError, ProviderServerError, RateLimitError
from shared_core.messages import (
    ChatRequest,
    Message,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
    UsageEvent,
)
from shared_core.usage import Usage
from tests.stub_llm_server import Fail, Reply, StubLLMServer, Tokens, ToolCallSpec

REQ = ChatRequest(messages=(Message.user("Tell me a story"),),
                  tools=(ToolSpec("lookup"), ToolSpec("save")))
REPLY = Reply(
    text="Once upon a time, there was a router.",
    tool_calls=[ToolCallSpec("lookup", {"q": "router", "n": 3}, id="t1"),
                ToolCallSpec("save", {"title": "A story"}, id="t2")],
    usage=Tokens(input=120, output=45, cached=20, reasoning=10),
)


def _check_stream(events: list, provider_name: str) -> None:
    kinds = [type(e) for e in events]
    assert kinds[-2:] == [UsageEvent, StreamEnd]
    assert kinds.count(UsageEvent) == 1 and kinds.count(StreamEnd) == 1
    assert set(kinds[:-2]) <= {TextDelta, ToolCallDelta}
    assert sum(k is TextDelta for k in kinds) > 1  # really streamed in pieces
    end = events[-1].response
    assert end.text == "".join(e.text for e in events if isinstance(e, TextDelta))
    assert [(c.id, c.name, c.arguments) for c in end.tool_calls] == [
        ("t1", "lookup", {"q": "router", "n": 3}), ("t2", "save", {"title": "A story"})]
    assert end.stop_reason == "tool_calls"
    assert events[-2].usage == end.usage and events[-2].cost_usd == end.cost_usd


def test_stream_equals_unstreamed(make, stub: StubLLMServer, provider_name: str) -> None:
    stub.script(provider_name, [REPLY, REPLY])
    p = make(provider_name)
    whole = p.chat(REQ)
    events = list(p.stream(REQ))
    _check_stream(events, provider_name)
    end = events[-1].response
    assert (end.text, end.tool_calls, end.stop_reason) == (
        whole.text, whole.tool_calls, whole.stop_reason)
    assert end.usage == whole.usage == Usage(120, 45, 20, 0, 10)
    assert end.cost_usd == whole.cost_usd and end.cost_usd is not None
    assert stub.requests[-1].stream
    if provider_name == "openai":
        assert stub.requests[-1].json["stream_options"] == {"include_usage": True}


async def test_astream_equals_unstreamed(make, stub, provider_name) -> None:
    stub.script(provider_name, [REPLY, REPLY])
    p = make(provider_name)
    whole = await p.achat(REQ)
    events = [e async for e in p.astream(REQ)]
    _check_stream(events, provider_name)
    assert events[-1].response.usage == whole.usage
    assert events[-1].response.cost_usd == whole.cost_usd


def test_stream_dropped_midway_raises_and_is_not_replayed(make, stub, provider_name) -> None:
    stub.script(provider_name, [Reply(text="a long answer that will be cut", drop_after=5)])
    p = make(provider_name)
    seen = []
    with pytest.raises(ProviderConnectionError) as info:
        for event in p.stream(REQ):
            seen.append(event)
    assert any(isinstance(e, TextDelta) for e in seen)
    assert not any(isinstance(e, (UsageEvent, StreamEnd)) for e in seen)
    assert len(stub.requests) == 1  # output had started: no retry
    assert provider_name in str(info.value) and p.model in str(info.value)


async def test_astream_dropped_midway_raises(make, stub, provider_name) -> None:
    stub.script(provider_name, [Reply(text="a long answer that will be cut", drop_after=5)])
    p = make(provider_name)
    with pytest.raises(ProviderConnectionError):
        async for _ in p.astream(REQ):
            pass
    assert len(stub.requests) == 1


def test_stream_dropped_before_first_delta_is_retried(make, stub, provider_name) -> None:
    stub.script(provider_name, [Reply(text="lost", drop_after=0), Reply(text="second try")])
    events = list(make(provider_name).stream(REQ))
    assert events[-1].response.text == "second try"
    assert len(stub.requests) == 2


def test_stream_text_only(make, stub, provider_name) -> None:
    stub.script(provider_name, [Reply(text="just text", usage=Tokens(5, 2))])
    events = list(make(provider_name).stream(REQ))
    end = events[-1].response
    assert (end.text, end.tool_calls, end.stop_reason) == ("just text", (), "stop")
    assert end.usage == Usage(5, 2)


@pytest.mark.parametrize(("status", "cls"), [(529, ProviderServerError),
                                             (429, RateLimitError)])
def test_error_event_inside_the_stream(make, stub, provider_name, status, cls) -> None:
    # before any output: mapped to our error and retried
    stub.script(provider_name, [Reply(text="unused", stream_error=Fail(status, "overloaded")),
                                Reply(text="after retry")])
    events = list(make(provider_name, max_retries=1).stream(REQ))
    assert events[-1].response.text == "after retry" and len(stub.requests) == 2
    # after output has started: raised, not replayed
    stub.script(provider_name, [Reply(text="some words first", drop_after=4,
                                      stream_error=Fail(status, "overloaded"))])
    with pytest.raises(cls) as info:
        list(make(provider_name, max_retries=1).stream(REQ))
    assert "overloaded" in str(info.value) and len(stub.requests) == 3
