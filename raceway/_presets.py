"""Presets: provider definitions for well-known services, so a bare name works.

Each entry is the definition a user would otherwise write under
``providers:``; a user's own entry of the same name is laid over it key by key
(``groq: {api_key_env: MY_GROQ_KEY}`` keeps the preset's base URL). Base URLs
and key variables come from each service's public API documentation.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # https://platform.openai.com/docs/api-reference/chat
    "openai": {"type": "openai", "base_url": "https://api.openai.com/v1", "api_key_env": "OPENAI_API_KEY"},
    # https://docs.anthropic.com/en/api/messages
    "anthropic": {
        "type": "anthropic",
        "base_url": "https://api.anthropic.com",
        "api_key_env": "ANTHROPIC_API_KEY",
    },
    # https://openrouter.ai/docs/api-reference/overview
    "openrouter": {
        "type": "openai",
        "base_url": "https://openrouter.ai/api/v1",
        "api_key_env": "OPENROUTER_API_KEY",
    },
    # https://console.groq.com/docs/openai
    "groq": {"type": "openai", "base_url": "https://api.groq.com/openai/v1", "api_key_env": "GROQ_API_KEY"},
    # https://docs.together.ai/docs/openai-api-compatibility
    "together": {"type": "openai", "base_url": "https://api.together.xyz/v1", "api_key_env": "TOGETHER_API_KEY"},
    # https://api-docs.deepseek.com/
    "deepseek": {"type": "openai", "base_url": "https://api.deepseek.com/v1", "api_key_env": "DEEPSEEK_API_KEY"},
    # https://docs.mistral.ai/api/
    "mistral": {"type": "openai", "base_url": "https://api.mistral.ai/v1", "api_key_env": "MISTRAL_API_KEY"},
    # https://inference-docs.cerebras.ai/resources/openai
    "cerebras": {"type": "openai", "base_url": "https://api.cerebras.ai/v1", "api_key_env": "CEREBRAS_API_KEY"},
    # https://ai.google.dev/gemini-api/docs/openai
    "gemini": {
        "type": "openai",
        "base_url": "https://generativelanguage.googleapis.com/v1beta/openai",
        "api_key_env": "GEMINI_API_KEY",
    },
    # https://www.alibabacloud.com/help/en/model-studio/compatibility-of-openai-with-dashscope
    "qwen": {
        "type": "openai",
        "base_url": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        "api_key_env": "DASHSCOPE_API_KEY",
    },
    # https://docs.fireworks.ai/tools-sdks/openai-compatibility
    "fireworks": {
        "type": "openai",
        "base_url": "https://api.fireworks.ai/inference/v1",
        "api_key_env": "FIREWORKS_API_KEY",
    },
    # https://docs.x.ai/docs/api-reference
    "xai": {"type": "openai", "base_url": "https://api.x.ai/v1", "api_key_env": "XAI_API_KEY"},
    # https://deepinfra.com/docs/openai_api
    "deepinfra": {
        "type": "openai",
        "base_url": "https://api.deepinfra.com/v1/openai",
        "api_key_env": "DEEPINFRA_API_KEY",
    },
    # https://github.com/ollama/ollama/blob/main/docs/openai.md (local, no key)
    "ollama": {"type": "openai", "base_url": "http://localhost:11434/v1"},
    # https://lmstudio.ai/docs/app/api/endpoints/openai (local, no key)
    "lmstudio": {"type": "openai", "base_url": "http://localhost:1234/v1"},
}
PRESETS["lm_studio"] = PRESETS["lmstudio"]
