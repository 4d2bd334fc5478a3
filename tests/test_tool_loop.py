"""The tool loop of examples/tool_loop.py and README.md, run: on stand-in models, both wire formats over HTTP, ``raceway run``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import yaml
from fake_upstream import Behaviour, Exchange, FakeUpstream, serve_fake_upstream

import raceway

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # examples/ is not a package of the distribution
    sys.path.insert(0, str(ROOT))

from examples import tool_loop  # noqa: E402

BOUND = 10  # seconds, for the tests on real time
README = ROOT / "README.md"


def readme_agent() -> Callable[..., Any]:
    """The README's tool loop (``<!-- tool-loop -->``), its ``agent`` function, as written there."""
    found = re.search(r"<!-- tool-loop -->\n```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert found, "the README's tool loop is missing"
    code = "\n".join(line for line in found.group(1).splitlines() if not line.startswith("trio.run("))
    namespace: dict[str, Any] = {}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace["agent"]  # type: ignore[no-any-return]


async def test_the_readme_loop_on_the_stand_in_models(autojump_clock: trio.abc.Clock) -> None:
    async with raceway.open_engine(raceway.loads_config(tool_loop.CONFIG)) as engine:
        answer = await readme_agent()(engine, "What is the weather in Paris?")
    assert answer == "Paris: sunny, 21 °C. "


async def test_the_loop_on_the_stand_in_models(autojump_clock: trio.abc.Clock) -> None:
    async with raceway.open_engine(raceway.loads_config(tool_loop.CONFIG)) as engine:
        t0 = trio.current_time()
        result, messages = await tool_loop.agent(engine, "Weather in Paris and Oslo?")
        # two turns, each won by the quick model at 50 ms (the slow one is cancelled)
        assert trio.current_time() - t0 == pytest.approx(0.100)
    assert result.text == "Paris: sunny, 21 °C. Oslo: snowing, -3 °C. "
    assert (result.provider, result.finish_reason) == ("quick", "stop")
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    calls = messages[1]["tool_calls"]
    assert [(c["id"], c["function"]["arguments"]) for c in calls] == [
        ("call_toy-quick_0", '{"city": "Paris"}'),
        ("call_toy-quick_1", '{"city": "Oslo"}'),
    ]
    assert [m["tool_call_id"] for m in messages[2:]] == ["call_toy-quick_0", "call_toy-quick_1"]
    assert json.loads(messages[3]["content"]) == {"city": "Oslo", "sky": "snowing", "celsius": -3}


async def test_the_example_prints_the_calls_and_the_answer(
    autojump_clock: trio.abc.Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    await tool_loop.main("What is the weather in Lyon?")
    assert capsys.readouterr().out.splitlines() == [
        '→ get_weather({"city": "Lyon"})',
        "Lyon: cloudy, 17 °C.",
        "(2 turns; the last won by quick/toy-quick)",
    ]


def test_a_tool_the_model_misuses_gets_an_error_result_not_a_crash() -> None:
    bad = tool_loop.run_tool(raceway.ToolCall("c1", "get_weather", '{"town": "Paris"}'))
    assert "bad arguments" in json.loads(bad)["error"]
    assert "no tool named" in tool_loop.run_tool(raceway.ToolCall("c2", "launch", "{}"))


# ------------------------------------------------------------------ both wire formats, over HTTP


def weather_model(exchange: Exchange) -> Behaviour:
    """The fake upstream as a tool-calling model: calls get_weather (thinking first) until the result is back."""
    last = exchange.body["messages"][-1]
    content = last.get("content")
    if last["role"] == "tool" or (isinstance(content, list) and content[0].get("type") == "tool_result"):
        return Behaviour(text="Sunny in Paris, 21 °C.")
    call = {"name": "get_weather", "arguments": '{"city": "Paris"}', "id": f"call_{exchange.api}"}
    return Behaviour(text="", reasoning="I should look it up.", tool_calls=(call,))


@pytest.fixture
async def up() -> AsyncIterator[FakeUpstream]:
    async with serve_fake_upstream() as upstream:
        yield upstream


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("loop", ["example", "readme"])
async def test_the_loop_against_each_wire_format(up: FakeUpstream, kind: str, loop: str) -> None:
    up.script("model", weather_model)
    base = up.openai_url("model") if kind == "openai" else up.anthropic_url("model")
    config = raceway.loads_config(
        yaml.safe_dump(
            {
                "monitor": {"socket": "off"},
                "performance_file": "off",
                "providers": {"model": {"type": kind, "base_url": base, "api_key_env": None, "model": "fake"}},
            }
        )
    )
    with trio.fail_after(BOUND):
        async with raceway.open_engine(config) as engine:
            if loop == "example":
                result, messages = await tool_loop.agent(engine, "Weather in Paris?")
                assert result.text == "Sunny in Paris, 21 °C."
            else:
                assert await readme_agent()(engine, "Weather in Paris?") == "Sunny in Paris, 21 °C."
    first, second = up.requests("model")
    assert first.body["tools"][0]["function" if kind == "openai" else "name"]
    sent = second.body["messages"]
    if kind == "openai":
        assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
        assert "thinking_blocks" not in sent[1], "openai providers leave raceway's carrier out"
        if loop == "example":
            assert sent == messages
        return
    thinking, tool_use = sent[1]["content"]
    assert thinking["type"] == "thinking" and thinking["signature"] == "sig-fake-0123"
    assert tool_use["input"] == {"city": "Paris"} and tool_use["id"] == "call_anthropic"
    assert sent[2]["content"][0]["tool_use_id"] == "call_anthropic"


# ------------------------------------------------------------------ raceway run


def raceway_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # `raceway run` has no --tools: the virtual model's references pass them (their `config`).
    data = yaml.safe_load(tool_loop.CONFIG)
    refs = [{"name": name, "config": {"tools": tool_loop.TOOLS}} for name in data["providers"]]
    data["virtual_models"] = {"weather": {"providers": refs}}
    config = tmp_path / "tools.yaml"
    config.write_text(yaml.safe_dump(data))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RACEWAY_CONFIG": ""}
    return subprocess.run(
        [sys.executable, "-m", "raceway", "run", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )


def test_raceway_run_shows_the_tool_calls(tmp_path: Path) -> None:
    proc = raceway_run(tmp_path, "Weather in Paris and Lyon?")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ['→ get_weather({"city": "Paris"})', '→ get_weather({"city": "Lyon"})']
    assert "quick/toy-quick won" in proc.stderr


def test_raceway_run_shows_text_then_no_calls(tmp_path: Path) -> None:
    proc = raceway_run(tmp_path, "Hello?")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Ask me about the weather in Paris, Lyon, Oslo.\n"


def test_raceway_run_json_has_the_tool_calls_and_reasoning(tmp_path: Path) -> None:
    proc = raceway_run(tmp_path, "--json", "Weather in Oslo?")
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    assert data["tool_calls"] == [{"id": "call_toy-quick_0", "name": "get_weather", "arguments": '{"city": "Oslo"}'}]
    assert data["reasoning"] == "The user asks about Oslo: I will call get_weather."
    assert (data["text"], data["finish_reason"]) == ("", "tool_calls")
