"""The public namespace: every name DESIGN.md promises exists, and nothing leaks by accident."""

from __future__ import annotations

import types

import raceway

# Names DESIGN.md writes in `code`: tests you do not see rely on them.
DESIGN_NAMES = {
    "load_config",
    "default_config",
    "open_engine",
    "RaceResult",
    "RacewayError",
    "ConfigError",
    "NoSuchModelError",
    "AllProvidersFailedError",
    "RaceTimeoutError",
    "ProviderError",
    "StreamInterruptedError",
}

RESULT_FIELDS = {
    "text",
    "provider",
    "model",
    "virtual_model",
    "strategy",
    "ttft_ms",
    "total_ms",
    "finish_reason",
    "usage",
    "attempts",
    "metadata",
}


def public_names(module: types.ModuleType) -> set[str]:
    return {
        n for n in dir(module) if not n.startswith("_") and not isinstance(getattr(module, n), types.ModuleType)
    }


def test_design_names_are_exported() -> None:
    assert DESIGN_NAMES <= public_names(raceway)


def test_every_export_is_reexported_explicitly_from_a_private_module() -> None:
    for name in public_names(raceway):
        obj = getattr(raceway, name)
        if isinstance(obj, types.UnionType):  # a type alias such as Decision
            continue
        module = getattr(obj, "__module__", "raceway")
        assert module.startswith(("raceway", "builtins")), (name, module)
        assert module == "raceway" or module.split(".")[1].startswith("_"), (name, module)


def test_error_tree() -> None:
    for name in ("ConfigError", "NoSuchModelError", "AllProvidersFailedError", "ProviderError", "StreamInterruptedError"):
        assert issubclass(getattr(raceway, name), raceway.RacewayError)
    assert issubclass(raceway.RaceTimeoutError, raceway.AllProvidersFailedError)
    for kind in ("RateLimitedError", "ProviderHTTPError", "ProviderProtocolError", "ProviderConnectionError"):
        assert issubclass(getattr(raceway, kind), raceway.ProviderError)


def test_race_result_carries_every_field() -> None:
    import attrs

    fields = {f.name for f in attrs.fields(raceway.RaceResult)}
    assert RESULT_FIELDS <= fields
    assert {"provider", "model", "status", "ttft_ms", "error"} <= {f.name for f in attrs.fields(raceway.AttemptRecord)}


def test_engine_has_the_documented_methods() -> None:
    for method in ("complete", "stream", "models", "stats", "health_check"):
        assert callable(getattr(raceway.Engine, method))


def test_import_raceway_wire_loads_no_engine_and_no_heavy_library() -> None:
    import ast
    import subprocess
    import sys

    code = "import sys, raceway.wire; print(sorted(m for m in sys.modules if m.split('.')[0] in {'trio', 'httpx', 'cattrs', 'yaml', 'anyio', 'coredis', 'raceway'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = set(ast.literal_eval(out.stdout))
    assert not loaded & {"trio", "httpx", "cattrs", "yaml", "anyio", "coredis"}, loaded
    assert not loaded & {"raceway._engine", "raceway._race", "raceway._core", "raceway._config"}, loaded


def test_the_namespace_loads_lazily_and_fully() -> None:
    for name in raceway.__all__:
        assert getattr(raceway, name) is not None, name
    assert {"ToolCall", "ToolCallDelta", "StrategyProtocol", "AttemptView", "StrategyError"} <= set(raceway.__all__)
