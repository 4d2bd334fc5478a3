"""What racing costs over HTTP: added latency, and how fast a loser's connection goes.

Run from the repository root::

    python -m benchmarks.bench_http [--requests 300]

It starts the fake upstream (``tests/fake_upstream.py``) in a subprocess on
127.0.0.1, so server and client do not share an event loop, and measures,
request by request and interleaved so drift hits every variant alike:

* **direct** — one ``httpx`` streaming POST to the ``instant`` upstream (no
  artificial delay), read with a minimal SSE loop: time to the first content
  token, and to ``[DONE]``;
* **raced, 1 provider** — the same request through ``engine.stream()``: the
  engine, strategy and race driver with nothing to race against;
* **raced, 2 providers** — ``instant`` against ``fast_headers`` (headers at
  once, first token after 800 ms), ``first_wins``, grace 0: the loser is
  cancelled at the decision;
* **20 in flight** — 20 requests at once, then the next 20: direct httpx
  streams (each event's JSON parsed, as a client does) against raced ones with 1 provider (the same upstream load) and
  races of 2 identical instant upstreams (``first_wins``, grace 0: twice the
  upstream requests), each request's total time (to the end of the winner's
  stream);
* **tool call** — the same two, direct and raced with 1 provider, against
  the ``tool`` upstream, which answers with a tool call (``tools`` sent):
  time to the first ``delta.tool_calls``, so the cost of parsing and
  assembling tool calls shows against httpx reading the same stream.
* **h2c** — the direct and 1-provider rows again, and the fairness races,
  over HTTP/2 with prior knowledge (``httpx.AsyncHTTPTransport(http1=False,
  http2=True)`` given to the engine as ``http_transport``; hypercorn serves
  h2c on its plain socket): one connection carries every race, so no attempt
  rides a warmer connection than another. raceway does not use HTTP/2 (see
  ``tests/test_http2.py``: httpcore 1.0 never resets a cancelled stream, so a
  loser streams to its end and its bytes are never acknowledged); the rows
  show what it would change, and how many losers the upstream saw leave.

Times are caller-side, from before the call to the first text chunk (TTFT)
and to the end of the stream (total). "Added" is raced minus direct at the
same percentile. **Cancellation latency** is, for each 2-provider race, the
time from the decision (the ``race_decided`` event, which cancels the loser)
to the moment the upstream's ASGI app saw ``http.disconnect`` for the loser's
request — both on ``time.monotonic()``, which the two processes share.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import trio
import yaml

import raceway
from benchmarks import _common

ROOT = Path(__file__).resolve().parent.parent
FAKE_UPSTREAM = ROOT / "tests" / "fake_upstream.py"
MESSAGES = [{"role": "user", "content": "Say hello."}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
#: Requests per variant; a few hundred give a stable median and a rough p99.
DEFAULT_REQUESTS = 300
#: Warm-up requests per variant, not counted (connection setup, imports, caches).
WARMUP = 20
#: Three identical upstreams (the default profile, instant) for the fairness figures.
FAIR = ("fair_a", "fair_b", "fair_c")


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def machine() -> str:
    m = _common.machine()
    return (
        f"{m['platform']}, {m['cpu']}, {m['cores']} CPUs, "
        f"Python {m['python']}, trio {trio.__version__}, httpx {httpx.__version__}"
    )


async def start_upstream(nursery: trio.Nursery) -> tuple[str, trio.Process]:
    """The fake upstream in a subprocess on an ephemeral port; returns its URL."""
    command = [sys.executable, str(FAKE_UPSTREAM), "--port", "0", "--profile", "instant"]
    process: trio.Process = await nursery.start(
        functools.partial(
            trio.run_process,
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
    )
    assert process.stderr is not None
    stderr = process.stderr
    buffer = b""
    with trio.fail_after(20):
        while b"\n" not in buffer:
            data = await stderr.receive_some()
            if not data:
                raise RuntimeError("the fake upstream exited before it started")
            buffer += data
    match = re.search(rb"fake upstream on (http://\S+)", buffer)
    if match is None:
        raise RuntimeError(f"unexpected output from the fake upstream: {buffer!r}")

    async def drain() -> None:  # so a chatty server never blocks on a full pipe
        while await stderr.receive_some():
            pass

    nursery.start_soon(drain)
    return match.group(1).decode(), process


def make_config(url: str) -> raceway.Config:
    def openai(upstream: str) -> dict[str, Any]:
        return {"type": "openai", "base_url": f"{url}/{upstream}/v1", "model": "fake-gpt"}

    def first_wins(*names: str) -> dict[str, Any]:
        return {"strategy": "first_wins", "providers": [{"name": n} for n in names]}

    data = {
        "timeout_ms": 5000,
        "grace_period_ms": 0,
        "providers": {
            "instant": openai("instant"),
            "tool": openai("tool"),
            "instant_too": openai("instant_too"),  # not a named profile: the default, instant
            "prompt": openai("prompt"),
            "fast_headers": openai("fast_headers"),
            **{name: openai(name) for name in FAIR},
        },
        "virtual_models": {
            "solo": first_wins("instant"),
            "tool": first_wins("tool"),
            "pair": first_wins("instant", "instant_too"),
            "cancel": first_wins("prompt", "fast_headers"),
            "fair": first_wins(*FAIR),
        },
    }
    return raceway.loads_config(yaml.safe_dump(data))


async def direct(
    client: httpx.AsyncClient, url: str, upstream: str = "instant", *, parse_all: bool = False
) -> tuple[float, float]:
    body: dict[str, Any] = {
        "model": "fake-gpt",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if upstream == "tool":
        body["tools"] = TOOLS
    start = time.perf_counter()
    first = None
    async with client.stream("POST", f"{url}/{upstream}/v1/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            # Read on past [DONE] to the end of the body, as the provider does,
            # so the connection goes back to the pool for the next request.
            if (first is None or parse_all) and data != "[DONE]":
                choices = json.loads(data).get("choices") or [{}]
                delta = choices[0].get("delta") or {}
                if first is None and (delta.get("content") or delta.get("tool_calls")):
                    first = time.perf_counter()
    end = time.perf_counter()
    assert first is not None
    return first - start, end - start


async def naive_race(client: httpx.AsyncClient, url: str, tag: str) -> str:
    """The naive racer for comparison: one httpx stream per upstream in a nursery, the first token wins."""
    winner: list[str] = []
    body = {"model": "fake-gpt", "messages": MESSAGES, "stream": True, "user": tag}

    async def attempt(name: str, nursery: trio.Nursery) -> None:
        async with client.stream("POST", f"{url}/{name}/v1/chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: ") and '"content"' in line and not winner:
                    winner.append(name)
                    nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        for name in FAIR:
            nursery.start_soon(attempt, name, nursery)
    return winner[0]


def h2c_transport() -> httpx.AsyncHTTPTransport:
    """HTTP/2 with prior knowledge (h2c) to http:// origins."""
    return httpx.AsyncHTTPTransport(http1=False, http2=True)


def fairness(label: str, winners: list[str], arrivals: dict[str, dict[str, float]]) -> str:
    """How fair a series of races of identical upstreams was: arrival spread, repeat wins."""
    spreads = [max(a.values()) - min(a.values()) for a in arrivals.values() if len(a) == len(FAIR)]
    again = sum(1 for prev, cur in itertools.pairwise(winners) if prev == cur)
    shares = " ".join(f"{n} {winners.count(n) / max(1, len(winners)):.0%}" for n in FAIR)
    return (
        f"  {label:<22} arrival spread median {statistics.median(spreads) * 1000:6.3f} ms, "
        f"p90 {percentile(spreads, 0.9) * 1000:6.3f} ms; the previous winner wins again "
        f"{again / max(1, len(winners) - 1):.0%} (chance: {1 / len(FAIR):.0%}); wins {shares}"
    )


async def raced(engine: raceway.Engine, model: str, **params: Any) -> tuple[float, float]:
    start = time.perf_counter()
    first = None
    async with engine.stream(MESSAGES, model=model, **params) as race:
        async for chunk in race:
            if first is None and (chunk.text or chunk.tool_calls):
                first = time.perf_counter()
    end = time.perf_counter()
    assert first is not None
    return first - start, end - start


#: Requests at once in the concurrency rows.
IN_FLIGHT = 20


async def in_flight(make: Any) -> list[float]:
    """Each request's total time, ``IN_FLIGHT`` requests made at once."""
    totals: list[float] = []

    async def one() -> None:
        _, total = await make()
        totals.append(total)

    async with trio.open_nursery() as nursery:
        for _ in range(IN_FLIGHT):
            nursery.start_soon(one)
    return totals


def row(label: str, values: list[float], base: list[float] | None = None) -> str:
    med, p99 = statistics.median(values) * 1000, percentile(values, 0.99) * 1000
    text = f"  {label:<22} median {med:7.3f} ms   p99 {p99:7.3f} ms"
    if base is not None:
        bmed, bp99 = statistics.median(base) * 1000, percentile(base, 0.99) * 1000
        text += f"   added: median {med - bmed:+7.3f} ms, p99 {p99 - bp99:+7.3f} ms"
    return text


async def main(requests: int) -> None:
    print(f"machine: {machine()}")
    samples: dict[str, list[tuple[float, float]]] = {
        "direct": [], "solo": [], "pair": [], "direct_tool": [], "solo_tool": [],
        "direct_h2c": [], "solo_h2c": [],
    }  # fmt: skip
    decided: dict[str, float] = {}  # race_id -> when the race was decided (time.monotonic)
    cancel_races: dict[str, str] = {}  # the tag sent upstream as `user` -> race_id

    def on_event(event: Any) -> None:
        if isinstance(event, raceway.RaceDecided):
            decided[event.race_id] = time.monotonic()

    async with trio.open_nursery() as nursery:
        url, process = await start_upstream(nursery)
        print(f"fake upstream: {url} (subprocess {process.pid}); {requests} requests per variant")
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(None)) as client,
            httpx.AsyncClient(timeout=httpx.Timeout(None), transport=h2c_transport()) as client_h2c,
        ):
            async with (
                raceway.open_engine(make_config(url)) as engine,
                raceway.open_engine(make_config(url), http_transport=h2c_transport()) as engine_h2c,
            ):
                engine.subscribe(on_event)
                for i in range(WARMUP + requests):
                    results = {
                        "direct": await direct(client, url),
                        "solo": await raced(engine, "solo"),
                        "pair": await raced(engine, "pair"),
                        "direct_tool": await direct(client, url, "tool"),
                        "solo_tool": await raced(engine, "tool", tools=TOOLS),
                        "direct_h2c": await direct(client_h2c, url),
                        "solo_h2c": await raced(engine_h2c, "solo"),
                    }
                    # The loser has had its headers (sent at once) for a while when
                    # the winner's token comes (20 ms): it is stopped mid-response.
                    tag = f"race-{i}"
                    async with engine.stream(MESSAGES, model="cancel", user=tag) as race:
                        async for _ in race:
                            pass
                    if i >= WARMUP:
                        cancel_races[tag] = race.race_id
                        for key, value in results.items():
                            samples[key].append(value)
                # 20 in flight: direct and raced rounds, interleaved.
                crowd: dict[str, list[float]] = {"direct": [], "solo": [], "pair": []}
                makers = {
                    "direct": lambda: direct(client, url, parse_all=True),
                    "solo": lambda: raced(engine, "solo"),
                    "pair": lambda: raced(engine, "pair"),
                }
                for i in range(max(5, requests // IN_FLIGHT) + 2):
                    for key, make in makers.items():
                        totals = await in_flight(make)
                        if i >= 2:  # warm-up rounds: the pools fill
                            crowd[key] += totals
                # Fairness: identical upstreams, one race at a time, raced and naive, interleaved.
                raced_winners: list[str] = []
                naive_winners: list[str] = []
                h2c_winners: list[str] = []
                h2c_failed = 0  # races lost whole to a GOAWAY (hypercorn's: every 1000 requests)
                for i in range(WARMUP + requests):
                    result = await engine.complete(MESSAGES, model="fair", user=f"raced-{i}")
                    naive = await naive_race(client, url, f"naive-{i}")
                    try:
                        over_h2c = await engine_h2c.complete(MESSAGES, model="fair", user=f"h2c-{i}")
                        h2c_winner = over_h2c.provider
                    except raceway.AllProvidersFailedError:
                        h2c_winner = ""  # httpcore fails a request sent as the GOAWAY came (#45)
                        h2c_failed += 1
                    if i >= WARMUP:
                        raced_winners.append(result.provider)
                        naive_winners.append(naive)
                        h2c_winners.append(h2c_winner)
            with trio.fail_after(10):
                response = await client.get(
                    f"{url}/_fake/exchanges", params={"name": "fast_headers"}
                )
            losers = {e["user"]: e for e in response.json()}
            arrivals: dict[str, dict[str, dict[str, float]]] = {"raced": {}, "naive": {}, "h2c": {}}
            # Per variant: the losers' requests, and how many the upstream saw leave before their end.
            fair_losers: dict[str, list[int]] = {"raced": [0, 0], "naive": [0, 0], "h2c": [0, 0]}
            fair_winners = {"raced": raced_winners, "naive": naive_winners, "h2c": h2c_winners}
            for name in FAIR:
                with trio.fail_after(10):
                    seen = (await client.get(f"{url}/_fake/exchanges", params={"name": name})).json()
                for e in seen:
                    kind, _, n = str(e["user"]).partition("-")
                    if kind in arrivals and n.isdigit() and int(n) >= WARMUP and e["received"] is not None:
                        arrivals[kind].setdefault(n, {})[name] = e["received"]
                        if fair_winners[kind][int(n) - WARMUP] != name:
                            fair_losers[kind][0] += 1
                            fair_losers[kind][1] += e["disconnected"] is not None
        process.terminate()

    direct_ttft = [t for t, _ in samples["direct"]]
    direct_total = [t for _, t in samples["direct"]]
    print("time to first token (caller-side):")
    print(row("direct httpx", direct_ttft))
    print(row("raced, 1 provider", [t for t, _ in samples["solo"]], direct_ttft))
    print(row("raced, 2 providers", [t for t, _ in samples["pair"]], direct_ttft))
    h2c_ttft = [t for t, _ in samples["direct_h2c"]]
    print(row("direct httpx, h2c", h2c_ttft, direct_ttft))
    print(row("raced, 1 provider, h2c", [t for t, _ in samples["solo_h2c"]], h2c_ttft))
    print("total (to the end of the stream):")
    print(row("direct httpx", direct_total))
    print(row("raced, 1 provider", [t for _, t in samples["solo"]], direct_total))
    print(row("raced, 2 providers", [t for _, t in samples["pair"]], direct_total))
    tool_ttft = [t for t, _ in samples["direct_tool"]]
    print("tool call: time to the first tool-call delta (caller-side):")
    print(row("direct httpx", tool_ttft))
    print(row("raced, 1 provider", [t for t, _ in samples["solo_tool"]], tool_ttft))

    gaps = []
    for tag, race_id in cancel_races.items():
        loser = losers.get(tag)
        if loser is not None and loser["disconnected"] is not None:
            gaps.append(loser["disconnected"] - decided[race_id])
    print(f"total (to the end of the stream), {IN_FLIGHT} requests in flight:")
    print(row("direct httpx, parsed", crowd["direct"]))
    print(row("raced, 1 provider", crowd["solo"], crowd["direct"]))
    print(row("raced, 2 providers", crowd["pair"], crowd["direct"]))
    solo, pair = (statistics.median(crowd[k]) / statistics.median(crowd["direct"]) for k in ("solo", "pair"))
    print(f"  total p50 over direct's: raced with 1 provider {solo:.2f}, with 2 providers {pair:.2f}")
    print("fairness: three identical upstreams, first_wins, one race at a time:")
    print(fairness("raceway", raced_winners, arrivals["raced"]))
    print(fairness("naive trio + httpx", naive_winners, arrivals["naive"]))
    print(fairness("raceway over h2c", h2c_winners, arrivals["h2c"]))
    print(f"  races over h2c that failed whole (every attempt at once, a GOAWAY): {h2c_failed}")
    print(
        "  losers the upstream saw leave before their end: "
        + ", ".join(f"{k} {seen}/{total}" for k, (total, seen) in fair_losers.items())
    )
    print("cancellation latency (decision -> upstream sees the loser disconnect):")
    print(row("loser after headers", gaps))
    missing = len(cancel_races) - len(gaps)
    print(
        f"  max {max(gaps) * 1000:.3f} ms over {len(gaps)} races; {missing} losers not seen to disconnect"
    )


def cli() -> None:
    parser = argparse.ArgumentParser(description="raceway HTTP overhead and cancellation benchmark")
    parser.add_argument(
        "--requests", type=int, default=DEFAULT_REQUESTS, help="requests per variant"
    )
    args = parser.parse_args()
    trio.run(main, args.requests)


if __name__ == "__main__":
    cli()
