"""Tool declarations (``Tool.from_dict``, ``to_openai``) and argument validation."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from talkie.brain.tools import Tool, ToolArgumentError, parse_arguments, tools_from_dicts
from talkie.errors import InvalidInputError
from talkie.server.models import ToolSpec

WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "Get the weather forecast for a city",
    "kind": "webhook",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 2, "maxLength": 40},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "units": {"type": "string", "enum": ["metric", "imperial"]},
            "alerts": {"type": "boolean"},
            "ratio": {"type": "number", "minimum": 0, "maximum": 1},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "where": {
                "type": "object",
                "properties": {"zip": {"type": "string"}},
                "required": ["zip"],
                "additionalProperties": False,
            },
        },
        "required": ["city"],
        "additionalProperties": False,
    },
    "examples": ["what's the weather in Paris"],
    "webhook": {
        "url": "https://weather.example/api",
        "method": "GET",
        "timeout_seconds": 3,
        "secret_env": "WEATHER_TOKEN",
    },
}


def test_from_dict_and_to_openai() -> None:
    tool = Tool.from_dict(WEATHER)
    assert tool.name == "get_weather" and tool.kind == "webhook"
    assert tool.examples == ("what's the weather in Paris",)
    assert tool.webhook is not None
    assert tool.webhook.method == "GET" and tool.webhook.timeout_seconds == 3.0
    assert tool.webhook.secret_env == "WEATHER_TOKEN"
    entry = tool.to_openai()
    assert entry == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather forecast for a city",
            "parameters": WEATHER["parameters"],
        },
    }
    # The tool owns a copy: editing the source or the returned entry changes nothing.
    entry["function"]["parameters"]["required"].append("days")
    assert tool.parameters["required"] == ["city"]
    hash(tool)  # frozen and usable in sets


def test_ui_tool_defaults() -> None:
    tool = Tool.from_dict({"name": "show_page", "description": " Show a page ", "kind": "ui"})
    assert tool.description == "Show a page"
    assert tool.parameters == {"type": "object"} and tool.webhook is None


def _bad(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(WEATHER)
    for key, value in changes.items():
        if "__" in key:
            outer, inner = key.split("__")
            data[outer][inner] = value
        elif value is _DROP:
            del data[key]
        else:
            data[key] = value
    return data


_DROP = object()

BAD_DECLARATIONS = [
    (_bad(name="9lives"), "name"),
    (_bad(name="has space"), "name"),
    (_bad(name=_DROP), "name"),
    (_bad(description=""), "description"),
    (_bad(description="x" * 1001), "description"),
    (_bad(kind="plugin"), "kind"),
    (_bad(parameters={"type": "array"}), "parameters"),
    (
        _bad(parameters={"type": "object", "properties": {"a": {"type": "str"}}}),
        "parameters.properties.a.type",
    ),
    (_bad(parameters={"type": "object", "required": "city"}), "parameters.required"),
    (_bad(examples=["x" * 301]), "examples"),
    (_bad(examples=["a"] * 21), "examples"),
    (_bad(colour="red"), "colour"),
    (_bad(webhook=None), "webhook"),
    (_bad(kind="ui"), "webhook"),
    (_bad(webhook__url="ftp://files.example/x"), "webhook.url"),
    (_bad(webhook__url="file:///etc/passwd"), "webhook.url"),
    (_bad(webhook__method="TRACE"), "webhook.method"),
    (_bad(webhook__timeout_seconds=0), "webhook.timeout_seconds"),
    (_bad(webhook__timeout_seconds=31), "webhook.timeout_seconds"),
    (_bad(webhook__secret_env="lower_case"), "webhook.secret_env"),
    (_bad(webhook__token="abc"), "webhook.token"),
]


@pytest.mark.parametrize(("data", "field"), BAD_DECLARATIONS)
def test_bad_declaration_names_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        Tool.from_dict(data)
    assert repr(field) in str(info.value)


# The API model checks only the top level of a schema; Tool also checks inside it.
@pytest.mark.parametrize(
    ("data", "field"), [c for c in BAD_DECLARATIONS if not c[1].startswith("parameters.")]
)
def test_api_model_agrees(data: dict[str, Any], field: str) -> None:
    """What Tool refuses, the REST API model refuses too (the two are kept in step)."""
    with pytest.raises(ValidationError):
        ToolSpec.model_validate(data)
    ToolSpec.model_validate(WEATHER)


def test_tools_from_dicts_unique_names() -> None:
    assert [t.name for t in tools_from_dicts([WEATHER])] == ["get_weather"]
    assert tools_from_dicts(None) == []
    with pytest.raises(InvalidInputError, match="unique"):
        tools_from_dicts([WEATHER, WEATHER])


# -- arguments --


@pytest.fixture(scope="module")
def weather() -> Tool:
    return Tool.from_dict(WEATHER)


def test_valid_arguments(weather: Tool) -> None:
    args = {
        "city": "Paris",
        "days": 3.0,  # JSON has one number type: 3.0 is an integer
        "units": "metric",
        "alerts": False,
        "ratio": 0.5,
        "tags": ["a", "b"],
        "where": {"zip": "75001"},
    }
    assert weather.validate_arguments(args) == args
    assert weather.validate_arguments('{"city": "Oslo"}') == {"city": "Oslo"}


@pytest.mark.parametrize(
    ("args", "argument", "problem"),
    [
        ({}, "city", "is required"),
        ({"city": 42}, "city", "must be a string"),
        ({"city": "X"}, "city", "at least 2 characters"),
        ({"city": "x" * 41}, "city", "at most 40 characters"),
        ({"city": "Paris", "days": 0}, "days", "at least 1"),
        ({"city": "Paris", "days": 8}, "days", "at most 7"),
        ({"city": "Paris", "days": 2.5}, "days", "must be an integer"),
        ({"city": "Paris", "days": True}, "days", "must be an integer"),
        ({"city": "Paris", "ratio": True}, "ratio", "must be a number"),
        ({"city": "Paris", "ratio": "0.5"}, "ratio", "must be a number"),
        ({"city": "Paris", "units": "kelvin"}, "units", 'one of "metric", "imperial"'),
        ({"city": "Paris", "alerts": "yes"}, "alerts", "must be a boolean"),
        ({"city": "Paris", "tags": "a"}, "tags", "must be a list"),
        ({"city": "Paris", "tags": ["a", 1]}, "tags[1]", "must be a string"),
        ({"city": "Paris", "tags": ["a", "b", "c", "d"]}, "tags", "at most 3 items"),
        ({"city": "Paris", "where": {}}, "where.zip", "is required"),
        ({"city": "Paris", "where": {"zip": "1", "x": 1}}, "where.x", "not a known argument"),
        ({"city": "Paris", "url": "http://127.0.0.1/"}, "url", "not a known argument"),
    ],
)
def test_argument_errors_name_the_argument(
    weather: Tool, args: dict[str, Any], argument: str, problem: str
) -> None:
    with pytest.raises(ToolArgumentError) as info:
        weather.validate_arguments(args)
    assert info.value.argument == argument
    assert problem in str(info.value)
    assert isinstance(info.value, InvalidInputError)


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", "42", 7])
def test_arguments_must_be_a_json_object(raw: Any) -> None:
    with pytest.raises(ToolArgumentError):
        parse_arguments(raw)


def test_empty_arguments() -> None:
    assert parse_arguments("") == {} and parse_arguments(None) == {}
    tool = Tool.from_dict({"name": "ping", "description": "Ping", "kind": "ui"})
    assert tool.validate_arguments("  ") == {}
    assert tool.validate_arguments({"anything": 1}) == {"anything": 1}  # no schema: no limits
