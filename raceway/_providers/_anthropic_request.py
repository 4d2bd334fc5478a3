"""A Chat Completions request, translated to the Anthropic Messages API.

Pure functions, no I/O: :func:`messages_body` takes the OpenAI-format
messages and parameters and returns the Messages API body, or raises
:class:`~raceway.UnsupportedRequestError` naming what cannot be honoured —
before anything is sent, so one provider's limits never cost a request and
never silently change what the caller asked for. This module owns the
parameters and the body; the conversation itself (the message rows of the
table) is translated by ``_anthropic_messages.py``.

=================================  ==========================================
OpenAI (Chat Completions)          Anthropic (Messages)
=================================  ==========================================
``system``/``developer`` messages  top-level ``system`` (texts joined)
``user`` text / ``image_url``      ``text`` blocks / ``image`` blocks (a data
                                   URL: ``base64`` source; else ``url``)
``file`` part with a PDF data URL  ``document`` block, ``base64`` source
assistant ``tool_calls``           ``tool_use`` blocks (``input``: the parsed
                                   arguments)
assistant ``thinking_blocks``      ``thinking``/``redacted_thinking`` blocks,
                                   first, as they were received
consecutive ``tool`` messages      one ``user`` turn of ``tool_result`` blocks
``tools`` (``function``)           ``{name, description, input_schema}``
``tool_choice`` auto/required/     ``{type: auto}``/``{type: any}``/
none/``{function: {name}}``        ``{type: none}``/``{type: tool, name}``
``parallel_tool_calls: false``     ``tool_choice.disable_parallel_tool_use``
``response_format`` json_schema    ``output_config.format`` (json_schema)
``response_format`` json_object    unsupported: the Messages API needs a schema
``reasoning_effort``               ``thinking`` with a ``budget_tokens``
``max_tokens``/``max_completion_   ``max_tokens`` (required: the definition's
tokens``                           ``max_tokens`` when the caller gives none)
``stop``                           ``stop_sequences``
``temperature``                    ``temperature``, capped at 1 (0–1 there)
``user``                           ``metadata.user_id``
=================================  ==========================================

Dropped, having no equivalent and not changing what the answer is
(:data:`DROPPED`): ``n``, ``presence_penalty``, ``frequency_penalty``,
``logit_bias``, ``logprobs``, ``top_logprobs``, ``seed``, ``stream_options``,
``service_tier``, ``store``, ``prediction``, ``verbosity``, an OpenAI-style
``metadata``, an image part's ``detail``, a message's ``name``; with thinking on, ``temperature``,
``top_k`` and a ``top_p`` under 0.95 (the Messages API refuses them there).
Other keys (``top_p``, ``top_k``, ``thinking``, ``output_config``, ...) pass
through, so Anthropic-only parameters can be given in a reference's
``config``.

References: https://docs.anthropic.com/en/api/messages,
https://docs.anthropic.com/en/docs/build-with-claude/tool-use,
https://docs.anthropic.com/en/docs/build-with-claude/structured-outputs,
https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking,
https://docs.anthropic.com/en/docs/build-with-claude/vision
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import UnsupportedRequestError
from ._anthropic_messages import IMAGE_TYPES as IMAGE_TYPES
from ._anthropic_messages import translate_messages as translate_messages

#: OpenAI parameters with no Messages API equivalent that do not change what
#: the answer is: sampling hints, logging and delivery options.
DROPPED = frozenset(
    {
        "n",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "seed",
        "stream_options",
        "service_tier",
        "store",
        "prediction",
        "verbosity",
    }
)
#: OpenAI parameters that ask for something the Messages API cannot do.
UNSUPPORTED = {
    "functions": "the deprecated functions API; use tools",
    "function_call": "the deprecated functions API; use tool_choice",
    "audio": "audio output has no equivalent in the Messages API",
    "web_search_options": "OpenAI's web search has no equivalent here",
}
#: ``reasoning_effort`` -> thinking ``budget_tokens``. The API's floor is
#: 1024; each step doubles or quadruples the one below, as OpenAI's efforts
#: roughly do. ``none`` turns thinking off.
THINKING_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32768}

def messages_body(
    messages: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    *,
    model: str,
    default_max_tokens: int,
    provider: str = "",
) -> dict[str, Any]:
    """The Messages API body for an OpenAI-format request.

    Raises:
        UnsupportedRequestError: a parameter or a part of a message that this
            format cannot carry; its ``parameter`` names it.
    """

    def unsupported(parameter: str, reason: str) -> UnsupportedRequestError:
        return UnsupportedRequestError(parameter, reason, provider)

    for key, reason in UNSUPPORTED.items():
        if params.get(key) is not None:
            raise unsupported(key, reason)
    modalities = params.get("modalities")
    if isinstance(modalities, list) and any(m != "text" for m in modalities):
        raise unsupported("modalities", "the Messages API answers with text only")

    body: dict[str, Any] = {
        k: v
        for k, v in params.items()
        if k not in DROPPED
        and k not in ("tools", "tool_choice", "parallel_tool_calls", "response_format")
        and k not in ("reasoning_effort", "user", "metadata", "max_completion_tokens", "stop")
    }
    stop = params.get("stop")
    if stop and "stop_sequences" not in body:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        max_tokens = params.get("max_completion_tokens")
    body["max_tokens"] = default_max_tokens if max_tokens is None else max_tokens
    metadata = params.get("metadata")
    if isinstance(metadata, dict) and metadata and set(metadata) <= {"user_id"}:
        body["metadata"] = dict(metadata)  # Anthropic's own shape: keep
    if isinstance(params.get("user"), str) and params["user"]:
        body["metadata"] = {**body.get("metadata", {}), "user_id": params["user"]}
    temperature = body.get("temperature")
    if isinstance(temperature, int | float) and temperature > 1:
        body["temperature"] = 1.0

    _tools(body, params, unsupported)
    _output_format(body, params, unsupported)
    _thinking(body, params, unsupported)

    system, turns = translate_messages(messages, unsupported)
    if system and "system" not in body:
        body["system"] = "\n\n".join(system)
    body["model"] = model
    body["messages"] = turns
    body["stream"] = True
    return body


def _tools(body: dict[str, Any], params: Mapping[str, Any], unsupported: Any) -> None:
    tools = params.get("tools")
    if tools:
        if not isinstance(tools, list):
            raise unsupported("tools", "must be a list of function tools")
        body["tools"] = [_tool(tool, i, unsupported) for i, tool in enumerate(tools)]
    choice = params.get("tool_choice")
    translated: dict[str, Any] | None = None
    if choice == "auto":
        translated = {"type": "auto"}
    elif choice == "required":
        translated = {"type": "any"}
    elif choice == "none":
        translated = {"type": "none"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise unsupported("tool_choice", "a function tool_choice needs function.name")
        translated = {"type": "tool", "name": name}
    elif choice is not None:
        kind = choice.get("type") if isinstance(choice, dict) else choice
        raise unsupported("tool_choice", f"{kind!r} has no equivalent in the Messages API")
    if params.get("parallel_tool_calls") is False and tools:
        translated = translated or {"type": "auto"}
        if translated["type"] != "none":
            translated["disable_parallel_tool_use"] = True
    if translated is not None:
        body["tool_choice"] = translated


def _tool(tool: Any, i: int, unsupported: Any) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(
        function, dict
    ):
        kind = tool.get("type") if isinstance(tool, dict) else type(tool).__name__
        raise unsupported(f"tools[{i}]", f"only function tools translate, not {kind!r}")
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise unsupported(f"tools[{i}].function.name", "a tool needs a name")
    schema = function.get("parameters")
    out: dict[str, Any] = {"name": name}
    if function.get("description"):
        out["description"] = function["description"]
    out["input_schema"] = schema if isinstance(schema, dict) else {"type": "object", "properties": {}}
    if function.get("strict") is True:
        out["strict"] = True
    return out


def _output_format(body: dict[str, Any], params: Mapping[str, Any], unsupported: Any) -> None:
    fmt = params.get("response_format")
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else fmt
    if kind == "text":
        return
    if kind == "json_object":
        raise unsupported(
            "response_format",
            "json_object (JSON without a schema) has no equivalent in the Messages API,"
            " which needs a schema: use json_schema",
        )
    if kind != "json_schema":
        raise unsupported("response_format", f"{kind!r} has no equivalent in the Messages API")
    spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise unsupported("response_format.json_schema.schema", "a JSON schema object is required")
    config = body.get("output_config")
    body["output_config"] = {
        **(config if isinstance(config, dict) else {}),
        "format": {"type": "json_schema", "schema": schema},
    }


def _thinking(body: dict[str, Any], params: Mapping[str, Any], unsupported: Any) -> None:
    effort = params.get("reasoning_effort")
    if effort is not None and "thinking" not in body:
        if effort == "none":
            pass
        elif effort in THINKING_BUDGET:
            budget = THINKING_BUDGET[effort]
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
            # budget_tokens must stay under max_tokens; the caller's max_tokens
            # remains what the visible answer may use.
            if isinstance(body["max_tokens"], int) and body["max_tokens"] <= budget:
                body["max_tokens"] += budget
        else:
            known = ", ".join(["none", *THINKING_BUDGET])
            raise unsupported("reasoning_effort", f"{effort!r} is not one of {known}")
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
            raise unsupported(
                "tool_choice",
                "a forced tool call cannot be combined with thinking (reasoning_effort)"
                " in the Messages API",
            )
        body.pop("temperature", None)
        body.pop("top_k", None)
        top_p = body.get("top_p")
        if isinstance(top_p, int | float) and top_p < 0.95:
            body.pop("top_p")
