"""Call each provider whose API key is set: one chat, one stream, one tool call, with cost.

Run:  OPENAI_API_KEY=... ANTHROPIC_API_KEY=... GEMINI_API_KEY=... python examples/providers_hello.py
Providers without a key are skipped. Override models with e.g. ``--openai openai:gpt-4.1-nano``.
"""

from __future__ import annotations

import argparse
import os

from shared_core.messages import ChatRequest, Message, StreamEnd, TextDelta, ToolSpec
from shared_core.providers import get_provider

DEFAULTS = {
    "openai": ("openai:gpt-4.1-nano", ("OPENAI_API_KEY",)),
    "anthropic": ("anthropic:claude-haiku-4-5", ("ANTHROPIC_API_KEY",)),
    "google": ("google:gemini-2.5-flash-lite", ("GOOGLE_API_KEY", "GEMINI_API_KEY")),
}
WEATHER = ToolSpec("get_weather", "Current weather in a city.",
                   {"type": "object", "properties": {"city": {"type": "string"}},
                    "required": ["city"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name, (spec, _) in DEFAULTS.items():
        parser.add_argument(f"--{name}", default=spec, help=f"spec to call (default {spec})")
    args = parser.parse_args()
    for name, (_, env) in DEFAULTS.items():
        spec = getattr(args, name)
        if not any(os.environ.get(v) for v in env):
            print(f"{name}: skipped ({' or '.join(env)} not set)")
            continue
        p = get_provider(spec, timeout=60)
        r = p.chat(ChatRequest(messages=(Message.user("Say hello in five words."),),
                               max_tokens=64))
        print(f"{spec}: {r.text!r}  usage={r.usage.to_dict()}  cost=${r.cost_usd}")
        print(f"{spec} streamed: ", end="")
        for event in p.stream(ChatRequest(messages=(Message.user("Count to five."),))):
            if isinstance(event, TextDelta):
                print(event.text, end="", flush=True)
            elif isinstance(event, StreamEnd):
                print(f"\n  usage={event.response.usage.to_dict()} "
                      f"cost=${event.response.cost_usd}")
        t = p.chat(ChatRequest(messages=(Message.user("Weather in Paris?"),), tools=(WEATHER,),
                               tool_choice="required"))
        print(f"{spec} tool calls: {[(c.name, c.arguments) for c in t.tool_calls]}")


if __name__ == "__main__":
    main()
