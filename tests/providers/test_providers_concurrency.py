"""100 concurrent async calls, each with its own correct usage."""

from __future__ import annotations

import asyncio

from shared_core.messages import ChatRequest, Message, StreamEnd
from tests.stub_llm_server import DEFAULT_OUTPUT_TOKENS, StubLLMServer

N = 100


def _req(i: int) -> ChatRequest:
    return ChatRequest(messages=(Message.user(f"q{i}:" + "x" * i),))


async def test_100_concurrent_calls_each_get_their_usage(make, stub: StubLLMServer,
                                                         provider_name: str) -> None:
    p = make(provider_name)
    responses = await asyncio.gather(*(p.achat(_req(i)) for i in range(N)))
    for i, r in enumerate(responses):
        text = _req(i).messages[0].text
        assert r.text == "stub reply to: " + text[:40]
        assert r.usage.input_tokens == len(text)  # the stub's default usage
        assert r.usage.output_tokens == DEFAULT_OUTPUT_TOKENS
    assert len({r.usage.input_tokens for r in responses}) == N
    assert len(stub.requests) == N
    await p.aclose()
    assert (await p.achat(_req(1))).text  # a closed provider reopens on the next call
    await p.aclose()


async def test_100_concurrent_streams(make, stub, provider_name) -> None:
    p = make(provider_name)

    async def one(i: int) -> StreamEnd:
        events = [e async for e in p.astream(_req(i))]
        return events[-1]

    ends = await asyncio.gather(*(one(i) for i in range(N)))
    for i, end in enumerate(ends):
        assert end.response.usage.input_tokens == len(_req(i).messages[0].text)
    await p.aclose()


def test_one_provider_shared_by_threads(make, stub, provider_name) -> None:
    from concurrent.futures import ThreadPoolExecutor

    p = make(provider_name)
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda i: p.chat(_req(i)), range(40)))
    for i, r in enumerate(responses):
        assert r.usage.input_tokens == len(_req(i).messages[0].text)
    p.close()
    assert p.chat(_req(2)).text
    p.close()


def test_one_provider_across_event_loops(make, stub, provider_name) -> None:
    p = make(provider_name)
    for i in range(2):  # each asyncio.run has its own loop and gets its own async client
        r = asyncio.run(p.achat(_req(i)))
        assert r.usage.input_tokens == len(_req(i).messages[0].text)
