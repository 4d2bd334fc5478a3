"""The gateway over raw HTTP: keys, limits, malformed requests, headers, cancellation, probes, metrics."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import httpx
import pytest
import serve_support
import trio
from fake_upstream import serve_fake_upstream
from prometheus_client.parser import text_string_to_metric_families
from serve_support import (
    CONFIG,
    MESSAGES,
    anthropic_client,
    client,
    in_asyncio,
    openai_client,
    serving,
    sse_events,
)

import raceway
from raceway._gateway import open_gateway, serve_gateway
from raceway._gateway._server import is_loopback

CHAT = {"model": "fast", "messages": MESSAGES}
ANTHROPIC = {"model": "fast", "max_tokens": 10, "messages": MESSAGES}


# ------------------------------------------------------------------ gateway keys


def keyed(limit: int | None = None) -> str:
    extra = f", max_body_bytes: {limit}" if limit else ""
    return CONFIG + f"serve: {{api_keys_env: RW_GATEWAY_KEYS{extra}}}\n"


async def test_gateway_keys(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("RW_GATEWAY_KEYS", " key-one-123 , key-two-456 ")
    async with serving(keyed()) as gw, client(gw) as http:
        missing = await http.post("/v1/chat/completions", json=CHAT)
        wrong = await http.post("/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer key-three"})
        wrong_anthropic = await http.post("/v1/messages", json=ANTHROPIC, headers={"x-api-key": "key-three"})
        models = await http.get("/v1/models")
        bearer = await http.post("/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer key-two-456"})
        api_key = await http.post("/v1/messages", json=ANTHROPIC, headers={"x-api-key": "key-one-123"})
        probes = [await http.get("/healthz"), await http.get("/metrics")]

        async def sdks() -> Any:
            await openai_client(gw, "key-one-123").chat.completions.create(**CHAT)
            await anthropic_client(gw, "key-two-456").messages.create(**ANTHROPIC)
            import openai

            with pytest.raises(openai.AuthenticationError):
                await openai_client(gw, "nope").chat.completions.create(**CHAT)

        await in_asyncio(sdks)
        metrics = probes[1].text
    assert missing.status_code == 401 and "Missing gateway key" in missing.json()["error"]["message"]
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "Invalid gateway key."
    assert wrong_anthropic.status_code == 401
    assert wrong_anthropic.json() == {"type": "error", "error": {"type": "authentication_error", "message": "Invalid gateway key."}}
    assert models.status_code == 401
    assert bearer.status_code == 200 and api_key.status_code == 200
    assert [p.status_code for p in probes] == [200, 200]  # probes stay open
    everything = caplog.text + metrics + missing.text + wrong.text
    assert "key-one" not in everything and "key-two" not in everything and "key-three" not in everything


async def test_a_named_key_variable_that_is_unset_stops_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RW_GATEWAY_KEYS", raising=False)
    with pytest.raises(raceway.ConfigError, match=r"serve\.api_keys_env.*RW_GATEWAY_KEYS"):
        async with serving(keyed()):
            pass


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.2", "example.com", ""]))


# ------------------------------------------------------------------ malformed requests


async def test_body_limit_is_413_in_each_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RW_GATEWAY_KEYS", "k")
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 2000}]}
    async with serving(keyed(limit=1000)) as gw, client(gw, headers={"x-api-key": "k"}) as http:
        openai_style = await http.post("/v1/chat/completions", json=big)
        anthropic_style = await http.post("/v1/messages", json={**big, "max_tokens": 5})
        small = await http.post("/v1/chat/completions", json=CHAT)
    assert openai_style.status_code == 413 and openai_style.json()["error"]["code"] == "request_too_large"
    assert "1000 bytes" in openai_style.json()["error"]["message"]
    assert anthropic_style.status_code == 413
    assert anthropic_style.json()["error"]["type"] == "request_too_large"
    assert small.status_code == 200


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{not json", ["not valid JSON"]),
        (b"", ["empty"]),
        (b"[1, 2]", ["JSON object"]),
        (b'{"model": "fast"}', ["Missing required parameter: 'messages'"]),
        (b'{"model": "fast", "messages": "hello"}', ["'messages'", "array"]),
        (b'{"model": 5, "messages": []}', ["'model'", "string"]),
        (b'{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}', ["'stream'", "boolean"]),
    ],
)
async def test_malformed_bodies_are_400(content: bytes, words: list[str]) -> None:
    async with serving() as gw, client(gw) as http:
        response = await http.post("/v1/chat/completions", content=content)
        anthropic_response = await http.post("/v1/messages", content=content)
    assert response.status_code == 400 and anthropic_response.status_code == 400
    assert anthropic_response.json()["error"]["type"] == "invalid_request_error"
    for word in words[:1]:
        assert word in response.json()["error"]["message"]
    for word in words:
        assert word in response.json()["error"]["message"]


async def test_unknown_routes_and_methods() -> None:
    async with serving() as gw, client(gw) as http:
        route = await http.post("/v1/embeddings", json={})
        method = await http.get("/v1/chat/completions")
        model = await http.get("/v1/models/nope")
    assert route.status_code == 404 and "/v1/chat/completions" in route.json()["error"]["message"]
    assert method.status_code == 405 and method.headers["allow"] == "POST"
    assert model.status_code == 404 and "fast" in model.json()["error"]["message"]


async def test_missing_model_means_the_default_virtual_model() -> None:
    async with serving() as gw, client(gw) as http:
        response = await http.post("/v1/chat/completions", json={"messages": MESSAGES})
    assert response.status_code == 200 and response.json()["model"] == "quick-1"


# ------------------------------------------------------------------ streams and cancellation


async def test_stream_headers_wait_for_the_decision() -> None:
    async with serving() as gw, client(gw) as http:
        t0 = trio.current_time()
        async with http.stream("POST", "/v1/chat/completions", json={**CHAT, "model": "slowest", "stream": True}) as r:
            headers_at = trio.current_time() - t0
            body = (await r.aread()).decode()
        failed = await http.post("/v1/chat/completions", json={**CHAT, "model": "failing", "stream": True})
    # the only provider answers after 400 ms: the headers come with its answer, not before
    assert headers_at >= 0.4
    assert r.status_code == 200 and r.headers["x-raceway-winner"] == "slow/slow-1"
    assert float(r.headers["x-raceway-ttft-ms"]) >= 400
    assert sse_events(body)[-1] == (None, "[DONE]")
    assert failed.status_code == 502 and failed.headers["content-type"] == "application/json"


async def test_disconnect_cancels_the_race_at_once() -> None:
    async with serving() as gw, client(gw) as http:
        finished: list[raceway.RaceFinished] = []
        gw.app.engine.subscribe(lambda e: finished.append(e) if isinstance(e, raceway.RaceFinished) else None)
        for stream in (True, False):
            signals = serve_support.fresh_signals()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(partial(http.post, "/v1/chat/completions", json={**CHAT, "model": "deadline", "stream": stream}))
                with trio.fail_after(5):
                    await signals.started.wait()
                left = trio.current_time()
                nursery.cancel_scope.cancel()  # the client goes away
            with trio.fail_after(2):
                await signals.cancelled.wait()
            assert signals.cancelled_at - left < 0.1
    assert [e.outcome for e in finished] == ["abandoned", "abandoned"]
    assert [a.status for e in finished for a in e.attempts] == ["cancelled", "cancelled"]


async def test_disconnect_closes_upstream_connections() -> None:
    async with serve_fake_upstream() as up:
        up.behave("a", first_token_delay=30)
        up.behave("b", headers_delay=30)
        async with serving(_with_upstream(up)) as gw, client(gw) as http:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(partial(http.post, "/v1/chat/completions", json={**CHAT, "model": "upstream", "stream": True}))
                with trio.fail_after(5):
                    await up.wait_until(lambda: len(up.requests()) == 2 and up.requests("a")[0].headers_sent_at)
                left = trio.current_time()
                nursery.cancel_scope.cancel()  # the client goes away
            with trio.fail_after(2):
                await up.wait_until(lambda: all(e.ended for e in up.requests()))
    for exchange in up.requests():
        assert exchange.disconnected_at is not None and exchange.disconnected_at - left < 0.1


def _with_upstream(up: Any, **models: str) -> str:
    """CONFIG plus providers on the fake upstream: ``a_up``/``b_up`` raced as ``upstream``,
    and one virtual model per keyword (model name = upstream name) on an openai provider."""
    providers = (
        f'  a_up: {{type: openai, base_url: "{up.openai_url("a")}", model: m-a}}\n'
        f'  b_up: {{type: anthropic, base_url: "{up.anthropic_url("b")}", api_key_env: null, model: m-b}}\n'
    )
    virtual = "  upstream: {providers: [a_up, b_up]}\n"
    for name, upstream in models.items():
        providers += f'  {name}_up: {{type: openai, base_url: "{up.openai_url(upstream)}", model: m}}\n'
        virtual += f"  {name}: {{providers: [{name}_up]}}\n"
    text = CONFIG.replace("providers:\n", "providers:\n" + providers, 1)
    return text.replace("virtual_models:\n", "virtual_models:\n" + virtual, 1)


async def stalled_client(gw: Any, model: str) -> trio.SocketStream:
    """A client that asks for a stream and then reads nothing (a tiny receive buffer)."""
    host, port = gw.url.removeprefix("http://").split(":")
    sock = trio.socket.socket()
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
    await sock.connect((host, int(port)))
    stream = trio.SocketStream(sock)
    body = b'{"model": "%s", "stream": true, "messages": [{"role": "user", "content": "go"}]}' % model.encode()
    await stream.send_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    return stream


async def test_a_slow_client_slows_only_its_own_stream() -> None:
    words = 3000
    async with serve_fake_upstream() as up:
        up.behave("long", text="word " * words)
        up.behave("short", text="hello there")
        async with serving(_with_upstream(up, long="long", short="short")) as gw, client(gw) as http:
            sock = await stalled_client(gw, "long")
            with trio.fail_after(5):
                await up.wait_until(lambda: up.requests("long") and up.requests("long")[0].first_token_at)
            # the stalled client reads nothing; another is served meanwhile
            with trio.fail_after(5):
                quick = await http.post("/v1/chat/completions", json={**CHAT, "model": "short"})
            assert quick.json()["choices"][0]["message"]["content"] == "hello there"
            with trio.move_on_after(0.3):  # time enough for an unbounded buffer to swallow it all
                await up.wait_until(lambda: up.requests("long")[0].finished_at)
            # backpressure: the upstream read paused with the answer part-way
            assert up.requests("long")[0].chunks_sent < words and up.requests("long")[0].finished_at is None
            # now it reads: the whole answer arrives, nothing dropped
            received = bytearray()
            with trio.fail_after(10):
                while b"data: [DONE]" not in received:
                    received += await sock.receive_some(65536)
            await sock.aclose()
    assert received.decode().count('"content":"word "') == words


async def test_a_stop_drains_in_flight_requests_and_disconnects_clients_that_do_not_read() -> None:
    async with serve_fake_upstream() as up:
        up.behave("long", text="word " * 3000)
        up.behave("trickle", text="drop " * 100, chunk_delay=0.05)
        config = raceway.loads_config(_with_upstream(up, long="long", trickle="trickle") + "serve: {drain_timeout_s: 0.5}\n")
        async with raceway.open_engine(config) as engine:
            started: list[raceway.RaceStarted] = []
            three_races, stop, served = trio.Event(), trio.Event(), trio.Event()

            def listen(event: Any) -> None:
                if isinstance(event, raceway.RaceStarted):
                    started.append(event)
                    if len(started) == 3:
                        three_races.set()

            engine.subscribe(listen)
            answers: list[httpx.Response] = []
            async with trio.open_nursery() as nursery:

                async def serve(task_status: Any) -> None:
                    await serve_gateway(engine, port=0, shutdown_trigger=stop.wait, task_status=task_status)
                    served.set()

                gw = await nursery.start(serve)
                sock = await stalled_client(gw, "long")
                async with client(gw) as http:

                    async def in_flight() -> None:
                        answers.append(await http.post("/v1/chat/completions", json={**CHAT, "model": "slowest"}))

                    async def trickling() -> None:
                        trickled.append(await http.post("/v1/chat/completions", json={**CHAT, "model": "trickle", "stream": True}))

                    trickled: list[httpx.Response] = []
                    nursery.start_soon(in_flight)
                    nursery.start_soon(trickling)
                    with trio.fail_after(5):
                        await three_races.wait()
                    stopped_at = trio.current_time()
                    stop.set()
                    with trio.fail_after(5):
                        await served.wait()
                    took = trio.current_time() - stopped_at
                await sock.aclose()
    # the in-flight answer (400 ms) completed; the client that reads nothing was let go at the drain deadline
    assert answers[0].status_code == 200
    assert answers[0].json()["choices"][0]["message"]["content"] == "Hello from slow."
    assert 0.45 <= took < 2.0
    assert up.requests("long")[0].disconnected_at is not None
    # a stream still running at the deadline ends with an error event, not silently
    assert sse_events(trickled[0].text)[-1][1]["error"]["message"] == "the raceway gateway is shutting down"


# ------------------------------------------------------------------ probes and metrics


async def test_healthz_healthy_unhealthy_and_cached() -> None:
    async with serve_fake_upstream() as up:
        up.behave("ok")
        up.behave("sick", fault="server_error")
        base = (
            "monitor: {socket: off}\nperformance_file: off\nproviders:\n"
            f'  good: {{type: openai, base_url: "{up.openai_url("ok")}", model: m}}\n'
            f'  bad: {{type: openai, base_url: "{up.openai_url("sick")}", model: m}}\n'
        )
        healthy = base + "virtual_models:\n  v: {providers: [good, bad]}\n"
        unhealthy = base + "virtual_models:\n  v: {providers: [bad]}\n"
        async with serving(healthy) as gw, client(gw) as http:
            first, second = await http.get("/healthz"), await http.get("/healthz")
            checks = len(up.requests("ok"))
        async with serving(unhealthy) as gw, client(gw) as http:
            sick = await http.get("/healthz")
    assert first.status_code == 200 and first.json()["status"] == "ok"
    assert first.json()["providers"]["good"] == {"healthy": True}
    assert first.json()["providers"]["bad"]["healthy"] is False and "500" in first.json()["providers"]["bad"]["error"]
    assert second.json() == first.json() and checks == 1  # asked once: cached
    assert sick.status_code == 503 and sick.json()["status"] == "unhealthy"


async def test_metrics_parse_and_count() -> None:
    async with serving() as gw, client(gw) as http:
        for model in ("fast", "fast", "failing"):
            await http.post("/v1/chat/completions", json={**CHAT, "model": model})
        text = (await http.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}

    def value(family: str, sample: str, **labels: str) -> float:
        return next(s.value for s in families[family].samples if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()))

    assert value("raceway_attempts", "raceway_attempts_total", provider="quick", model="quick-1", status="won") == 2
    assert value("raceway_attempts", "raceway_attempts_total", provider="slow", model="slow-1", status="cancelled") == 2
    assert value("raceway_attempts", "raceway_attempts_total", provider="broken", model="broken-1", status="failed") == 2
    assert value("raceway_races", "raceway_races_total", virtual_model="fast", strategy="first_wins", outcome="ok") == 2
    assert value("raceway_races", "raceway_races_total", virtual_model="failing", outcome="failed") == 1
    assert value("raceway_races_in_flight", "raceway_races_in_flight") == 0
    assert value("raceway_ttft_seconds", "raceway_ttft_seconds_count", provider="quick") == 2
    buckets = {s.labels["le"] for s in families["raceway_ttft_seconds"].samples if s.name.endswith("_bucket")}
    assert {"0.01", "60.0", "+Inf"} <= buckets
    assert value("raceway_provider_cooling_down", "raceway_provider_cooling_down", provider="quick", model="quick-1") == 0
    assert value("raceway_tokens", "raceway_tokens_total", provider="quick", type="output") == 6
    assert value("raceway_http_requests", "raceway_http_requests_total", route="/v1/chat/completions", status="502") == 1
    assert value("raceway_http_requests_in_flight", "raceway_http_requests_in_flight") >= 1  # this scrape


async def test_metrics_total_cost_and_waste() -> None:
    prices = "prices: {input_per_mtok: 1000000, output_per_mtok: 1000000}"
    config = CONFIG.replace(
        'text: "Hello from quick."}', f'text: "Hello from quick.", {prices}}}'
    ).replace('text: "Hello from slow."}', f'text: "Hello from slow.", {prices}}}')
    async with serving(config) as gw, client(gw) as http:
        await http.post("/v1/chat/completions", json=CHAT)  # (the race is booked before the answer goes out)
        text = (await http.get("/metrics")).text
    samples = {(s.name, s.labels.get("provider")): s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("raceway_cost_usd_total", "quick")] > 0
    assert ("raceway_wasted_cost_usd_total", "quick") not in samples  # the winner wasted nothing
    # the loser, cancelled at the win, still cost its prompt
    assert samples[("raceway_wasted_cost_usd_total", "slow")] == samples[("raceway_cost_usd_total", "slow")] > 0


async def test_two_gateways_on_one_engine_count_alone() -> None:
    async with raceway.open_engine(raceway.loads_config(CONFIG)) as engine:
        async with open_gateway(engine, port=0) as one, open_gateway(engine, port=0) as two:
            async with httpx.AsyncClient(base_url=one.url) as http:
                assert (await http.post("/v1/chat/completions", json=CHAT)).status_code == 200
            assert one.url != two.url
            assert one.app.metrics.requests_in_flight is not two.app.metrics.requests_in_flight


async def test_health_reports_are_reused_for_at_most_five_seconds(autojump_clock: Any) -> None:
    from raceway._engine import HealthReport
    from raceway._gateway._health import HealthCache

    class Engine:
        checks = 0

        async def health_check(self) -> HealthReport:
            self.checks += 1
            await trio.sleep(1)
            return HealthReport(providers={"p": None if self.checks < 3 else "down: Bearer sk-secret-123"})

    engine = Engine()
    cache = HealthCache(engine, lambda text: text.replace("sk-secret-123", "[redacted]"))  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        cache.nursery = nursery
        reports = []

        async def probe() -> None:
            reports.append(await cache.get())

        async with trio.open_nursery() as probes:
            for _ in range(3):  # probes during one check share it
                probes.start_soon(probe)
        assert engine.checks == 1 and len(reports) == 3
        await trio.sleep(4.9)  # 4.9 s after the report (it came at t=1 s): still fresh
        assert (await cache.get()).ok and engine.checks == 1
        await trio.sleep(0.2)
        assert (await cache.get()).ok and engine.checks == 2
        await trio.sleep(5)
        report = await cache.get()
    assert engine.checks == 3 and not report.ok and report.providers["p"] == "down: Bearer [redacted]"
