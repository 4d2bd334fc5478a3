"""raceway: race LLM providers for one request; the first good answer wins.

The public namespace. Everything a user needs is re-exported here
explicitly; the modules behind it are private (``raceway._engine`` ...), except
``raceway.wire`` (the monitor's format) and ``raceway.testing`` (the
strategy-testing kit).
"""

from ._config import AnthropicProvider as AnthropicProvider
from ._config import Config as Config
from ._config import HedgeConfig as HedgeConfig
from ._config import HedgeOverride as HedgeOverride
from ._config import MonitorConfig as MonitorConfig
from ._config import OpenAIProvider as OpenAIProvider
from ._config import ProviderRef as ProviderRef
from ._config import PythonProvider as PythonProvider
from ._config import SimProvider as SimProvider
from ._config import VirtualModel as VirtualModel
from ._config import default_config as default_config
from ._config import dumps_config as dumps_config
from ._config import load_config as load_config
from ._config import loads_config as loads_config
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
from ._errors import StreamInterruptedError as StreamInterruptedError
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
from ._metrics import SeedMetrics as SeedMetrics
from ._metrics import seed_metrics as seed_metrics
from ._monitor import serve_monitor as serve_monitor
from ._persist import default_performance_path as default_performance_path
from ._providers import Chunk as Chunk
from ._providers import Provider as Provider
from ._providers import Request as Request
from ._providers import Usage as Usage
from ._race import Race as Race
from ._race import StrategyError as StrategyError
from ._result import AttemptRecord as AttemptRecord
from ._result import RaceResult as RaceResult
from ._strategies import Answer as Answer
from ._strategies import Completed as Completed
from ._strategies import Contender as Contender
from ._strategies import Decision as Decision
from ._strategies import Fact as Fact
from ._strategies import Failed as Failed
from ._strategies import FirstToken as FirstToken
from ._strategies import FirstWins as FirstWins
from ._strategies import GiveUp as GiveUp
from ._strategies import HedgeBudget as HedgeBudget
from ._strategies import Hedged as Hedged
from ._strategies import Pick as Pick
from ._strategies import Quality as Quality
from ._strategies import RaceSpec as RaceSpec
from ._strategies import Start as Start
from ._strategies import Started as Started
from ._strategies import Strategy as Strategy
from ._strategies import Wait as Wait
from ._strategies import Weighted as Weighted
from ._strategies import default_quality_score as default_quality_score
from ._tracker import ProviderStats as ProviderStats

__version__ = "0.1.0"
