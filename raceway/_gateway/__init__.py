"""``raceway serve``: one engine behind the OpenAI and Anthropic HTTP APIs.

Any program, SDK or language races providers by changing a base URL. The
package, by concern:

* ``_server`` — hypercorn's trio worker serving the app (``serve_gateway``,
  ``open_gateway``) and the command (``run_gateway``): start-up lines,
  signals, draining;
* ``_app`` — the ASGI app: routes, gateway keys, one race per request, the
  client's disconnect cancelling it;
* ``_openai`` / ``_anthropic`` — each API's requests (checked, translated to
  the engine's OpenAI format) and answers (whole, streamed, errors);
* ``_exchange`` / ``_fields`` — ASGI plumbing and request field checks;
* ``_metrics`` — ``/metrics`` from engine events; ``_health`` — ``/healthz``.
"""

from ._app import GatewayApp
from ._server import Gateway, gateway_keys, open_gateway, run_gateway, serve_gateway

__all__ = ["Gateway", "GatewayApp", "gateway_keys", "open_gateway", "run_gateway", "serve_gateway"]
