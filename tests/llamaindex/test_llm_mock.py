"""AvengersLLM with LlamaIndex's own mock LLMs as candidates (no HTTP at all)."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import ChatMessage
from llama_index.core.llms.mock import MockFunctionCallingLLM, MockLLM
from llama_index.core.tools import FunctionTool

from llamaindex_avengers import RESPONSE_KEY, AvengersLLM
from shared_core import Router
from shared_core._errors import ConfigurationError, RouterFileError, UnknownModelError

STRONG, CHEAP, PLAIN = "gpt-4-1106-preview", "mistralai/mistral-7b-chat", "claude-instant-v1"
QUESTION = "What is the capital of France?"


def user(text: str = QUESTION) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


@pytest.fixture
def fc_llm(make_router) -> AvengersLLM:
    """Two function-calling mock candidates."""
    return AvengersLLM(router=make_router(), models={
        STRONG: MockFunctionCallingLLM(), CHEAP: MockFunctionCallingLLM()})


@pytest.fixture
def mixed_llm(make_router) -> AvengersLLM:
    """Two function-calling mocks and one plain MockLLM (no tools)."""
    return AvengersLLM(router=make_router(), models={
        STRONG: MockFunctionCallingLLM(), CHEAP: MockFunctionCallingLLM(),
        PLAIN: MockLLM()})


def facts(resp) -> dict:
    return resp.additional_kwargs[RESPONSE_KEY]


# ---------------------------------------------------------------- construction and metadata
def test_construction_does_no_io_and_errors_name_the_path(tmp_path: Path) -> None:
    llm = AvengersLLM(router=tmp_path / "missing.json", alpha=0.3)
    assert llm.alpha == 0.3  # constructed without reading anything
    with pytest.raises(RouterFileError, match="missing.json"):
        llm.chat(user())


def test_default_router_with_recorded_specs(router_file: Path, monkeypatch) -> None:
    monkeypatch.setenv("AVENGERS_ROUTER", str(router_file))
    llm = AvengersLLM(alpha=0.7)
    sel = llm.route(QUESTION)
    assert sel.model in Router.load(router_file).model_specs
    assert sel.spec.count(":") == 1 and sel.alpha == 0.7


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="must be a 'provider:model' spec or a LlamaIndex LLM"):
        AvengersLLM(models={STRONG: 42})
    with pytest.raises(ValueError, match="route_on"):
        AvengersLLM(route_on="everything")
    with pytest.raises(ValueError):
        AvengersLLM(alpha=1.5)


def test_api_key_is_never_serialised(make_router) -> None:
    llm = AvengersLLM(router=make_router(), models={STRONG: MockLLM()}, api_key="sk-very-secret")
    assert llm.api_key is not None and llm.api_key.get_secret_value() == "sk-very-secret"
    assert "sk-very-secret" not in llm.to_json()
    assert "sk-very-secret" not in str(llm.to_payload()) + repr(llm)
    assert llm.to_dict()["models"] == {STRONG: "MockLLM"}


def test_metadata_tells_the_truth(fc_llm: AvengersLLM, mixed_llm: AvengersLLM) -> None:
    meta = fc_llm.metadata
    assert meta.is_chat_model and meta.is_function_calling_model
    assert meta.context_window == MockFunctionCallingLLM().metadata.context_window
    assert not mixed_llm.metadata.is_function_calling_model  # MockLLM cannot call tools


def test_metadata_context_window_is_the_smallest(make_router) -> None:
    llm = AvengersLLM(router=make_router({STRONG: "openai:gpt-4.1",
                                          CHEAP: "anthropic:claude-haiku-4-5"}))
    assert llm.metadata.context_window == 200_000  # claude's, not gpt-4.1's 1M
    assert llm.metadata.is_function_calling_model


# ---------------------------------------------------------------- every method
def _check(resp, llm: AvengersLLM) -> None:
    f = facts(resp)
    assert f["model"] in llm.models
    assert f["reason"] == "routed" and f["alpha"] == 0.7 and isinstance(f["cluster"], int)
    assert set(f["scores"]) >= set(llm.models)
    assert resp.raw[RESPONSE_KEY] == f


def test_chat_and_complete(fc_llm: AvengersLLM) -> None:
    resp = fc_llm.chat(user())
    _check(resp, fc_llm)
    assert resp.message.content == QUESTION  # the mock echoes
    assert resp.message.additional_kwargs[RESPONSE_KEY]["model"] == facts(resp)["model"]
    comp = fc_llm.complete(QUESTION)
    assert comp.text == QUESTION and comp.additional_kwargs[RESPONSE_KEY]["model"]
    assert len(fc_llm.ledger) == 2
    assert [r.reason for r in fc_llm.ledger.records] == ["routed", "routed"]


def test_streams(fc_llm: AvengersLLM) -> None:
    chunks = list(fc_llm.stream_chat(user()))
    assert chunks[-1].message.content == QUESTION
    _check(chunks[-1], fc_llm)
    comp = list(fc_llm.stream_complete(QUESTION))
    assert "".join(c.delta or "" for c in comp) == QUESTION
    assert comp[-1].additional_kwargs[RESPONSE_KEY]["model"] in fc_llm.models


async def test_async_forms(fc_llm: AvengersLLM) -> None:
    _check(await fc_llm.achat(user()), fc_llm)
    assert (await fc_llm.acomplete(QUESTION)).text == QUESTION
    chunks = [c async for c in await fc_llm.astream_chat(user())]
    _check(chunks[-1], fc_llm)
    comp = [c async for c in await fc_llm.astream_complete(QUESTION)]
    assert comp[-1].text == QUESTION
    assert len(fc_llm.ledger) == 4


# ---------------------------------------------------------------- overrides and dry run
def test_route_is_a_dry_run_that_matches_the_router(fc_llm: AvengersLLM, make_router) -> None:
    router = make_router()
    for alpha in (0.0, 1.0):
        sel = fc_llm.route(QUESTION, alpha=alpha)
        expected = router.route(QUESTION, alpha, allowed=[STRONG, CHEAP])
        assert sel.model == expected.model and sel.alpha == alpha
        assert sel.metadata()["cluster"] == expected.cluster
    assert len(fc_llm.ledger) == 0  # nothing was called


def test_per_call_overrides(fc_llm: AvengersLLM) -> None:
    forced = fc_llm.chat(user(), force=CHEAP)
    assert facts(forced)["model"] == CHEAP and facts(forced)["reason"] == "forced"
    routed = fc_llm.route(QUESTION).model
    other = CHEAP if routed == STRONG else STRONG
    assert facts(fc_llm.chat(user(), exclude=[routed]))["model"] == other
    assert facts(fc_llm.chat(user(), allowed=[other]))["model"] == other
    assert facts(fc_llm.chat(user(), alpha=0.1))["alpha"] == 0.1
    with pytest.raises(UnknownModelError, match=f"unknown model 'gpt5'; known: .*{CHEAP}"):
        fc_llm.chat(user(), force="gpt5")
    with pytest.raises(ConfigurationError, match="no candidate model"):
        fc_llm.chat(user(), exclude=[STRONG, CHEAP])


def test_fallback_to_the_next_ranked_object(make_router) -> None:
    class Broken(MockFunctionCallingLLM):
        def chat(self, messages, **kwargs):  # a third-party LLM failing before output
            raise RuntimeError("provider down")

        def stream_chat(self, messages, **kwargs):  # AvengersLLM.chat streams from its targets
            raise RuntimeError("provider down")

    probe = AvengersLLM(router=make_router(), models={STRONG: MockFunctionCallingLLM(),
                                                      CHEAP: MockFunctionCallingLLM()})
    first = probe.route(QUESTION).model
    second = CHEAP if first == STRONG else STRONG
    llm = AvengersLLM(router=make_router(), models={first: Broken(),
                                                    second: MockFunctionCallingLLM()})
    f = facts(llm.chat(user()))
    assert f["model"] == second and f["fallback_attempts"] == [first]
    assert "provider down" in f["attempts"][0][2]


# ---------------------------------------------------------------- tools
def _tools() -> list[FunctionTool]:
    def add(a: int = 2, b: int = 3) -> int:
        """Add two integers."""
        return a + b

    def multiply(a: int = 4, b: int = 5) -> int:
        """Multiply two integers."""
        return a * b

    return [FunctionTool.from_defaults(add), FunctionTool.from_defaults(multiply)]


def test_tools_route_only_among_tool_capable_models(mixed_llm: AvengersLLM) -> None:
    for alpha in (0.0, 0.5, 1.0):
        assert mixed_llm.route(QUESTION, alpha=alpha, tools=_tools()).model in (STRONG, CHEAP)
    resp = mixed_llm.chat_with_tools(_tools()[:1], user_msg="add please")
    assert facts(resp)["model"] in (STRONG, CHEAP)
    assert [t.tool_name for t in mixed_llm.get_tool_calls_from_response(resp)] == ["add"]


def test_predict_and_call(fc_llm: AvengersLLM) -> None:
    out = fc_llm.predict_and_call(_tools()[:1], user_msg="add 2 and 3")
    assert out.response == "5"


def test_no_tool_call_is_an_error_only_when_asked(fc_llm: AvengersLLM) -> None:
    resp = fc_llm.chat(user())
    assert fc_llm.get_tool_calls_from_response(resp, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="expected at least one tool call"):
        fc_llm.get_tool_calls_from_response(resp)


def test_single_tool_call_unless_parallel_allowed(fc_llm: AvengersLLM) -> None:
    one = fc_llm.chat_with_tools(_tools(), user_msg="go")
    both = fc_llm.chat_with_tools(_tools(), user_msg="go", allow_parallel_tool_calls=True)
    assert len(fc_llm.get_tool_calls_from_response(one)) == 1
    assert len(fc_llm.get_tool_calls_from_response(both)) == 2


@pytest.mark.parametrize("streaming", [True, False])
async def test_function_agent_with_two_tools(fc_llm: AvengersLLM, streaming: bool) -> None:
    agent = FunctionAgent(tools=_tools(), llm=fc_llm, streaming=streaming,
                          system_prompt="Use the tools.")
    result = await agent.run(user_msg="Add and multiply, please.")
    assert "Tool calls complete." in str(result)
    assert sorted(t.tool_name for t in result.tool_calls) == ["add", "multiply"]
    assert sorted(t.tool_output.raw_output for t in result.tool_calls) == [5, 20]
    records = fc_llm.ledger.records
    assert [r.reason for r in records] == ["routed", "pinned"]  # the exchange stays on one model
    assert records[0].model == records[1].model


def test_query_engine_over_a_vector_index(fc_llm: AvengersLLM) -> None:
    docs = [Document(text="The Avengers-Pro router clusters queries with k-means."),
            Document(text="Paris is the capital of France.")]
    index = VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=8))
    response = index.as_query_engine(llm=fc_llm, similarity_top_k=2).query(QUESTION)
    assert QUESTION in str(response)  # the mock echoes the prompt it got
    assert "Paris is the capital of France." in str(response)  # ... which holds the context
    assert len(fc_llm.ledger) >= 1


def test_candidates_never_see_our_key(make_router) -> None:
    from llama_index.core.llms.mock import MockFunctionCallingLLMWithChatMemoryOfLastCall
    from llama_index.core.prompts import PromptTemplate

    memory = MockFunctionCallingLLMWithChatMemoryOfLastCall()
    llm = AvengersLLM(router=make_router(), models={STRONG: memory})
    first = llm.chat_with_tools(_tools()[:1], user_msg="add")
    tool_msg = ChatMessage(role="tool", content="5",
                           additional_kwargs={"tool_call_id": first.message.blocks[0].tool_call_id})
    second = llm.chat([*user("add"), first.message, tool_msg])
    assert facts(second)["reason"] == "pinned"
    assert RESPONSE_KEY in first.message.additional_kwargs
    assert len(memory.last_chat_messages) == 3
    assert all(RESPONSE_KEY not in m.additional_kwargs for m in memory.last_chat_messages)
    llm.predict(PromptTemplate("Context: {context_str}\nQ: {query_str}"),
                context_str="ctx", query_str=QUESTION)
    (prompt,) = memory.last_chat_messages
    assert QUESTION in prompt.content and RESPONSE_KEY not in prompt.additional_kwargs


def test_model_copy_with_other_models_gets_its_own_engine(fc_llm: AvengersLLM) -> None:
    assert fc_llm.engine is fc_llm.engine  # built once
    cheaper = fc_llm.model_copy(update={"alpha": 0.0})
    assert cheaper.engine is fc_llm.engine  # only a call-time setting changed
    assert facts(cheaper.chat(user()))["alpha"] == 0.0
    only_one = fc_llm.model_copy(update={"models": {CHEAP: MockFunctionCallingLLM()}})
    assert only_one.engine is not fc_llm.engine
    assert facts(only_one.chat(user()))["model"] == CHEAP


def test_allowed_models_limit_candidates_and_metadata(make_router) -> None:
    llm = AvengersLLM(router=make_router(), allowed_models=[STRONG, CHEAP], models={
        STRONG: MockFunctionCallingLLM(), CHEAP: MockFunctionCallingLLM(), PLAIN: MockLLM()})
    assert llm.metadata.is_function_calling_model  # the MockLLM is not a candidate
    for alpha in (0.0, 1.0):
        assert llm.route(QUESTION, alpha=alpha).model in (STRONG, CHEAP)
    assert llm.route(QUESTION, allowed=[PLAIN]).model == PLAIN  # a per-call override wins


def test_images_go_only_to_candidates_known_to_see(make_router) -> None:
    from llama_index.core.base.llms.types import ImageBlock, LLMMetadata, TextBlock

    class VisionMock(MockFunctionCallingLLM):
        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name="gpt-4.1", is_function_calling_model=True)

    llm = AvengersLLM(router=make_router(), models={STRONG: VisionMock(),
                                                    CHEAP: MockFunctionCallingLLM()})
    image = ChatMessage(role="user", blocks=[TextBlock(text="What is in this picture?"),
                                             ImageBlock(url="https://example.com/cat.png")])
    for alpha in (0.0, 1.0):
        assert llm.route([image], alpha=alpha).model == STRONG
    assert facts(llm.chat([image]))["model"] == STRONG
    with pytest.raises(ConfigurationError, match="vision"):
        llm.chat([image], exclude=[STRONG])
