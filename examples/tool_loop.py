"""A tool-calling agent loop through raceway: ask, run the tools the answer calls, send the results back.

Every turn is one race (``engine.complete``): whichever provider answers
first wins it, and a tool call is an answer. The loop appends the winner's
assistant turn (its ``tool_calls`` — and, for Anthropic, its signed
``thinking_blocks``) and one ``tool`` message per call, then asks again,
until an answer comes in text. Providers of both formats can win any turn:
raceway sends ``openai`` providers the messages as they are and translates
them for ``anthropic`` ones.

Run it from the repository's root. With no config it races two stand-in
models (:func:`toy_model`, ``python`` providers that call the tool), so it
needs no keys::

    python -m examples.tool_loop "What is the weather in Paris and Lyon?"

With your own config (say ``openai`` and ``anthropic`` in one virtual
model)::

    python -m examples.tool_loop -c raceway.yaml -m smart "Weather in Oslo?"
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from typing import Any

import trio

import raceway
from raceway import Chunk, RaceResult, ToolCall, ToolCallDelta

#: The tools the model may call, in the OpenAI format (raceway translates them for Anthropic).
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "The city's name"}},
                "required": ["city"],
            },
        },
    }
]
#: What get_weather knows (a real tool would ask a weather service).
WEATHER = {"Paris": ("sunny", 21), "Lyon": ("cloudy", 17), "Oslo": ("snowing", -3)}


def get_weather(city: str) -> dict[str, Any]:
    sky, celsius = WEATHER.get(city, ("unknown", None))
    return {"city": city, "sky": sky, "celsius": celsius}


def run_tool(call: ToolCall) -> str:
    """Run one tool call; its result, as the text of a ``tool`` message."""
    if call.name != "get_weather":
        return json.dumps({"error": f"no tool named {call.name!r}"})
    try:
        arguments = json.loads(call.arguments or "{}")
        return json.dumps(get_weather(**arguments))
    except (ValueError, TypeError) as exc:  # the model's arguments did not fit: tell it
        return json.dumps({"error": f"bad arguments: {exc}"})


def assistant_turn(result: RaceResult) -> dict[str, Any]:
    """The winner's answer as the assistant message of the next turn."""
    turn: dict[str, Any] = {
        "role": "assistant",
        "content": result.text or None,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in result.tool_calls
        ],
    }
    if result.thinking_blocks:  # Anthropic's signed thinking goes back unchanged
        turn["thinking_blocks"] = [b.as_dict() for b in result.thinking_blocks]
    return turn


async def agent(
    engine: raceway.Engine, question: str, model: str | None = None, *, max_turns: int = 5
) -> tuple[RaceResult, list[dict[str, Any]]]:
    """Answer ``question``, calling tools as the model asks; the last race's result and the messages."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
    for _ in range(max_turns):
        result = await engine.complete(messages, model, tools=TOOLS)
        if not result.tool_calls:
            return result, messages
        messages.append(assistant_turn(result))
        for call in result.tool_calls:
            messages.append({"role": "tool", "tool_call_id": call.id, "content": run_tool(call)})
    raise RuntimeError(f"no answer in text after {max_turns} turns")


# ------------------------------------------------------------------ a stand-in model


#: How long each stand-in model takes to its first chunk (seconds), by model name.
TOY_DELAYS = {"toy-quick": 0.05, "toy-slow": 0.15}


async def toy_model(request: raceway.Request) -> AsyncIterator[Chunk]:
    """A ``python`` provider that behaves like a tool-calling model.

    Asked a question naming cities it knows, it thinks aloud (``reasoning``)
    and calls ``get_weather`` for each (parallel calls, streamed as OpenAI
    streams them); once the results are back, it answers from them in text.
    """
    await trio.sleep(TOY_DELAYS.get(request.model, 0.1))
    messages = request.messages
    results = [json.loads(m["content"]) for m in messages if m.get("role") == "tool"]
    if results:
        for r in results:
            yield Chunk(f"{r['city']}: {r['sky']}, {r['celsius']} °C. ")
        yield Chunk(finish_reason="stop")
        return
    question = str(messages[-1].get("content") or "")
    cities = [city for city in WEATHER if city in question]
    if not cities or not request.params.get("tools"):
        yield Chunk("Ask me about the weather in " + ", ".join(WEATHER) + ".", finish_reason="stop")
        return
    yield Chunk(reasoning=f"The user asks about {' and '.join(cities)}: I will call get_weather.")
    for i, city in enumerate(cities):
        call_id = f"call_{request.model}_{i}"
        yield Chunk(tool_calls=(ToolCallDelta(i, id=call_id, name="get_weather"),))
        yield Chunk(tool_calls=(ToolCallDelta(i, arguments=json.dumps({"city": city})),))
    yield Chunk(finish_reason="tool_calls")


#: Two stand-in models racing; ``first_wins`` hands each turn to the quicker one.
CONFIG = """
timeout_ms: 5000
monitor: {socket: "off"}
performance_file: "off"
providers:
  quick: {type: python, callable: "examples.tool_loop:toy_model", model: toy-quick}
  slow:  {type: python, callable: "examples.tool_loop:toy_model", model: toy-slow}
"""


async def main(question: str, config_path: str | None = None, model: str | None = None) -> None:
    config = raceway.load_config(config_path) if config_path else raceway.loads_config(CONFIG)
    async with raceway.open_engine(config) as engine:
        result, messages = await agent(engine, question, model)
    for m in messages:
        for c in m.get("tool_calls") or ():
            print(f"→ {c['function']['name']}({c['function']['arguments']})")
    print(result.text.strip())
    turns = 1 + sum(m["role"] == "assistant" for m in messages)
    print(f"({turns} turn{'s' * (turns != 1)}; the last won by {result.provider}/{result.model})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="a tool-calling loop through raceway")
    parser.add_argument("-c", "--config", help="a raceway config (default: two stand-in models)")
    parser.add_argument("-m", "--model", help="the virtual model")
    parser.add_argument("question", nargs="?", default="What is the weather in Paris and Lyon?")
    args = parser.parse_args()
    trio.run(main, args.question, args.config, args.model)
