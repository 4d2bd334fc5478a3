"""redis: in config — the schema, its errors (naming $.redis...), and the password kept secret."""

from __future__ import annotations

import pytest

import raceway
from raceway._config_io import dumps_config, loads_config, redacted
from raceway._fleet_config import DEFAULT_EVENTS_MAXLEN, redact_url

BASE = "providers: [openai]\n"


def test_defaults_and_round_trip() -> None:
    config = loads_config(BASE + 'redis: {url: "redis://localhost:6379/0"}\n')
    assert config.redis is not None
    assert (config.redis.prefix, config.redis.events, config.redis.events_maxlen) == ("raceway", False, DEFAULT_EVENTS_MAXLEN)
    assert loads_config(dumps_config(config)) == config
    assert loads_config(dumps_config(config, "toml"), "toml") == config
    assert loads_config(BASE).redis is None


@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        ('redis: {url: "http://x"}', "$.redis.url", "redis://"),
        ('redis: {url: "redis://:pw@h/x"}', "$.redis.url", "database"),
        ('redis: {url: "redis://h:99999"}', "$.redis.url", "not a valid URL"),
        ('redis: {url: "redis://"}', "$.redis.url", "needs a host"),
        ("redis: {}", "$.redis.url", "required"),
        ('redis: {url: "redis://h", colour: red}', "$.redis", "unknown key(s): colour"),
        ('redis: {url: "redis://h", events_maxlen: 0}', "$.redis.events_maxlen", "positive"),
        ('redis: {url: "redis://h", events: 3}', "$.redis.events", "true or false"),
        ('redis: {url: "redis://h", prefix: "a b"}', "$.redis.prefix", "letters"),
    ],
)
def test_bad_settings_name_their_path(text: str, path: str, words: str) -> None:
    with pytest.raises(raceway.ConfigError) as info:
        loads_config(BASE + text)
    assert info.value.path == path and words in info.value.message
    assert "pw" not in str(info.value)


def test_the_password_is_redacted_everywhere_it_is_shown() -> None:
    config = loads_config(BASE + 'redis: {url: "redis://app:s3cret@cache:6380/2", events: true}\n')
    assert redacted(config)["redis"]["url"] == "redis://app:***@cache:6380/2"
    assert "s3cret" not in repr(config) and "s3cret" not in repr(config.redis)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
        ("rediss://user:p@ss@h", "rediss://user:***@h"),
        ("redis://token@h", "redis://***@h"),
        ("unix://:pw@/run/redis.sock?db=1", "unix://:***@/run/redis.sock?db=1"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
