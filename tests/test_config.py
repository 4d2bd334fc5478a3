"""Configuration: the seed's keys and meanings, validation paths, YAML <-> TOML identity."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import raceway
from raceway._config_io import redacted

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "example_config.yaml"
SEED_TEXT = """\
timeout_ms: 5000
grace_period_ms: 1000
strategy: first_wins
default_virtual_model: multi
virtual_models:
  multi:
    display_name: "Multi-Provider Racing"
    description: "Races OpenAI GPT-4 and Anthropic Claude"
    providers:
      - name: openai
        model: gpt-4
        priority: 1
      - name: anthropic
        model: claude-3-5-sonnet-20241022
        priority: 2
    strategy: weighted
    timeout_ms: 3000
  quality:
    display_name: "High Quality"
    description: "Quality-focused"
    providers:
      - name: anthropic
        model: claude-3-5-sonnet-20241022
        priority: 1
        config:
          temperature: 0.1
          max_tokens: 4000
      - name: gemini
        model: gemini-pro
        priority: 2
    strategy: quality
    timeout_ms: 8000
"""


def load(text: str) -> raceway.Config:
    return raceway.loads_config(text)


def error(text: str, fmt: str = "yaml") -> raceway.ConfigError:
    with pytest.raises(raceway.ConfigError) as info:
        raceway.loads_config(text, fmt)  # type: ignore[arg-type]
    return info.value


# ---------------------------------------------------------------- the seed


def test_the_seeds_example_loads_unchanged() -> None:
    path = SEED if SEED.exists() else None
    config = raceway.load_config(path) if path else load(SEED_TEXT)
    assert config.timeout_ms == 5000 and config.grace_period_ms == 1000
    assert config.strategy == "first_wins" and config.default_virtual_model == "multi"
    multi = config.virtual_models["multi"]
    assert multi.display_name == "Multi-Provider Racing" and multi.strategy == "weighted"
    assert multi.timeout_ms == 3000
    assert [(r.name, r.model, r.priority) for r in multi.providers][:2] == [
        ("openai", "gpt-4", 1),
        ("anthropic", "claude-3-5-sonnet-20241022", 2),
    ]
    quality = config.virtual_models["quality"]
    assert quality.providers[0].config == {"temperature": 0.1, "max_tokens": 4000}


def test_seed_keys_keep_their_meaning_when_resolved() -> None:
    config = load(SEED_TEXT)
    multi = config.resolve("multi")
    assert multi.strategy == "weighted" and multi.timeout_ms == 3000  # per model overrides
    assert multi.grace_period_ms == 1000  # inherited from the top level
    assert config.resolve(None).name == "multi"  # default_virtual_model
    quality = config.resolve("quality")
    assert quality.participants[0].params == {"temperature": 0.1, "max_tokens": 4000}
    assert quality.participants[0].definition.type == "anthropic"  # a preset
    gemini = quality.participants[1].definition
    assert isinstance(gemini, raceway.OpenAIProvider) and "generativelanguage" in gemini.base_url


def test_seed_yaml_to_toml_and_back_is_equal(tmp_path: Path) -> None:
    config = load(SEED_TEXT)
    toml = raceway.dumps_config(config, "toml")
    assert raceway.loads_config(toml, "toml") == config
    assert raceway.loads_config(raceway.dumps_config(config, "yaml")) == config


def test_providers_as_the_seeds_list_of_names() -> None:
    config = load("providers: [openai, groq]\n")
    assert set(config.providers) == {"openai", "groq"}
    # legacy mode: no virtual models, every provider races with the caller's model
    resolved = config.resolve("llama-3")
    assert [(p.name, p.model) for p in resolved.participants] == [("openai", "llama-3"), ("groq", "llama-3")]


def test_a_preset_can_be_overridden_key_by_key() -> None:
    config = load("providers:\n  groq: {api_key_env: MY_GROQ}\n")
    groq = config.providers["groq"]
    assert isinstance(groq, raceway.OpenAIProvider)
    assert groq.api_key_env == "MY_GROQ" and groq.base_url == "https://api.groq.com/openai/v1"


def test_new_keys_and_their_per_model_overrides() -> None:
    config = load(
        """
ttft_timeout_ms: 900
idle_timeout_ms: 5000
hedge: {delay_ms: 120, max_extra_load: 0.2}
monitor: {socket: "off"}
providers:
  s: {type: sim, ttft_ms: 50}
virtual_models:
  h:
    strategy: hedged
    hedge: {delay_ms: auto}
    idle_timeout_ms: 700
    providers: [{name: s, weight: 2.5}]
"""
    )
    r = config.resolve("h")
    assert r.ttft_timeout_ms == 900 and r.idle_timeout_ms == 700
    assert r.hedge.delay_ms == "auto" and r.hedge.max_extra_load == 0.2  # key by key over the top level
    assert r.participants[0].weight == 2.5
    assert config.monitor.socket == "off"


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        ("timeout_ms: 0\nproviders: [openai]", "$.timeout_ms", "positive"),
        ("timeout_ms: -5\nproviders: [openai]", "$.timeout_ms", "positive"),
        ("grace_period_ms: -1\nproviders: [openai]", "$.grace_period_ms", "0 or more"),
        ("timeout_ms: soon\nproviders: [openai]", "$.timeout_ms", "whole number"),
        ("timeout_ms: true\nproviders: [openai]", "$.timeout_ms", "whole number, not True"),
        ("timeout_ms: 5.7\nproviders: [openai]", "$.timeout_ms", "whole number, not 5.7"),
        ("colour: red\nproviders: [openai]", "$", "unknown key(s): colour"),
        ("strategy: fastest\nproviders: [openai]", "$.strategy", "unknown strategy 'fastest'"),
        ("strategy: 'nowhere.at.all:Thing'\nproviders: [openai]", "$.strategy", "cannot import"),
        ("default_virtual_model: x\nproviders: [openai]", "$.default_virtual_model", "'x' is not a virtual model"),
        ("providers: [mystery]", "$.providers['mystery']", "needs a 'type'"),
        ("providers: {p: {type: carrier-pigeon}}", "$.providers['p']", "unknown provider type"),
        ("providers: {p: {type: sim, ttft: 3}}", "$.providers['p']", "unknown key(s): ttft"),
        ("providers: {p: {type: sim, failure_rate: 2}}", "$.providers['p'].failure_rate", "probability"),
        ("providers: {p: {type: openai, base_url: ftp://x}}", "$.providers['p'].base_url", "http"),
        ("providers: {p: {type: python, callable: 'nope:fn'}}", "$.providers['p'].callable", "cannot import"),
        (
            "virtual_models: {fast: {providers: [{name: openai, model: m}, {name: nobody}]}}",
            "$.virtual_models['fast'].providers[1].name",
            "'nobody' is not defined",
        ),
        (
            "virtual_models: {fast: {providers: [{model: gpt-4}]}}",
            "$.virtual_models['fast'].providers[0].name",
            "missing",
        ),
        (
            "virtual_models: {fast: {providers: [{name: openai}]}}",
            "$.virtual_models['fast'].providers[0].model",
            "required",
        ),
        ("virtual_models: {fast: {providers: []}}", "$.virtual_models['fast'].providers", "at least one"),
        (
            "virtual_models: {fast: {timeout_ms: 0, providers: [{name: openai, model: m}]}}",
            "$.virtual_models['fast'].timeout_ms",
            "positive",
        ),
        ("hedge: {delay_ms: later}\nproviders: [openai]", "$.hedge.delay_ms", "'auto'"),
        ("{}", "$.providers", "at least one provider"),
        ("- just\n- a list", "$", "mapping"),
        ("a: [unclosed", "$", "invalid YAML at line 1"),
    ],
)
def test_errors_name_the_path(text: str, path: str, words: str) -> None:
    exc = error(text)
    assert exc.path == path
    assert words in exc.message
    assert "\n" not in str(exc)


def test_toml_errors_are_config_errors() -> None:
    exc = error("timeout_ms = = 3", "toml")
    assert exc.path == "$" and "invalid TOML" in exc.message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(raceway.ConfigError, match="file not found"):
        raceway.load_config(tmp_path / "absent.yaml")


def test_duplicate_references_are_distinct_participants() -> None:
    config = load("virtual_models: {v: {providers: [{name: openai, model: a}, {name: openai, model: a}]}}")
    assert len(config.resolve("v").participants) == 2


def test_open_engine_validates_a_config_built_in_code() -> None:
    bad = raceway.Config(timeout_ms=0, providers={"s": raceway.SimProvider()})
    with pytest.raises(raceway.ConfigError, match=r"\$\.timeout_ms"):
        raceway._config_check.validate(bad)


def test_redacted_masks_header_values() -> None:
    config = load("providers: {p: {type: openai, base_url: 'http://x', headers: {X-Token: s3cret}}}")
    text = str(redacted(config))
    assert "s3cret" not in text and "X-Token" in text


def test_the_embedded_default_has_one_model_per_strategy() -> None:
    config = raceway.default_config()
    strategies = {config.resolve(m).strategy for m in config.virtual_models}
    assert strategies == {"first_wins", "weighted", "quality", "hedged"}
    assert all(d.type == "sim" for d in config.providers.values())


# ---------------------------------------------------------------- round trip property

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-", min_size=1, max_size=8)
ms = st.integers(min_value=1, max_value=120_000)
sims = st.builds(
    raceway.SimProvider,
    model=names,
    ttft_ms=st.floats(min_value=1, max_value=5000, allow_nan=False),
    sigma=st.floats(min_value=0, max_value=2, allow_nan=False),
    tokens_per_s=st.floats(min_value=1, max_value=500, allow_nan=False),
    failure_rate=st.floats(min_value=0, max_value=0.5, allow_nan=False),
    hang_rate=st.floats(min_value=0, max_value=0.5, allow_nan=False),
    seed=st.none() | st.integers(min_value=0, max_value=2**31),
    text=st.text(max_size=30),
)
openais = st.builds(
    raceway.OpenAIProvider,
    base_url=st.sampled_from(["http://127.0.0.1:8000/v1", "https://api.example.com/v1"]),
    api_key_env=st.none() | st.just("EXAMPLE_KEY"),
    headers=st.dictionaries(names, names, max_size=2),
    model=names,
    stream_usage=st.booleans(),
)
anthropics = st.builds(raceway.AnthropicProvider, model=names, max_tokens=st.integers(1, 10_000))
definitions = st.one_of(sims, openais, anthropics)
hedges = st.builds(
    raceway.HedgeConfig,
    delay_ms=st.just("auto") | st.integers(min_value=0, max_value=5000),
    max_extra_load=st.floats(min_value=0, max_value=1, allow_nan=False),
)
hedge_overrides = st.builds(
    raceway.HedgeOverride,
    delay_ms=st.none() | st.just("auto") | st.integers(min_value=0, max_value=5000),
    max_extra_load=st.none() | st.floats(min_value=0, max_value=1, allow_nan=False),
)
param_values = st.one_of(st.integers(-5, 5000), st.floats(0, 2, allow_nan=False), names, st.booleans())


@st.composite
def configs(draw: st.DrawFn) -> raceway.Config:
    providers = draw(st.dictionaries(names, definitions, min_size=1, max_size=4))
    refs = st.builds(
        raceway.ProviderRef,
        name=st.sampled_from(sorted(providers)),
        model=names,
        priority=st.integers(-3, 10),
        weight=st.floats(min_value=0, max_value=10, allow_nan=False),
        config=st.dictionaries(names, param_values, max_size=3),
    )
    vms = draw(
        st.dictionaries(
            names,
            st.builds(
                raceway.VirtualModel,
                display_name=st.text(max_size=20),
                description=st.text(max_size=40),
                providers=st.lists(refs, min_size=1, max_size=4),
                strategy=st.none() | st.sampled_from(["first_wins", "weighted", "quality", "hedged"]),
                timeout_ms=st.none() | ms,
                grace_period_ms=st.none() | st.integers(0, 5000),
                hedge=st.none() | hedge_overrides,
            ),
            max_size=3,
        )
    )
    return raceway.Config(
        timeout_ms=draw(ms),
        grace_period_ms=draw(st.integers(0, 10_000)),
        strategy=draw(st.sampled_from(["first_wins", "weighted", "quality", "hedged"])),
        ttft_timeout_ms=draw(st.none() | ms),
        hedge=draw(hedges),
        providers=providers,
        virtual_models=vms,
        default_virtual_model=draw(st.sampled_from(["", *sorted(vms)])),
        performance_file=draw(st.sampled_from(["", "off", "/tmp/perf.json"])),
    )


@given(configs())
def test_yaml_to_model_to_toml_to_model_is_the_identity(config: raceway.Config) -> None:
    from_yaml = raceway.loads_config(raceway.dumps_config(config, "yaml"))
    assert from_yaml == config
    assert raceway.loads_config(raceway.dumps_config(from_yaml, "toml"), "toml") == config


def test_a_bare_yaml_off_means_off() -> None:
    # YAML 1.1 reads `off` as false; for these two settings it is the keyword.
    config = load("performance_file: off\nmonitor: {socket: off}\nproviders: [openai]\n")
    assert config.performance_file == "off" and config.monitor.socket == "off"
    assert error("performance_file: 3\nproviders: [openai]\n").path == "$.performance_file"


def test_a_broken_or_wrong_import_path_is_a_config_error() -> None:
    exc = error("providers: {p: {type: python, callable: 'broken_module:f'}}")
    assert exc.path == "$.providers['p'].callable" and "RuntimeError: this module is broken" in exc.message
    exc = error("strategy: 'json:JSONDecoder'\nproviders: [openai]")
    assert exc.path == "$.strategy" and "is not a strategy" in exc.message
    exc = error("strategy: 'json:__doc__'\nproviders: [openai]")
    assert "is not callable" in exc.message


def test_a_bare_name_is_a_provider_reference() -> None:
    config = load("providers: {a: {type: sim}, b: {type: sim}}\nvirtual_models: {v: {providers: [a, {name: b}]}}\n")
    assert [r.name for r in config.virtual_models["v"].providers] == ["a", "b"]
    exc = error("providers: {a: {type: sim}}\nvirtual_models: {v: {providers: [3]}}\n")
    assert exc.path == "$.virtual_models['v'].providers[0]" and "a name or a mapping" in exc.message
