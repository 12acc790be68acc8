"""The widget with the real conversation: a person on another site's page asks, through the
(fake) microphone, for something a UI tool of that site does; the real ears, the built-in brain
and the voice answer, and the tool the site registered with ``registerTool`` runs in its page.

The built-in brain (no LLM) picks the tool from its examples, so the test is exact; the local
model is switched off for this server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_browser import launch_chromium, make_question_wav
from live_host import HostSite
from live_server import LiveServer

from talkie.server.app import ServerOptions

SHOTS = Path("/tmp/talkie-widget")
SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "samples" / "astronaut.png"
QUESTION = "Can you show me the opening hours?"
QUESTION_DELAY = 7.0  # after the greeting
TOOL = {
    "name": "show_opening_hours", "kind": "ui",
    "description": "Show the shop's opening hours on the user's screen",
    "examples": ["show me the opening hours", "when are you open"],
}  # fmt: skip
HOST_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Bakery</title>
<style>body { font: 17px Georgia, serif; background: #fbf6ee; margin: 20px; }</style></head>
<body><h1>Acme Bakery</h1><p id="hours">Monday to Saturday, 7:00 to 18:00.</p>
<div style="width: 560px"><talkie-character></talkie-character></div>
<script src="SERVER/widget.js" async></script></body></html>"""


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[LiveServer, HostSite, str, str]]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TALKIE_LOCAL_LLM", "0")
        env.delenv("TALKIE_LLM_BASE_URL", raising=False)
        server = LiveServer(options=ServerOptions(max_sessions=1)).start()
        site = HostSite()
        try:
            with server.admin() as admin:
                r = admin.post(
                    "/v1/characters",
                    files={"image": ("ada.png", SAMPLE.read_bytes(), "image/png")},
                    data={"name": "Ada", "greeting": "Hello!", "tools": json.dumps([TOOL])},
                )
                assert r.status_code == 201, r.text
                character = r.json()["id"]
                k = admin.post("/v1/keys", json={
                    "name": "bakery", "scopes": ["sessions"], "publishable": True,
                    "origins": [site.url], "tenant": "admin", "characters": [character],
                })  # fmt: skip
                assert k.status_code == 201, k.text
            site.pages["/"] = HOST_PAGE.replace("SERVER", server.url)
            yield server, site, character, k.json()["secret"]
        finally:
            site.close()
            server.stop()


@pytest.fixture(scope="module")
def asking_browser(playwright_instance: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    wav = make_question_wav(
        tmp_path_factory.mktemp("widget-real") / "hours.wav", QUESTION,
        before=QUESTION_DELAY, after=4.0,
    )  # fmt: skip
    browser = launch_chromium(playwright_instance, fake_audio=wav)
    try:
        yield browser
    finally:
        browser.close()


def test_spoken_request_runs_the_sites_ui_tool(
    world: tuple[LiveServer, HostSite, str, str], asking_browser: Any
) -> None:
    server, site, character, key = world
    page = asking_browser.new_context(viewport={"width": 900, "height": 900}).new_page()
    page.goto(site.url + "/")
    widget = page.locator("talkie-character")
    page.wait_for_function("() => customElements.get('talkie-character')", timeout=10_000)
    widget.evaluate(
        """(el, [character, key]) => {
             el.setAttribute("character", character);
             el.setAttribute("key", key);
             window.__testEvents = [];
             for (const type of ["live", "transcript", "reply", "toolcall", "error", "latency"]) {
               el.addEventListener(type, (e) => window.__testEvents.push({type, detail: e.detail}));
             }
             el.registerTool("show_opening_hours", async () => {
               const p = document.getElementById("hours");
               p.dataset.shown = "yes";
               return { hours: p.textContent };
             });
           }""",
        [character, key],
    )
    assert widget.evaluate("el => el.start()") is True

    def event(predicate: str, timeout: float) -> dict[str, Any]:
        handle = page.wait_for_function(
            f"() => window.__testEvents.find((e) => {predicate})", timeout=timeout * 1000
        )
        found: dict[str, Any] = handle.json_value()
        return found

    live = event("e.type === 'live'", 60)
    assert widget.locator(".name").inner_text() == "Ada"  # attributes set after the tag loaded
    heard = event("e.type === 'transcript' && e.detail.final && /hours/i.test(e.detail.text)", 60)
    call = event("e.type === 'toolcall'", 30)
    assert call["detail"]["name"] == "show_opening_hours"
    page.wait_for_function("() => document.getElementById('hours').dataset.shown === 'yes'")
    answer = event("e.type === 'reply' && /on your screen/.test(e.detail.text)", 30)
    latency = event("e.type === 'latency' && e.detail.server > 0", 30)
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "widget-real-tool.png"))
    # The server's trace of the turn (written when the turn ends) has the call, done.
    session_id = widget.evaluate("el => el.sessionId")
    deadline = time.monotonic() + 20
    with server.admin() as admin:
        while True:
            traces = admin.get(f"/v1/sessions/{session_id}/traces").json()["turns"]
            tools = [t for turn in traces for t in turn.get("tools", [])]
            if tools or time.monotonic() > deadline:
                break
            time.sleep(0.3)
    assert [(t["name"], t["ok"]) for t in tools] == [("show_opening_hours", True)], traces
    widget.evaluate("el => el.end()")
    print(
        f"\nreal widget: first frame {live['detail']['firstFrameMs']} ms after start() "
        f"(steps {live['detail']['steps']}); heard "
        f"{heard['detail']['text']!r}; said {answer['detail']['text']!r}; "
        f"latency {latency['detail']}"
    )
