"""The built-in brain's tool matcher: the right tool for many phrasings, none for chit-chat."""

from __future__ import annotations

import pytest

from talkie.brain.tools import Tool, pick_tool, tools_from_dicts
from talkie.brain.tools.matcher import normalize, stem

TOOLS = tools_from_dicts(
    [
        {
            "name": "get_weather",
            "kind": "webhook",
            "description": "Get the current weather and forecast for a city",
            "examples": [
                "what's the weather in Paris",
                "will it rain tomorrow",
                "how hot is it in Madrid",
                "weather forecast for Berlin",
            ],
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
            "webhook": {"url": "https://weather.example/api", "method": "GET"},
        },
        {
            "name": "track_order",
            "kind": "webhook",
            "description": "Look up the delivery status of a customer's order, parcel or package",
            "examples": [
                "where is my order",
                "track my package",
                "has my parcel shipped",
                "what's the status of order 1234",
            ],
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
            "webhook": {"url": "https://shop.example/orders", "method": "GET"},
        },
        {
            "name": "check_stock",
            "kind": "webhook",
            "description": "Check whether a product is in stock and available to buy",
            "examples": [
                "do you have the red dress in stock",
                "is this product available",
                "are these shoes available in size 9",
            ],
            "parameters": {
                "type": "object",
                "properties": {"product": {"type": "string", "maxLength": 80}},
                "required": ["product"],
            },
            "webhook": {"url": "https://shop.example/stock", "method": "POST"},
        },
        {
            "name": "show_page",
            "kind": "ui",
            "description": "Show a page of the website to the user: pricing, contact or about",
            "examples": [
                "show me the pricing page",
                "open the contact page",
                "take me to the about page",
            ],
            "parameters": {
                "type": "object",
                "properties": {"page": {"type": "string", "enum": ["pricing", "contact", "about"]}},
                "required": ["page"],
            },
        },
    ]
)


@pytest.mark.parametrize(
    ("text", "tool", "arguments"),
    [
        ("What's the weather like in Paris today?", "get_weather", {"city": "Paris"}),
        ("Is it going to rain in London tomorrow?", "get_weather", {"city": "London"}),
        ("How hot will it be in New York?", "get_weather", {"city": "New York"}),
        ("what's the forecast for Rome", "get_weather", {"city": "Rome"}),
        ("Where's my order? It's number 12345", "track_order", {"order_id": "12345"}),
        ("Where is order #A-5521?", "track_order", {"order_id": "A-5521"}),
        ("Can you track my parcel please", "track_order", {}),
        ("Has my package shipped yet?", "track_order", {}),
        ("Do you have the blue hiking boots in stock?", "check_stock",
         {"product": "blue hiking boots"}),
        ("Is the iPhone case available?", "check_stock", {"product": "iPhone case"}),
        ("Are the leather gloves in stock", "check_stock", {"product": "leather gloves"}),
        ("Show me your prices", "show_page", {"page": "pricing"}),
        ("Can you open the contact page?", "show_page", {"page": "contact"}),
        ("take me to your about page", "show_page", {"page": "about"}),
        ("I'd like to see the pricing", "show_page", {"page": "pricing"}),
    ],
)  # fmt: skip
def test_picks_the_right_tool(text: str, tool: str, arguments: dict[str, str]) -> None:
    choice = pick_tool(text, TOOLS)
    assert choice is not None, text
    assert choice.tool.name == tool
    assert choice.arguments == arguments
    assert 0 < choice.score <= 1
    # Required parameters not found are reported, so the brain can ask for them.
    assert choice.missing == tuple(r for r in choice.tool.parameters["required"]
                                   if r not in arguments)  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "hi there, how are you?",
        "what's your name?",
        "tell me a joke",
        "thanks, that's all",
        "I like talking to you",
        "good morning!",
        "what do you think about music",
        "who made you?",
        "can you help me",
        "can you show me something funny",
        "",
        "?!",
    ],
)
def test_chit_chat_picks_nothing(text: str) -> None:
    assert pick_tool(text, TOOLS) is None


def test_no_tools_no_choice() -> None:
    assert pick_tool("what's the weather in Paris", []) is None


def test_threshold_is_a_knob() -> None:
    assert pick_tool("Has my package shipped yet?", TOOLS, threshold=0.99) is None


def test_single_tool_without_examples() -> None:
    tool = Tool.from_dict(
        {
            "name": "search_catalog",
            "kind": "ui",
            "description": "Search the product catalog",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        }
    )
    choice = pick_tool("search the catalog for waterproof jackets", [tool])
    assert choice is not None and choice.arguments == {"query": "waterproof jackets"}
    assert pick_tool("how are you doing", [tool]) is None


def test_url_parameter() -> None:
    tool = Tool.from_dict(
        {
            "name": "summarize_page",
            "kind": "webhook",
            "description": "Summarize a web page",
            "examples": ["summarize this page", "give me a summary of this website"],
            "parameters": {"type": "object", "properties": {"url": {"type": "string"}}},
            "webhook": {"url": "https://tools.example/summary"},
        }
    )
    choice = pick_tool("Could you summarize https://example.org/blog/post-1?", [tool])
    assert choice is not None and choice.arguments == {"url": "https://example.org/blog/post-1"}


def test_normalisation() -> None:
    assert [stem(w) for w in ("prices", "pricing", "price")] == ["pric"] * 3
    assert [stem(w) for w in ("shipped", "shipping", "ships")] == ["ship"] * 3
    assert [stem(w) for w in ("cities", "city")] == ["city", "city"]
    assert stem("status") == "status" and stem("called") == "call"
    assert normalize("Can you PLEASE tell me what's the weather, in 2 days?") == ["weather", "day"]
