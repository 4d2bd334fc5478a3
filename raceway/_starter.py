"""The commented starter configs that ``raceway config init`` writes (YAML and TOML, same content)."""

from __future__ import annotations

STARTER_YAML = """\
# raceway configuration. Check it with: raceway config validate raceway.yaml
# Every *_ms is in milliseconds. API keys are read from the environment only.

timeout_ms: 10000        # a winner must be decided within this (not the whole stream)
grace_period_ms: 250     # how long losers may keep running after the decision
strategy: first_wins     # first_wins | weighted | quality | hedged | "module:Class"
idle_timeout_ms: 30000   # the winner may pause this long between chunks
# ttft_timeout_ms: 3000  # give up on one attempt with no first token by then
hedge:
  delay_ms: auto         # hedged: start the next provider after this (auto: its p90 TTFT, the 1 - max_extra_load quantile)
  max_extra_load: 0.1    # hedged: at most this many extra requests per race, on average
monitor:
  socket: auto           # the dashboard's socket: auto, off, or a path
# performance_file: ~/.local/state/raceway/performance.json

providers:
  # Well-known names (openai, anthropic, groq, gemini, ...) are presets: they
  # need no entry here, only their key variable (OPENAI_API_KEY, ...).
  local:
    type: openai                      # any OpenAI-compatible endpoint
    base_url: http://localhost:11434/v1
    model: llama3.2
  practice:
    type: sim                         # simulated: no network, no key
    ttft_ms: 300
    sigma: 0.5
    failure_rate: 0.05

default_virtual_model: fast

virtual_models:
  fast:
    display_name: Fast
    description: The first token wins
    strategy: first_wins
    providers:
      - name: openai
        model: gpt-4o-mini
      - name: anthropic
        model: claude-3-5-haiku-latest
        config:
          max_tokens: 1024
      - name: practice
"""

STARTER_TOML = """\
# raceway configuration. Check it with: raceway config validate raceway.toml
# Every *_ms is in milliseconds. API keys are read from the environment only.

timeout_ms = 10000        # a winner must be decided within this (not the whole stream)
grace_period_ms = 250     # how long losers may keep running after the decision
strategy = "first_wins"   # first_wins | weighted | quality | hedged | "module:Class"
idle_timeout_ms = 30000   # the winner may pause this long between chunks
# ttft_timeout_ms = 3000  # give up on one attempt with no first token by then
default_virtual_model = "fast"
# performance_file = "~/.local/state/raceway/performance.json"

[hedge]
delay_ms = "auto"         # hedged: start the next provider after this (auto: its p90 TTFT, the 1 - max_extra_load quantile)
max_extra_load = 0.1      # hedged: at most this many extra requests per race, on average

[monitor]
socket = "auto"           # the dashboard's socket: auto, off, or a path

# Well-known names (openai, anthropic, groq, gemini, ...) are presets: they
# need no entry here, only their key variable (OPENAI_API_KEY, ...).
[providers.local]
type = "openai"           # any OpenAI-compatible endpoint
base_url = "http://localhost:11434/v1"
model = "llama3.2"

[providers.practice]
type = "sim"              # simulated: no network, no key
ttft_ms = 300
sigma = 0.5
failure_rate = 0.05

[virtual_models.fast]
display_name = "Fast"
description = "The first token wins"
strategy = "first_wins"
providers = [
    { name = "openai", model = "gpt-4o-mini" },
    { name = "anthropic", model = "claude-3-5-haiku-latest", config = { max_tokens = 1024 } },
    { name = "practice" },
]
"""

STARTER = {"yaml": STARTER_YAML, "toml": STARTER_TOML}
