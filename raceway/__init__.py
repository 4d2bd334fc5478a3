"""raceway: race LLM providers for one request; the first good answer wins.

The public namespace. Everything a user needs is re-exported here
explicitly; the modules behind it are private (``raceway._engine`` ...), except
``raceway.wire`` (the monitor's format) and ``raceway.testing`` (the
strategy-testing kit).

Names load on first use (PEP 562), so ``import raceway.wire`` — all the
dashboard needs — does not pull in trio, httpx, cattrs or the engine.
"""

import importlib as _importlib
import typing as _typing

__version__ = "0.1.0"

if _typing.TYPE_CHECKING:
    from ._chunk import Chunk as Chunk
    from ._chunk import ThinkingBlock as ThinkingBlock
    from ._chunk import ToolCall as ToolCall
    from ._chunk import ToolCallDelta as ToolCallDelta
    from ._chunk import Usage as Usage
    from ._config import AnthropicProvider as AnthropicProvider
    from ._config import Config as Config
    from ._config import CooldownConfig as CooldownConfig
    from ._config import HedgeConfig as HedgeConfig
    from ._config import HedgeOverride as HedgeOverride
    from ._config import MonitorConfig as MonitorConfig
    from ._config import OpenAIProvider as OpenAIProvider
    from ._config import Prices as Prices
    from ._config import ProviderRef as ProviderRef
    from ._config import PythonProvider as PythonProvider
    from ._config import SimProvider as SimProvider
    from ._config import VirtualModel as VirtualModel
    from ._config_io import default_config as default_config
    from ._config_io import dumps_config as dumps_config
    from ._config_io import load_config as load_config
    from ._config_io import loads_config as loads_config
    from ._engine import Engine as Engine
    from ._engine import HealthReport as HealthReport
    from ._engine import ModelInfo as ModelInfo
    from ._engine import open_engine as open_engine
    from ._errors import AllProvidersFailedError as AllProvidersFailedError
    from ._errors import AuthenticationError as AuthenticationError
    from ._errors import ConfigError as ConfigError
    from ._errors import MissingAPIKeyError as MissingAPIKeyError
    from ._errors import NoSuchModelError as NoSuchModelError
    from ._errors import ProviderConnectionError as ProviderConnectionError
    from ._errors import ProviderError as ProviderError
    from ._errors import ProviderHTTPError as ProviderHTTPError
    from ._errors import ProviderProtocolError as ProviderProtocolError
    from ._errors import ProviderTimeoutError as ProviderTimeoutError
    from ._errors import RaceTimeoutError as RaceTimeoutError
    from ._errors import RacewayError as RacewayError
    from ._errors import RateLimitedError as RateLimitedError
    from ._errors import StrategyError as StrategyError
    from ._errors import StreamInterruptedError as StreamInterruptedError
    from ._errors import UnsupportedRequestError as UnsupportedRequestError
    from ._events import AttemptCancelled as AttemptCancelled
    from ._events import AttemptFailed as AttemptFailed
    from ._events import AttemptFirstToken as AttemptFirstToken
    from ._events import AttemptStarted as AttemptStarted
    from ._events import ProviderCooldown as ProviderCooldown
    from ._events import ProviderRecovered as ProviderRecovered
    from ._events import RaceDecided as RaceDecided
    from ._events import RaceFinished as RaceFinished
    from ._events import RaceStarted as RaceStarted
    from ._events import StatsSnapshot as StatsSnapshot
    from ._gateway import Gateway as Gateway
    from ._gateway import open_gateway as open_gateway
    from ._gateway import serve_gateway as serve_gateway
    from ._metrics import SeedMetrics as SeedMetrics
    from ._metrics import seed_metrics as seed_metrics
    from ._monitor import serve_monitor as serve_monitor
    from ._persist import default_performance_path as default_performance_path
    from ._providers import Provider as Provider
    from ._providers import Request as Request
    from ._race import Race as Race
    from ._result import AttemptRecord as AttemptRecord
    from ._result import RaceResult as RaceResult
    from ._stats import ProviderStats as ProviderStats
    from ._strategies import FirstWins as FirstWins
    from ._strategies import Hedged as Hedged
    from ._strategies import Quality as Quality
    from ._strategies import Weighted as Weighted
    from ._strategies import default_quality_score as default_quality_score
    from ._strategy import Answer as Answer
    from ._strategy import AttemptView as AttemptView
    from ._strategy import Completed as Completed
    from ._strategy import Contender as Contender
    from ._strategy import Decision as Decision
    from ._strategy import Fact as Fact
    from ._strategy import Failed as Failed
    from ._strategy import FirstToken as FirstToken
    from ._strategy import GiveUp as GiveUp
    from ._strategy import HedgeBudget as HedgeBudget
    from ._strategy import Pick as Pick
    from ._strategy import RaceSpec as RaceSpec
    from ._strategy import Start as Start
    from ._strategy import Started as Started
    from ._strategy import Strategy as Strategy
    from ._strategy import StrategyProtocol as StrategyProtocol
    from ._strategy import Wait as Wait

#: Public name -> the private module that defines it.
_EXPORTS: dict[str, str] = {
    "Gateway": "._gateway",
    "open_gateway": "._gateway",
    "serve_gateway": "._gateway",
    "AllProvidersFailedError": "._errors",
    "Answer": "._strategy",
    "AttemptView": "._strategy",
    "AnthropicProvider": "._config",
    "AttemptCancelled": "._events",
    "AttemptFailed": "._events",
    "AttemptFirstToken": "._events",
    "AttemptRecord": "._result",
    "AttemptStarted": "._events",
    "AuthenticationError": "._errors",
    "Chunk": "._chunk",
    "Completed": "._strategy",
    "Config": "._config",
    "ConfigError": "._errors",
    "Contender": "._strategy",
    "Decision": "._strategy",
    "Engine": "._engine",
    "Fact": "._strategy",
    "Failed": "._strategy",
    "FirstToken": "._strategy",
    "FirstWins": "._strategies",
    "GiveUp": "._strategy",
    "HealthReport": "._engine",
    "HedgeBudget": "._strategy",
    "CooldownConfig": "._config",
    "HedgeConfig": "._config",
    "HedgeOverride": "._config",
    "Hedged": "._strategies",
    "MissingAPIKeyError": "._errors",
    "ModelInfo": "._engine",
    "MonitorConfig": "._config",
    "NoSuchModelError": "._errors",
    "OpenAIProvider": "._config",
    "Pick": "._strategy",
    "Prices": "._config",
    "Provider": "._providers",
    "ProviderConnectionError": "._errors",
    "ProviderCooldown": "._events",
    "ProviderError": "._errors",
    "ProviderHTTPError": "._errors",
    "ProviderProtocolError": "._errors",
    "ProviderRecovered": "._events",
    "ProviderRef": "._config",
    "ProviderStats": "._stats",
    "ProviderTimeoutError": "._errors",
    "PythonProvider": "._config",
    "Quality": "._strategies",
    "Race": "._race",
    "RaceDecided": "._events",
    "RaceFinished": "._events",
    "RaceResult": "._result",
    "RaceSpec": "._strategy",
    "RaceStarted": "._events",
    "RaceTimeoutError": "._errors",
    "RacewayError": "._errors",
    "RateLimitedError": "._errors",
    "Request": "._providers",
    "SeedMetrics": "._metrics",
    "SimProvider": "._config",
    "Start": "._strategy",
    "Started": "._strategy",
    "StatsSnapshot": "._events",
    "Strategy": "._strategy",
    "StrategyProtocol": "._strategy",
    "StrategyError": "._errors",
    "StreamInterruptedError": "._errors",
    "ThinkingBlock": "._chunk",
    "ToolCall": "._chunk",
    "ToolCallDelta": "._chunk",
    "UnsupportedRequestError": "._errors",
    "Usage": "._chunk",
    "VirtualModel": "._config",
    "Wait": "._strategy",
    "Weighted": "._strategies",
    "default_config": "._config_io",
    "default_performance_path": "._persist",
    "default_quality_score": "._strategies",
    "dumps_config": "._config_io",
    "load_config": "._config_io",
    "loads_config": "._config_io",
    "open_engine": "._engine",
    "seed_metrics": "._metrics",
    "serve_monitor": "._monitor",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> _typing.Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'raceway' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next lookup is a plain dict hit
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
