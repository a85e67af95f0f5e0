"""A stub server that answers like a cooperative model, for LangChain's standard integration
tests: when nothing is scripted, it reads the request and

* answers a tool result with text;
* otherwise, when tools are offered, calls the forced tool (or the first one) with arguments
  made from the tool's JSON schema (integers are 3; strings are the quoted part of the last user
  message, or that message);
* when a JSON schema is asked for, answers JSON made from the schema the same way;
* else gives the stub's default reply.

Usage is the stub's default (input = characters of the request's text, output = 7), so costs can
be checked against what the stub received.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from tests.stub_llm_server import (
    DEFAULT_OUTPUT_TOKENS,
    Fail,
    RecordedRequest,
    Reply,
    StubLLMServer,
    Tokens,
    ToolCallSpec,
    default_input_tokens,
    request_text,
)


def _get(d: dict[str, Any], *names: str) -> Any:
    for n in names:
        if n in d:
            return d[n]
    return None


def _quoted(text: str) -> str:
    m = re.search(r"'([^']+)'", text) or re.search(r'"([^"]+)"', text)
    return m.group(1) if m else text


def synth(schema: dict[str, Any], text: str, defs: dict[str, Any] | None = None) -> Any:
    """A value that follows ``schema``."""
    if defs is None:
        defs = {**schema.get("$defs", {}), **schema.get("definitions", {})}
    if "$ref" in schema:
        return synth(defs[schema["$ref"].rsplit("/", 1)[-1]], text, defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return synth(options[0], text, defs)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    kind = str(kind).lower()
    if kind == "object":
        return {k: synth(v, text, defs) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [synth(schema.get("items") or {}, text, defs)]
    if kind == "integer":
        return 3
    if kind == "number":
        return 3.0
    if kind == "boolean":
        return True
    return _quoted(text)


def _last_user(provider: str, body: dict[str, Any]) -> tuple[str, bool]:
    """The last user text, and whether the conversation ends with a tool result."""
    if provider == "openai":
        msgs = body.get("messages", [])
        ends_with_tool = bool(msgs) and msgs[-1].get("role") == "tool"
        users = [m for m in msgs if m.get("role") == "user"]
    elif provider == "anthropic":
        msgs = body.get("messages", [])
        last = msgs[-1] if msgs else {}
        content = last.get("content")
        ends_with_tool = isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") == "tool_result" for p in content)
        users = [m for m in msgs if m.get("role") == "user"]
    else:
        msgs = body.get("contents", [])
        last = msgs[-1] if msgs else {}
        ends_with_tool = any(
            "functionResponse" in p or "function_response" in p for p in last.get("parts", []))
        users = [m for m in msgs if m.get("role") == "user"]
    text = ""
    if users:
        text = "".join(request_text(provider, {"messages": [users[-1]], "contents": [users[-1]]}))
    return text, ends_with_tool


def _tools(provider: str, body: dict[str, Any]) -> tuple[list[tuple[str, dict[str, Any]]],
                                                         str | None]:
    """The offered tools (name, schema) and the forced tool's name, if any."""
    if provider == "openai":
        tools = [(t["function"]["name"], t["function"].get("parameters") or {})
                 for t in body.get("tools") or []]
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            return tools, choice["function"]["name"]
        return tools, (tools[0][0] if choice == "required" and tools else None)
    if provider == "anthropic":
        tools = [(t["name"], t.get("input_schema") or {}) for t in body.get("tools") or []]
        choice = body.get("tool_choice") or {}
        if choice.get("type") == "tool":
            return tools, choice["name"]
        return tools, (tools[0][0] if choice.get("type") == "any" and tools else None)
    tools = []
    for t in body.get("tools") or []:
        for fd in _get(t, "functionDeclarations", "function_declarations") or []:
            schema = _get(fd, "parametersJsonSchema", "parameters_json_schema", "parameters")
            tools.append((fd["name"], schema or {}))
    config = _get(body, "toolConfig", "tool_config") or {}
    fcc = _get(config, "functionCallingConfig", "function_calling_config") or {}
    allowed = _get(fcc, "allowedFunctionNames", "allowed_function_names") or []
    forced = allowed[0] if allowed else (tools[0][0] if fcc.get("mode") == "ANY" and tools
                                         else None)
    return tools, forced


def _response_schema(provider: str, body: dict[str, Any]) -> dict[str, Any] | None:
    if provider == "openai":
        fmt = body.get("response_format") or {}
        return (fmt.get("json_schema") or {}).get("schema") if fmt else None
    if provider == "anthropic":
        return ((body.get("output_config") or {}).get("format") or {}).get("schema")
    config = _get(body, "generationConfig", "generation_config") or {}
    return _get(config, "responseJsonSchema", "response_json_schema", "responseSchema")


def smart_reply(req: RecordedRequest) -> Reply:
    """The cooperative reply to one request (see the module docstring)."""
    body = req.json
    usage = Tokens(input=default_input_tokens(req.provider, body), output=DEFAULT_OUTPUT_TOKENS)
    text, ends_with_tool = _last_user(req.provider, body)
    if ends_with_tool:
        return Reply(text="The tool says: done.", usage=usage)
    tools, forced = _tools(req.provider, body)
    if tools and not (req.provider == "openai" and body.get("tool_choice") == "none"):
        name = forced or tools[0][0]
        schema = dict(tools)[name]
        return Reply(tool_calls=[ToolCallSpec(name, synth(schema, text))], usage=usage)
    schema = _response_schema(req.provider, body)
    if schema:
        return Reply(text=json.dumps(synth(schema, text), ensure_ascii=False), usage=usage)
    return Reply(text=f"stub reply to: {text[:40]}", usage=usage)


class ResponderStub(StubLLMServer):
    """:class:`StubLLMServer` whose replies, when nothing is scripted, come from
    :func:`smart_reply`."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def _record(self, req: RecordedRequest) -> None:
        self._local.request = req  # the same handler thread asks _next right after
        super()._record(req)

    def _next(self, provider: str, model: str) -> Reply | Fail | None:
        item = super()._next(provider, model)
        return item if item is not None else smart_reply(self._local.request)
