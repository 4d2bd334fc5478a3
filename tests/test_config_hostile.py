"""Hostile or mistaken configuration never gets past one clear ``ConfigError`` (issue 11).

Each test is one item: keys pasted where a variable name belongs (2), YAML
that expands without bound (4), deep nesting, bad encodings and NUL bytes
(5), keys that are not strings (6), numbers out of range (7), references
without a model (13), and misspellings that get a suggestion (14). A
property test throws arbitrary documents at the loader.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import raceway
from raceway import _config, _config_check, _config_io
from raceway._checks import FREE_TEXT, MAX_DEPTH, MAX_VALUES, RANGE, env_name_problem

KEY = "sk-proj-Zx81mQv0aBcDeFgHiJkLmNoPqRsTuVwXyZ012345"


def error(text: str, fmt: str = "yaml") -> raceway.ConfigError:
    with pytest.raises(raceway.ConfigError) as info:
        raceway.loads_config(text, fmt)  # type: ignore[arg-type]
    exc = info.value
    assert "\n" not in str(exc) and "\r" not in str(exc), "an error is one line"
    return exc


# ---------------------------------------------------------------- 2: a key in api_key_env


@pytest.mark.parametrize(
    "value",
    [
        KEY,
        "sk-ant-api03-abcdefghijklmnop",
        "gsk_8s7d6f5g4h3j2k1l0zxcvbnmasdfgh",
        "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
        "3f9a0c5e7b1d4f8a2c6e0b9d7f5a3c1e",  # a bare hex token
        "ab12Cd34Ef56Gh78Ij90Kl12",  # mixed case with digits
    ],
)
def test_a_key_pasted_into_api_key_env_is_refused_and_never_echoed(value: str) -> None:
    exc = error(f"providers:\n  openai: {{api_key_env: {value!r}}}\n")
    assert exc.path == "$.providers['openai'].api_key_env"
    assert "looks like an API key" in exc.message
    assert value not in str(exc) and value[:12] not in str(exc)


@pytest.mark.parametrize("value", ["OPENAI KEY", "1PASSWORD", "my-key", "KEY=abc", "$OPENAI_API_KEY"])
def test_api_key_env_must_be_a_variable_name(value: str) -> None:
    exc = error(f"providers:\n  mine: {{type: openai, base_url: 'http://x/v1', model: m, api_key_env: {value!r}}}\n")
    assert exc.path == "$.providers['mine'].api_key_env"
    assert "name of an environment variable" in exc.message and value not in str(exc)


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "MY_GROQ", "_private", "openai_key_2", "MY_PROJECT_KEY_V2_PROD_2024"])
def test_ordinary_variable_names_pass(name: str) -> None:
    assert env_name_problem(name) is None


def test_a_key_in_api_key_env_is_refused_when_built_in_code() -> None:
    config = raceway.Config(providers={"x": raceway.OpenAIProvider(base_url="http://x/v1", model="m", api_key_env=KEY)})
    with pytest.raises(raceway.ConfigError) as info:
        _config_check.validate(config)
    assert KEY not in str(info.value)


# ---------------------------------------------------------------- 4: billion laughs


BILLION_LAUGHS = """
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_a_billion_laughs_document_is_refused_at_load() -> None:
    exc = error(BILLION_LAUGHS)
    assert exc.path == "$" and "too large" in exc.message and "aliases" in exc.message


def test_the_same_bomb_inside_a_reference_config_is_refused_too() -> None:
    laughs = yaml.safe_load(BILLION_LAUGHS)["i"]  # loads at once: the lists are shared
    data = {
        "providers": {"p": {"type": "sim"}},
        "virtual_models": {"v": {"providers": [{"name": "p", "config": {"stop": laughs}}]}},
    }
    with pytest.raises(raceway.ConfigError, match="too large"):
        _config_io.config_from_dict(data)


def test_aliases_of_a_modest_size_still_load() -> None:
    config = raceway.loads_config("providers:\n  a: &sim {type: sim, ttft_ms: 50}\n  b: *sim\n")
    assert config.providers["a"] == config.providers["b"]


def test_the_size_limit_is_counted_with_aliases_expanded() -> None:
    wide = {"providers": {"p": {"type": "sim"}}, "virtual_models": {"v": {"providers": [
        {"name": "p", "config": {"k": list(range(MAX_VALUES))}}]}}}
    with pytest.raises(raceway.ConfigError, match="too large"):
        _config_io.config_from_dict(wide)


# ---------------------------------------------------------------- 5: nesting, encodings, NUL


@pytest.mark.parametrize("fmt", ["yaml", "toml"])
@pytest.mark.parametrize("levels", [MAX_DEPTH + 5, 5000])
def test_deep_nesting_is_a_config_error(fmt: str, levels: int) -> None:
    text = "a = " + "[" * levels + "]" * levels if fmt == "toml" else "a: " + "[" * levels + "]" * levels
    exc = error(text, fmt)
    assert "nested" in exc.message


def test_deep_nesting_names_where(tmp_path: Path) -> None:
    exc = error("providers:\n  p: {type: sim}\nvirtual_models:\n  v:\n    providers:\n      - name: p\n        config: "
                + "{a: " * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1))
    assert exc.path.startswith("$.virtual_models['v'].providers[0].config['a']")


@pytest.mark.parametrize("suffix", [".yaml", ".toml"])
def test_a_file_that_is_not_utf8_is_a_config_error_with_its_path(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"latin1{suffix}"
    path.write_bytes("timeout_ms: 5000  # café\n".encode("latin-1"))
    with pytest.raises(raceway.ConfigError) as info:
        raceway.load_config(path)
    assert info.value.source == str(path) and "UTF-8" in info.value.message
    assert str(info.value).startswith(f"{path}: not UTF-8")


def test_a_utf8_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffproviders: [openai]\n".encode())
    assert "openai" in raceway.load_config(path).providers


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('performance_file: "state\\0.json"\nproviders: [openai]', "$.performance_file"),
        ('monitor: {socket: "/tmp/rw\\0.sock"}\nproviders: [openai]', "$.monitor.socket"),
        ('providers:\n  x: {type: openai, base_url: "http://h/v1", model: m, headers: {A: "b\\0c"}}',
         "$.providers['x'].headers['A']"),
    ],
)
def test_a_nul_byte_in_a_path_or_header_is_a_config_error(text: str, path: str) -> None:
    exc = error(text)
    assert exc.path == path and "NUL" in exc.message


def test_a_nul_byte_in_free_text_is_allowed() -> None:
    config = raceway.loads_config('providers:\n  s: {type: sim, text: "a\\0b"}\n')
    assert isinstance(config.providers["s"], raceway.SimProvider) and "\0" in config.providers["s"].text


async def test_open_engine_refuses_a_nul_in_the_socket_of_a_config_built_in_code(tmp_path: Path) -> None:
    bad = tmp_path / "m\0.sock"
    config = raceway.Config(
        monitor=raceway.MonitorConfig(socket=str(bad)),
        performance_file="off",
        providers={"s": raceway.SimProvider()},
    )
    with pytest.raises(raceway.ConfigError, match="NUL"):
        async with raceway.open_engine(config):
            pass
    assert list(tmp_path.iterdir()) == [], "no stray socket file"


# ---------------------------------------------------------------- 6: keys that are not strings


@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        ("on: 1\nproviders: [openai]", "$", "boolean true"),
        ("providers:\n  p: {type: sim}\n  1: {type: sim}", "$.providers", "int"),
        ("providers:\n  p: {type: sim}\n~: 3", "$", "null"),
        ("providers:\n  p:\n    type: sim\n    no: 2", "$.providers['p']", "boolean false"),
        ("providers:\n  p: {type: sim}\nvirtual_models:\n  v:\n    providers:\n      - name: p\n        config: {1.5: x}",
         "$.virtual_models['v'].providers[0].config", "float"),
    ],
)
def test_keys_that_are_not_strings_are_config_errors(text: str, path: str, words: str) -> None:
    exc = error(text)
    assert exc.path == path and words in exc.message and "quote" in exc.message


def test_a_key_with_a_newline_is_escaped_in_the_one_line_error() -> None:
    exc = error('providers:\n  x:\n    type: sim\n    "bad\\nkey": 1\n')
    assert "bad\\nkey" in str(exc) and "\n" not in str(exc)


def test_a_provider_name_with_control_characters_stays_on_one_line() -> None:
    exc = error('providers:\n  "a\\nb\\r\\u001b[31m": {}\n')
    assert "\n" not in str(exc) and "\x1b" not in str(exc)


# ---------------------------------------------------------------- 7: numeric ranges


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("http: {max_connections: 0}", "$.http.max_connections"),
        ("http: {max_connections: -3}", "$.http.max_connections"),
        ("http: {max_keepalive_connections: -1}", "$.http.max_keepalive_connections"),
        ("http: {keepalive_expiry_s: -1}", "$.http.keepalive_expiry_s"),
        ("http: {connect_timeout_ms: -5}", "$.http.connect_timeout_ms"),
        ("http: {connect_timeout_ms: 0}", "$.http.connect_timeout_ms"),
        ("idle_timeout_ms: 0", "$.idle_timeout_ms"),
        ("ttft_timeout_ms: -1", "$.ttft_timeout_ms"),
        ("hedge: {max_extra_load: -0.1}", "$.hedge.max_extra_load"),
        ("hedge: {max_extra_load: 11}", "$.hedge.max_extra_load"),
        ("hedge: {delay_ms: -1}", "$.hedge.delay_ms"),
        ("performance_save_interval_s: 0", "$.performance_save_interval_s"),
        ("performance_save_interval_s: -2.5", "$.performance_save_interval_s"),
        ("providers: {s: {type: sim, ttft_ms: 0}}", "$.providers['s'].ttft_ms"),
        ("providers: {s: {type: sim, sigma: 50}}", "$.providers['s'].sigma"),
        ("providers: {s: {type: sim, tokens_per_s: -1}}", "$.providers['s'].tokens_per_s"),
        ("providers: {s: {type: sim, hang_rate: 1.5}}", "$.providers['s'].hang_rate"),
        ("providers: {a: {type: anthropic, model: m, max_tokens: 0}}", "$.providers['a'].max_tokens"),
        ("providers: {s: {type: sim}}\nvirtual_models: {v: {grace_period_ms: -1, providers: [s]}}",
         "$.virtual_models['v'].grace_period_ms"),
        ("providers: {s: {type: sim}}\nvirtual_models: {v: {hedge: {max_extra_load: 20}, providers: [s]}}",
         "$.virtual_models['v'].hedge.max_extra_load"),
        ("providers: {s: {type: sim}}\nvirtual_models: {v: {providers: [{name: s, weight: -1}]}}",
         "$.virtual_models['v'].providers[0].weight"),
    ],
)
def test_every_numeric_setting_is_range_checked_with_its_path(text: str, path: str) -> None:
    if "providers" not in text:
        text += "\nproviders: {s: {type: sim}}"
    exc = error(text)
    assert exc.path == path, str(exc)
    assert "must be" in exc.message


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1.0e+400"])
def test_numbers_must_be_finite(value: str) -> None:
    exc = error(f"providers: {{s: {{type: sim, ttft_ms: {value}}}}}")
    assert exc.path == "$.providers['s'].ttft_ms" and "finite" in exc.message


@pytest.mark.parametrize("fmt", ["yaml", "toml"])
def test_huge_whole_numbers_are_refused(fmt: str) -> None:
    sep = " = " if fmt == "toml" else ": "
    exc = error("timeout_ms" + sep + "9" * 400, fmt)
    assert exc.path == "$.timeout_ms" and "at most" in exc.message and "9" * 30 not in str(exc)
    exc = error("timeout_ms" + sep + "9" * 5000, fmt)  # past what Python turns into text
    assert "9" * 30 not in str(exc)


def test_max_extra_load_says_what_it_is() -> None:
    exc = error("hedge: {max_extra_load: 12}\nproviders: {s: {type: sim}}")
    assert "fraction between 0 and 10" not in exc.message
    assert "between 0 and 10 extra requests per race" in exc.message


def _models() -> list[type[Any]]:
    seen: list[type[Any]] = []
    todo: list[Any] = [raceway.Config]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.append(cls)
        hints = typing.get_type_hints(cls)
        for f in attrs.fields(cls):
            todo.extend(t for t in _leaf_types(hints[f.name]) if attrs.has(t))
    return seen


def _leaf_types(tp: Any) -> list[Any]:
    args = typing.get_args(tp)
    if not args:
        return [tp]
    return [leaf for a in args for leaf in _leaf_types(a)]


def test_every_numeric_field_of_the_schema_declares_its_range() -> None:
    """A new numeric setting without a declared range would go unchecked: name it here."""
    models = _models()
    assert _config.HttpConfig in models and raceway.SimProvider in models
    missing = []
    for cls in models:
        hints = typing.get_type_hints(cls)
        for f in attrs.fields(cls):
            leaves = _leaf_types(hints[f.name])
            numeric = any(t in (int, float) for t in leaves)
            if numeric and RANGE not in f.metadata and FREE_TEXT not in f.metadata:
                missing.append(f"{cls.__name__}.{f.name}")
    assert missing == []


# ---------------------------------------------------------------- 13: a reference without a model


def test_a_preset_referenced_without_a_model_names_the_reference() -> None:
    exc = error("virtual_models: {fast: {providers: [{name: groq, model: llama}, {name: openai}]}}")
    assert exc.path == "$.virtual_models['fast'].providers[1].model" and "'openai'" in exc.message


def test_a_definition_without_a_model_referenced_without_one_names_the_reference() -> None:
    exc = error("providers: {mine: {type: openai, base_url: 'http://h/v1'}}\n"
                "virtual_models: {v: {providers: [mine]}}")
    assert exc.path == "$.virtual_models['v'].providers[0].model"


async def test_legacy_mode_without_a_model_is_a_config_error_not_an_empty_model() -> None:
    config = raceway.loads_config("providers: [openai, groq]\nmonitor: {socket: 'off'}\nperformance_file: 'off'\n")
    assert [p.model for p in config.resolve("llama-3").participants] == ["llama-3", "llama-3"]
    with pytest.raises(raceway.ConfigError) as info:
        config.resolve(None)
    assert info.value.path == "$.providers['openai'].model"
    with pytest.raises(raceway.ConfigError):
        async with raceway.open_engine(config):
            pass


def test_legacy_mode_with_models_resolves() -> None:
    config = raceway.loads_config("providers: {openai: {model: gpt-4o-mini}, s: {type: sim}}\n")
    assert [p.label for p in config.resolve(None).participants] == ["openai/gpt-4o-mini", "s/sim"]


# ---------------------------------------------------------------- 14: did you mean


@pytest.mark.parametrize(
    ("text", "path", "suggestion"),
    [
        ("timeout: 5\nproviders: [openai]", "$", "'timeout_ms'"),
        ("providers: {s: {type: sim}}\nvirtual_models: {v: {providers: [{name: s, weigth: 2}]}}",
         "$.virtual_models['v'].providers[0]", "'weight'"),
        ("providers: [anthropc]", "$.providers['anthropc']", "'anthropic'"),
        ("providers: {s: {type: sim}}\nvirtual_models: {v: {providers: [{name: anthropc, model: m}]}}",
         "$.virtual_models['v'].providers[0].name", "'anthropic'"),
        ("providers: {mine: {type: openai, url: 'http://h/v1', model: m}}", "$.providers['mine']", "'base_url'"),
        ("providers: {mine: {type: opnai, base_url: 'http://h/v1'}}", "$.providers['mine']", "'openai'"),
        ("strategy: frist_wins\nproviders: [openai]", "$.strategy", "'first_wins'"),
        ("default_virtual_model: fsat\nproviders: {s: {type: sim}}\nvirtual_models: {fast: {providers: [s]}}",
         "$.default_virtual_model", "'fast'"),
    ],
)
def test_misspellings_get_a_did_you_mean(text: str, path: str, suggestion: str) -> None:
    exc = error(text)
    assert exc.path == path, str(exc)
    assert f"did you mean {suggestion}?" in exc.message


def test_no_suggestion_when_nothing_is_close() -> None:
    exc = error("zzzqqq: 1\nproviders: [openai]")
    assert "did you mean" not in exc.message and "unknown key(s): zzzqqq" in exc.message


# ---------------------------------------------------------------- anything at all


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
    st.sampled_from(["sim", "openai", "auto", "off", "first_wins", "hedged", "http://h/v1", "openai"]),
)
keys = st.one_of(
    st.sampled_from(["providers", "virtual_models", "type", "name", "model", "hedge", "delay_ms", "timeout_ms",
                     "http", "max_connections", "monitor", "socket", "config", "weight", "ttft_ms", "sim", "s"]),
    st.text(max_size=6), st.integers(), st.booleans(), st.none(),
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=30,
)


@given(documents)
def test_any_document_loads_or_is_one_config_error(data: Any) -> None:
    try:
        config = _config_io.config_from_dict(data)
    except raceway.ConfigError as exc:
        assert "\n" not in str(exc)
        return
    raceway.dumps_config(config)  # what loads can be written back
