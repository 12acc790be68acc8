"""A character's tool as the brain sees it, and validation of the arguments a brain gives it.

A tool is declared per character (``ToolSpec`` in the REST API): a name, a description the LLM
reads, a ``kind`` (``"ui"``: the browser client acts on it; ``"webhook"``: the server calls a URL),
a JSON schema for its arguments, example requests (for the built-in brain's matcher) and, for a
webhook, where and how to call it.

``Tool.from_dict`` re-validates a declaration with the same rules as the API model, because the
brain must not trust whatever sits in the store (and must not import the server layer). Argument
validation covers the JSON-schema subset a tool declaration realistically uses; keywords outside
it (``description``, ``default``, ``format``...) are accepted and ignored, never enforced wrongly.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from talkie.errors import InvalidInputError

__all__ = [
    "METHODS",
    "Tool",
    "ToolArgumentError",
    "WebhookSettings",
    "check_schema",
    "parse_arguments",
    "tools_from_dicts",
    "validate_arguments",
]

# Same rules as talkie.server.models (kept in step by tests/tools/test_tools_spec.py).
_TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_SECRET_ENV = re.compile(r"^[A-Z][A-Z0-9_]*$")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_TIMEOUT_SECONDS = 30.0
MAX_SCHEMA_CHARS = 20_000
MAX_EXAMPLES = 20
MAX_EXAMPLE_CHARS = 300
# Nesting deeper than this in a schema or in arguments is refused rather than recursed into.
_MAX_DEPTH = 16
_TYPES = ("object", "string", "number", "integer", "boolean", "array", "null")


class ToolArgumentError(InvalidInputError):
    """The arguments given to a tool do not fit its schema. ``argument`` is the path of the
    offending argument (``"city"``, ``"items[2].sku"``; empty for the arguments as a whole)."""

    def __init__(self, argument: str, problem: str) -> None:
        where = f"argument {argument!r}" if argument else "arguments"
        super().__init__(f"{where}: {problem}")
        self.argument = argument
        self.problem = problem


@dataclass(frozen=True)
class WebhookSettings:
    """Where a webhook tool is called. Only the declaration sets these: a brain (an LLM)
    supplies arguments, never the URL, the method or the credentials."""

    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    timeout_seconds: float = 5.0
    # The NAME of an environment variable holding a bearer token, never the token itself.
    secret_env: str | None = None


@dataclass(frozen=True)
class Tool:
    """One declared tool. Build it with ``Tool.from_dict`` (validates)."""

    name: str
    description: str
    kind: Literal["ui", "webhook"]
    # A dict is not hashable, so it is left out of the hash; from_dict deep-copies it so the
    # caller's later edits cannot change a Tool in use.
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object"}, hash=False)
    examples: tuple[str, ...] = ()
    webhook: WebhookSettings | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tool:
        """Validate a declaration (``ToolSpec`` shape) and build the tool.

        Raises ``InvalidInputError`` naming the field, e.g. ``tool field 'webhook.url': ...``.
        """
        if not isinstance(data, Mapping):
            raise InvalidInputError("a tool must be an object")
        _no_unknown(data, ("name", "description", "kind", "parameters", "examples", "webhook"), "")
        name = _text(data, "name", "", required=True, max_len=64)
        if not _TOOL_NAME.match(name):
            raise _field_error(
                "name", "letters, digits, _ and - only, starting with a letter or _ (64 at most)"
            )
        description = _text(data, "description", "", required=True, max_len=1000)
        kind = data.get("kind")
        if kind not in ("ui", "webhook"):
            raise _field_error("kind", 'must be "ui" or "webhook"')
        parameters = data.get("parameters", {"type": "object"})
        if not isinstance(parameters, Mapping) or parameters.get("type") != "object":
            raise _field_error("parameters", 'must be a JSON schema with "type": "object"')
        if len(str(parameters)) > MAX_SCHEMA_CHARS:
            raise _field_error("parameters", "schema is too large (20,000 characters at most)")
        check_schema(parameters)
        examples = _examples(data.get("examples", []))
        webhook = _webhook(data.get("webhook"))
        if kind == "webhook" and webhook is None:
            raise _field_error("webhook", "a webhook tool needs a webhook {url, method}")
        if kind == "ui" and webhook is not None:
            raise _field_error("webhook", "a ui tool has no webhook")
        return cls(
            name=name,
            description=description,
            kind=kind,
            parameters=copy.deepcopy(dict(parameters)),
            examples=examples,
            webhook=webhook,
        )

    def to_openai(self) -> dict[str, Any]:
        """The entry of an OpenAI chat-completions ``tools`` array for this tool."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": copy.deepcopy(self.parameters),
            },
        }

    def validate_arguments(self, arguments: Any) -> dict[str, Any]:
        """Check ``arguments`` (a mapping, or the JSON text an LLM sends) against the schema.

        Returns the arguments as a plain dict; raises ``ToolArgumentError`` naming the argument.
        """
        return validate_arguments(self.parameters, parse_arguments(arguments))


def tools_from_dicts(declarations: Sequence[Mapping[str, Any]] | None) -> list[Tool]:
    """A character's tool list, validated (at most 32, names unique, as the API requires)."""
    tools = [Tool.from_dict(d) for d in declarations or []]
    if len(tools) > 32:
        raise InvalidInputError("a character has at most 32 tools")
    names = [t.name for t in tools]
    if len(names) != len(set(names)):
        raise InvalidInputError("tool names must be unique")
    return tools


def parse_arguments(raw: Any) -> dict[str, Any]:
    """Arguments from an LLM tool call: a JSON object as text (or already a mapping).

    An empty string means no arguments: some servers send ``""`` for a tool without parameters.
    """
    if isinstance(raw, Mapping):
        return dict(raw)
    if raw is None:
        return {}
    if isinstance(raw, str | bytes):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            return {}
        try:
            value = json.loads(text)
        except ValueError:
            raise ToolArgumentError("", "not valid JSON") from None
        if not isinstance(value, dict):
            raise ToolArgumentError("", "must be a JSON object")
        return value
    raise ToolArgumentError("", "must be a JSON object")


def validate_arguments(schema: Mapping[str, Any], arguments: Any) -> dict[str, Any]:
    """Validate ``arguments`` against ``schema`` (the supported subset: ``type`` (one or a list),
    ``properties``, ``required``, ``additionalProperties`` (false or a schema), ``enum``,
    ``const``, ``minLength``/``maxLength``, ``minimum``/``maximum``, ``exclusiveMinimum``/
    ``exclusiveMaximum``, ``items``, ``minItems``/``maxItems``). Raises ``ToolArgumentError``."""
    _check_value(schema, arguments, "", 0)
    if not isinstance(arguments, dict):
        raise ToolArgumentError("", "must be a JSON object")
    return arguments


def check_schema(schema: Mapping[str, Any]) -> None:
    """Refuse a parameters schema that the validator would misread (a typo'd type, a
    ``required`` that is not a list of names...). Raises ``InvalidInputError``."""
    _check_schema(schema, "parameters", 0)


# -- schema checks --


def _check_schema(schema: Any, where: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _field_error(where, "schema is nested too deeply")
    if not isinstance(schema, Mapping):
        raise _field_error(where, "must be a JSON schema object")
    types = schema.get("type")
    if types is not None:
        listed = types if isinstance(types, list) else [types]
        if not listed or any(t not in _TYPES for t in listed):
            raise _field_error(f"{where}.type", f"must be one of {', '.join(_TYPES)}")
    props = schema.get("properties")
    if props is not None:
        if not isinstance(props, Mapping):
            raise _field_error(f"{where}.properties", "must be an object")
        for key, sub in props.items():
            _check_schema(sub, f"{where}.properties.{key}", depth + 1)
    required = schema.get("required")
    if required is not None and (
        not isinstance(required, list) or not all(isinstance(r, str) for r in required)
    ):
        raise _field_error(f"{where}.required", "must be a list of property names")
    extra = schema.get("additionalProperties")
    if extra is not None and not isinstance(extra, bool):
        _check_schema(extra, f"{where}.additionalProperties", depth + 1)
    if "items" in schema:
        _check_schema(schema["items"], f"{where}.items", depth + 1)
    enum = schema.get("enum")
    if enum is not None and (not isinstance(enum, list) or not enum):
        raise _field_error(f"{where}.enum", "must be a non-empty list")
    for key in ("minLength", "maxLength", "minItems", "maxItems"):
        value = schema.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise _field_error(f"{where}.{key}", "must be an integer")
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        value = schema.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise _field_error(f"{where}.{key}", "must be a number")


# -- argument checks --


def _type_ok(kind: str, value: Any) -> bool:
    # bool is an int subclass in Python but never a number in JSON.
    if kind == "object":
        return isinstance(value, dict)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if kind == "array":
        return isinstance(value, list | tuple)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if kind == "integer":
        # JSON has one number type: 3.0 is an integer.
        return isinstance(value, int) or value.is_integer()
    return kind == "number"


def _check_value(schema: Mapping[str, Any], value: Any, path: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise ToolArgumentError(path, "nested too deeply")
    types = schema.get("type")
    if types is not None:
        listed = types if isinstance(types, list) else [types]
        if not any(_type_ok(t, value) for t in listed):
            raise ToolArgumentError(path, f"must be {' or '.join(_a(t) for t in listed)}")
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        options = ", ".join(json.dumps(o) for o in schema["enum"][:10])
        raise ToolArgumentError(path, f"must be one of {options}")
    if "const" in schema and not _same(value, schema["const"]):
        raise ToolArgumentError(path, f"must be {json.dumps(schema['const'])}")
    if isinstance(value, str):
        _check_string(schema, value, path)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(schema, value, path)
    elif isinstance(value, list | tuple):
        _check_array(schema, value, path, depth)
    elif isinstance(value, dict):
        _check_object(schema, value, path, depth)


def _check_string(schema: Mapping[str, Any], value: str, path: str) -> None:
    low, high = schema.get("minLength"), schema.get("maxLength")
    if low is not None and len(value) < low:
        raise ToolArgumentError(path, f"must be at least {low} characters")
    if high is not None and len(value) > high:
        raise ToolArgumentError(path, f"must be at most {high} characters")


def _check_number(schema: Mapping[str, Any], value: float, path: str) -> None:
    if (low := schema.get("minimum")) is not None and value < low:
        raise ToolArgumentError(path, f"must be at least {low}")
    if (high := schema.get("maximum")) is not None and value > high:
        raise ToolArgumentError(path, f"must be at most {high}")
    if (low := schema.get("exclusiveMinimum")) is not None and value <= low:
        raise ToolArgumentError(path, f"must be more than {low}")
    if (high := schema.get("exclusiveMaximum")) is not None and value >= high:
        raise ToolArgumentError(path, f"must be less than {high}")


def _check_array(schema: Mapping[str, Any], value: Sequence[Any], path: str, depth: int) -> None:
    low, high = schema.get("minItems"), schema.get("maxItems")
    if low is not None and len(value) < low:
        raise ToolArgumentError(path, f"must have at least {low} items")
    if high is not None and len(value) > high:
        raise ToolArgumentError(path, f"must have at most {high} items")
    items = schema.get("items")
    if isinstance(items, Mapping):
        for i, item in enumerate(value):
            _check_value(items, item, f"{path}[{i}]", depth + 1)


def _check_object(schema: Mapping[str, Any], value: dict[str, Any], path: str, depth: int) -> None:
    props: Mapping[str, Any] = schema.get("properties") or {}
    for name in schema.get("required") or []:
        if name not in value:
            raise ToolArgumentError(_join(path, name), "is required")
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        sub = props.get(key)
        if sub is None:
            if extra is False:
                raise ToolArgumentError(_join(path, key), "is not a known argument")
            sub = extra if isinstance(extra, Mapping) else None
        if isinstance(sub, Mapping):
            _check_value(sub, item, _join(path, key), depth + 1)


def _same(a: Any, b: Any) -> bool:
    # True == 1 in Python; in JSON a boolean never equals a number.
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _a(kind: str) -> str:
    names = {"object": "an object", "array": "a list", "integer": "an integer", "null": "null"}
    return names.get(kind, f"a {kind}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# -- declaration fields --


def _field_error(name: str, problem: str) -> InvalidInputError:
    return InvalidInputError(f"tool field {name!r}: {problem}")


def _no_unknown(data: Mapping[str, Any], known: Sequence[str], prefix: str) -> None:
    for key in data:
        if key not in known:
            raise _field_error(f"{prefix}{key}", "is not a known field")


def _text(data: Mapping[str, Any], key: str, prefix: str, *, required: bool, max_len: int) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise _field_error(f"{prefix}{key}", "must be a non-empty string")
    value = value.strip()  # the API model strips whitespace too
    if len(value) > max_len:
        raise _field_error(f"{prefix}{key}", f"must be at most {max_len} characters")
    return value


def _examples(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list | tuple) or not all(isinstance(e, str) for e in raw):
        raise _field_error("examples", "must be a list of strings")
    if len(raw) > MAX_EXAMPLES:
        raise _field_error("examples", f"at most {MAX_EXAMPLES} examples")
    if any(len(e.strip()) > MAX_EXAMPLE_CHARS for e in raw):
        raise _field_error("examples", f"each example is at most {MAX_EXAMPLE_CHARS} characters")
    return tuple(e.strip() for e in raw if e.strip())


def _webhook(raw: Any) -> WebhookSettings | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise _field_error("webhook", "must be an object {url, method, ...}")
    _no_unknown(raw, ("url", "method", "timeout_seconds", "secret_env"), "webhook.")
    url = _text(raw, "url", "webhook.", required=True, max_len=2000)
    if not re.match(r"^https?://", url):
        raise _field_error("webhook.url", "must start with http:// or https://")
    try:
        has_host = bool(urlsplit(url).hostname)
    except ValueError:
        has_host = False
    if not has_host:
        raise _field_error("webhook.url", "must be a URL with a host name")
    method = raw.get("method", "POST")
    if method not in METHODS:
        raise _field_error("webhook.method", f"must be one of {', '.join(METHODS)}")
    timeout = raw.get("timeout_seconds", 5.0)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_TIMEOUT_SECONDS
    ):
        raise _field_error("webhook.timeout_seconds", "must be a number above 0 and at most 30")
    secret_env = raw.get("secret_env")
    if secret_env is not None and (
        not isinstance(secret_env, str)
        or len(secret_env) > 100
        or not _SECRET_ENV.match(secret_env)
    ):
        raise _field_error(
            "webhook.secret_env", "must be an environment variable name like ORDERS_API_TOKEN"
        )
    return WebhookSettings(
        url=url, method=method, timeout_seconds=float(timeout), secret_env=secret_env
    )
