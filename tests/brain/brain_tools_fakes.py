"""Tools and a recording fake ``ToolExecutor`` for the brain's tool tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from talkie.brain.tools import Tool, ToolResult

SHOW_PRODUCT = Tool.from_dict(
    {
        "name": "show_product",
        "description": "Show a product card with its photo and price on the user's screen",
        "kind": "ui",
        "parameters": {
            "type": "object",
            "properties": {"product": {"type": "string"}, "color": {"type": "string"}},
            "required": ["product"],
        },
        "examples": [
            "show me the Trail Runner",
            "can I see the Alpine Jacket",
            "show me a picture of the Summit Boots",
        ],
    }
)
ORDER_STATUS = Tool.from_dict(
    {
        "name": "order_status",
        "description": "Look up where an order is and when it arrives",
        "kind": "webhook",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string", "minLength": 3}},
            "required": ["order_id"],
        },
        "examples": ["where is my order", "has my order A-5521 shipped", "track my package"],
        "webhook": {"url": "https://shop.example/orders", "method": "GET"},
    }
)
TOOLS = (SHOW_PRODUCT, ORDER_STATUS)


class FakeExecutor:
    """Records calls; answers from ``results`` (a ToolResult or a function of the arguments),
    after ``delay`` seconds; counts concurrency and cancellations."""

    def __init__(
        self,
        results: Mapping[str, ToolResult | Callable[[dict[str, Any]], ToolResult]] | None = None,
        *,
        delay: float = 0.0,
    ) -> None:
        self.results = dict(results or {})
        self.delay = delay
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.rejected: list[tuple[str, str]] = []
        self.started = asyncio.Event()
        self.active = 0
        self.max_active = 0
        self.cancelled = 0
        self.on_call: Callable[[], None] | None = None

    async def run(self, tool: Tool, arguments: dict[str, Any]) -> ToolResult:
        self.calls.append((tool.name, arguments))
        if self.on_call is not None:
            self.on_call()
        self.started.set()
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.active -= 1
        answer = self.results.get(tool.name)
        if callable(answer):
            return answer(arguments)
        return answer or ToolResult(ok=True, content={"done": tool.name})

    def record_rejected(self, name: str, result: ToolResult) -> None:
        self.rejected.append((name, result.reason))
