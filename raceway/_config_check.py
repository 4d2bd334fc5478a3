"""Configuration, the checks beyond the schema: :func:`validate` and its helpers.

What cattrs cannot see from types: names that must exist (providers,
virtual models, strategies and scorers by import path), declared ranges,
models a reference needs, secrets pasted where a variable name belongs.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import attrs

from ._checks import (
    check_values,
    config_error,
    env_name_problem,
)
from ._config import (
    BUILTIN_STRATEGIES,
    MODEL_REQUIRED,
    AnthropicProvider,
    CodeProvider,
    Config,
    CooldownConfig,
    CooldownOverride,
    OpenAIProvider,
    ProviderDef,
    PythonProvider,
    SimProvider,
    VirtualModel,
    _no_model,
)
from ._fleet_config import check_redis
from ._presets import PRESETS
from ._text import one_line, suggestion

# ------------------------------------------------------------- validation


def with_code_providers(config: Config, providers: Mapping[str, Any]) -> Config:
    """``config`` with a :class:`CodeProvider` definition for each code-built provider it does not define."""
    extra = {
        name: CodeProvider(model=str(getattr(p, "model", "") or ""))
        for name, p in providers.items()
        if name not in config.providers
    }
    return attrs.evolve(config, providers={**config.providers, **extra}) if extra else config


def validate(config: Config, *, source: str | None = None) -> None:
    """The checks beyond the schema. Raises :class:`ConfigError` on the first problem.

    Every numeric setting is checked against the :class:`~raceway._checks.Range`
    its field declares, every string for NUL bytes, then the rules that span
    settings (references, models, import paths).
    """

    def fail(path: str, message: str) -> None:
        raise config_error(path, message, source)

    def check_settings(obj: Config | VirtualModel, base: str) -> None:
        if obj.strategy is not None:
            check_strategy_name(obj.strategy, f"{base}.strategy")
        if obj.quality_scorer is not None:
            check_import_path(obj.quality_scorer, f"{base}.quality_scorer")
        if obj.cooldown is not None:
            check_cooldown(obj.cooldown, f"{base}.cooldown", fail)

    def check_strategy_name(name: str, path: str) -> None:
        if name in BUILTIN_STRATEGIES:
            return
        if ":" not in name:
            fail(
                path,
                f"unknown strategy {name!r}{suggestion(name, BUILTIN_STRATEGIES)}: "
                f"use one of {', '.join(BUILTIN_STRATEGIES)} or 'module:Class'",
            )
        check_import_path(name, path)

    def check_import_path(ref: str, path: str) -> None:
        try:
            obj = import_object(ref)
        except ImportError as exc:
            fail(path, one_line(exc))
        else:
            if not callable(obj):
                fail(path, f"{ref!r} is not callable")
            if path.endswith(".strategy") and isinstance(obj, type) and not hasattr(obj, "decide"):
                fail(path, f"{ref!r} is not a strategy (a class with decide(now); see raceway.Strategy)")

    check_values(config, "$", fail)
    check_settings(config, "$")
    if config.monitor.socket.strip() == "":
        fail("$.monitor.socket", "must be a path, 'auto' or 'off'")
    check_redis(config.redis, fail)

    for pname, definition in config.providers.items():
        check_provider(definition, f"$.providers[{pname!r}]", fail)

    if config.default_virtual_model and config.default_virtual_model not in config.virtual_models:
        known = ", ".join(config.virtual_models) or "none defined"
        fail(
            "$.default_virtual_model",
            f"{config.default_virtual_model!r} is not a virtual model"
            f"{suggestion(config.default_virtual_model, config.virtual_models)} (known: {known})",
        )
    if not config.virtual_models and not config.providers:
        fail("$.providers", "define at least one provider or virtual model")

    for vname, vm in config.virtual_models.items():
        base = f"$.virtual_models[{vname!r}]"
        check_settings(vm, base)
        if not vm.providers:
            fail(f"{base}.providers", "list at least one provider")
        for i, ref in enumerate(vm.providers):
            rpath = f"{base}.providers[{i}]"
            if ref.name not in config.providers and ref.name not in PRESETS:
                hint = suggestion(ref.name, [*config.providers, *PRESETS])
                fail(f"{rpath}.name", f"provider {ref.name!r} is not defined under providers and is not a preset{hint}")
            definition = config.provider(ref.name)
            if not (ref.model or definition.model) and definition.type in MODEL_REQUIRED:
                raise _no_model(vname, i, ref.name, legacy=False)


def check_cooldown(c: CooldownConfig | CooldownOverride, path: str, fail: Any) -> None:
    """``cooldown``: a cap no shorter than the base (the ranges are declared on the fields)."""
    if c.base_ms is not None and c.max_ms is not None and c.max_ms < c.base_ms:
        fail(f"{path}.max_ms", f"must be at least base_ms ({c.base_ms}), not {c.max_ms}")


def check_provider(definition: ProviderDef, path: str, fail: Any) -> None:
    """Type-specific checks of one provider definition (ranges, prices too, are declared on the fields)."""
    if isinstance(definition, OpenAIProvider | AnthropicProvider):
        if not definition.base_url.startswith(("http://", "https://")):
            fail(f"{path}.base_url", "must start with http:// or https://")
        if definition.api_key_env:  # unset or empty: the provider needs no key
            problem = env_name_problem(definition.api_key_env)
            if problem:
                fail(f"{path}.api_key_env", problem)
    elif isinstance(definition, SimProvider):
        if definition.failure_rate + definition.hang_rate > 1:
            fail(f"{path}.hang_rate", "failure_rate + hang_rate must not exceed 1")
    elif isinstance(definition, PythonProvider):
        try:
            import_object(definition.callable)
        except ImportError as exc:
            fail(f"{path}.callable", one_line(exc))


def import_object(ref: str) -> Any:
    """Import ``"package.module:attr.path"``; raises ImportError with a one-line reason."""
    module_name, sep, attr_path = ref.partition(":")
    if not sep or not module_name or not attr_path:
        raise ImportError(f"{ref!r} is not an import path of the form 'package.module:name'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"cannot import module {module_name!r}: {exc}") from None
    except Exception as exc:  # the module itself is broken (SyntaxError, an error at import)
        raise ImportError(f"importing module {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportError(f"module {module_name!r} has no attribute {attr_path!r}") from None
    return obj
