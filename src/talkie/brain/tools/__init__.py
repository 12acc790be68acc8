"""A character's tools: their declaration (``Tool``), safe webhook calls (``WebhookCaller``) and,
for the built-in brain without an LLM, picking a tool from what the user said (``pick_tool``).

An LLM brain sends ``[t.to_openai() for t in tools]`` as the request's ``tools``, checks each
call's arguments with ``Tool.validate_arguments`` (``WebhookCaller.call`` does it too), hands the
call to its ``ToolExecutor`` and feeds ``ToolResult.to_message()`` back as the ``tool`` message.
The executor is the session's: it forwards a ``"ui"`` tool to the browser client and calls a
``"webhook"`` tool through ``WebhookCaller``.
"""

from __future__ import annotations

from talkie.brain.tools.executor import ToolExecutor
from talkie.brain.tools.matcher import ToolChoice, extract_arguments, pick_tool
from talkie.brain.tools.netguard import (
    NetworkPolicy,
    Resolver,
    classify_address,
    parse_host,
    system_resolve,
)
from talkie.brain.tools.spec import (
    Tool,
    ToolArgumentError,
    WebhookSettings,
    parse_arguments,
    tools_from_dicts,
    validate_arguments,
)
from talkie.brain.tools.webhook import ToolResult, WebhookCaller, WebhookOptions

__all__ = [
    "NetworkPolicy",
    "Resolver",
    "Tool",
    "ToolArgumentError",
    "ToolChoice",
    "ToolExecutor",
    "ToolResult",
    "WebhookCaller",
    "WebhookOptions",
    "WebhookSettings",
    "classify_address",
    "extract_arguments",
    "parse_arguments",
    "parse_host",
    "pick_tool",
    "system_resolve",
    "tools_from_dicts",
    "validate_arguments",
]
