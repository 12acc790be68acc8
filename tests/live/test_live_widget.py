"""The embeddable widget (web/widget.js + <talkie-character>) on a host page of ANOTHER origin.

The host site is a second HTTP server on its own port; the Talkie server checks the widget's
publishable key against that origin. The widget connects, shows live video, hears the (fake)
microphone, answers typed text, runs a UI tool the host page registered, fails clearly with a
wrong key, a wrong origin or a denied microphone, and leaves the host page as it found it
(computed styles of its elements, its globals). Screenshots go to /tmp/talkie-widget.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_browser import launch_chromium, make_question_wav
from live_fakes import FakeConversation
from live_host import HostSite
from live_server import LiveServer

SHOTS = Path("/tmp/talkie-widget")
WEB = Path(__file__).resolve().parents[2] / "web"
WIDGET_MODULES = (
    "widget.js", "widget-element.js", "widget-style.js", "live-session.js", "captions.js",
    "tools.js", "meter.js",
)  # fmt: skip

# A host page with loud styles of its own, some aimed at what the widget has inside (video,
# button, .panel, .overlay): none may reach into the widget, and the widget none of them.
HOST_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Host</title><style>
body { font: 18px/1.7 Georgia, serif; color: rgb(40, 30, 20); background: rgb(250, 245, 235);
       margin: 0; padding: 16px; letter-spacing: 0.5px; }
h1 { color: rgb(120, 20, 20); text-transform: uppercase; }
button { background: rgb(0, 0, 0); color: rgb(255, 255, 255); padding: 3px; border-radius: 0; }
video { border: 9px solid rgb(255, 0, 0); }
.panel, .overlay { display: none !important; }
p { margin: 12px 0; }
#slot { width: 640px; }
</style></head><body>
<h1 id="title">Acme Outdoor</h1>
<p id="para">Hiking shoes and <a id="link" href="#">jackets</a>.</p>
<button id="btn" type="button">Host button</button>
<input id="field" value="host input">
<div id="slot"></div>
</body></html>"""

HOST_ELEMENTS = ("html", "body", "#title", "#para", "#link", "#btn", "#field")
# Properties that follow the page's size, which the widget's box rightly changes.
SIZE_PROPS = ("height", "block-size", "perspective-origin", "transform-origin")

_STYLES_JS = """([selectors, skip]) => Object.fromEntries(selectors.map((sel) => {
  const cs = getComputedStyle(document.querySelector(sel));
  const out = {};
  for (const name of cs) if (!skip.includes(name)) out[name] = cs.getPropertyValue(name);
  return [sel, out];
}))"""
_GLOBALS_JS = "() => Object.getOwnPropertyNames(window).filter((n) => !n.startsWith('__test'))"
_INJECT_JS = """([server, attrs]) => {
  const s = document.createElement("script");
  s.src = server + "/widget.js";
  s.async = true;
  document.head.append(s);
  const el = document.createElement("talkie-character");
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  document.getElementById("slot").append(el);
  window.__testEvents = [];
  const types = ["state", "transcript", "reply", "toolcall", "error", "latency", "live", "ended"];
  for (const type of types) {
    el.addEventListener(type, (e) => window.__testEvents.push({ type, detail: e.detail }));
  }
  return customElements.whenDefined("talkie-character").then(() => true);
}"""
_PLAYING_JS = """(n) => { const el = document.querySelector("talkie-character");
  const v = el && el.shadowRoot.querySelector("video");
  return v && v.readyState >= 2 && !v.paused && v.videoWidth > 0 &&
         v.getVideoPlaybackQuality().totalVideoFrames >= n; }"""


def _widget(page: Any) -> Any:
    return page.locator("talkie-character")


def _shadow(page: Any, selector: str) -> Any:
    return page.locator("talkie-character").locator(selector)  # Playwright pierces open roots


def _event(page: Any, predicate: str, timeout: float = 15.0) -> dict[str, Any]:
    handle = page.wait_for_function(
        f"() => (window.__testEvents || []).find((e) => {predicate})", timeout=timeout * 1000
    )
    found: dict[str, Any] = handle.json_value()
    return found


@pytest.fixture(scope="module")
def question_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake microphone's question, late enough to be sent after connecting on a busy
    machine (audio captured before the connection exists is not sent anywhere)."""
    return make_question_wav(tmp_path_factory.mktemp("widget") / "question.wav", before=5.0)


@pytest.fixture(scope="module")
def host() -> Iterator[HostSite]:
    site = HostSite()
    site.pages["/"] = HOST_PAGE
    try:
        yield site
    finally:
        site.close()


def _publishable_key(server: LiveServer, origins: list[str]) -> str:
    with server.admin() as admin:
        r = admin.post("/v1/keys", json={
            "name": "site", "scopes": ["sessions"], "publishable": True, "origins": origins,
            "tenant": "admin", "characters": ["astronaut"],
        })  # fmt: skip
        assert r.status_code == 201, r.text
        secret: str = r.json()["secret"]
        return secret


@pytest.fixture(scope="module")
def site_key(fake_server: LiveServer, host: HostSite) -> str:
    return _publishable_key(fake_server, [host.url])


@pytest.fixture()
def tab(chromium: Any) -> Iterator[Callable[..., Any]]:
    contexts: list[Any] = []

    def open_tab(url: str, **options: Any) -> Any:
        context = chromium.new_context(**{"viewport": {"width": 1280, "height": 860}, **options})
        contexts.append(context)
        page = context.new_page()
        page.console_lines = []  # type: ignore[attr-defined]
        page.on("console", lambda m: page.console_lines.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: page.console_lines.append(f"pageerror: {e}"))
        page.goto(url)
        return page

    yield open_tab
    for context in contexts:
        context.close()


def test_widget_on_another_origin_connects_talks_runs_a_tool_and_leaves_the_page_alone(
    fake_server: LiveServer, host: HostSite, site_key: str, tab: Callable[..., Any]
) -> None:
    page = tab(host.url + "/")
    skip = list(SIZE_PROPS)
    styles_before = page.evaluate(_STYLES_JS, [list(HOST_ELEMENTS), skip])
    globals_before = set(page.evaluate(_GLOBALS_JS))

    attrs = {"character": "astronaut", "key": site_key, "style": "--talkie-accent: rgb(1, 2, 3)"}
    page.evaluate(_INJECT_JS, [fake_server.url, attrs])
    _shadow(page, ".overlay button").wait_for(state="visible", timeout=10_000)
    # themed by a custom property, from outside the shadow root
    accent = _shadow(page, "button.call").evaluate("b => getComputedStyle(b).backgroundColor")
    assert accent == "rgb(1, 2, 3)"
    assert _shadow(page, ".panel").get_attribute("role") is None  # inline: no dialog
    page.wait_for_function(  # the character's name and picture came through the key
        "() => document.querySelector('talkie-character').shadowRoot"
        ".querySelector('.name').textContent === 'Nova'", timeout=10_000,
    )  # fmt: skip
    page.screenshot(path=str(SHOTS / "widget-inline-ready.png"))
    page.evaluate(
        """() => document.querySelector("talkie-character").registerTool("pick_color",
             async (args) => { window.__testToolArgs = args; return { picked: args.color }; })"""
    )

    # Start with the keyboard, as a person without a mouse would: Tab reaches the controls.
    _shadow(page, "button.call").focus()
    page.keyboard.press("Enter")
    live = _event(page, "e.type === 'live'", timeout=30)
    page.wait_for_function(_PLAYING_JS, arg=10, timeout=30_000)
    assert live["detail"]["firstFrameMs"] > 0
    session_id = _widget(page).evaluate("el => el.sessionId")
    assert session_id and session_id.startswith("se_")
    conv = FakeConversation.instances[-1]

    # Typed text goes out; the answer comes back as an event and as a caption (text).
    assert _widget(page).evaluate("el => el.say('hello there')")
    reply = _event(page, "e.type === 'reply'")
    assert reply["detail"]["text"] == "You said: hello there"
    _shadow(page, ".captions .line.character").wait_for(timeout=5000)
    assert "You said: hello there" in _shadow(page, ".captions").inner_text()
    _event(page, "e.type === 'latency' && e.detail.server > 0")
    _event(page, "e.type === 'state' && e.detail.state === 'speaking'")

    # The character calls a UI tool: the handler the host page registered runs, the result
    # goes back to the conversation.
    _widget(page).evaluate("""el => el.say('tool:pick_color {"color": "teal"}')""")
    call = _event(page, "e.type === 'toolcall'")
    assert call["detail"]["name"] == "pick_color"
    page.wait_for_function("() => window.__testToolArgs", timeout=5000)
    assert page.evaluate("() => window.__testToolArgs") == {"color": "teal"}
    _wait(lambda: bool(conv.tool_results), "the tool's result")
    assert conv.tool_results[0]["ok"] is True
    assert conv.tool_results[0]["result"] == {"picked": "teal"}
    assert conv.tool_results[0]["id"] == call["detail"]["id"]
    # a built-in one: a card over the video, inside the widget
    page.evaluate(
        """() => document.querySelector('talkie-character').say('tool:show_card '
             + JSON.stringify({title: "Trail Runner", price: "$89", text: "Light trail shoe."}))"""
    )
    _shadow(page, ".tool-card h4").wait_for(timeout=5000)

    # The fake microphone (a spoken question) reached the server through the widget.
    _wait(lambda: conv.mic_peak > 0.02, "the spoken question from the microphone", timeout=20)
    muted = _widget(page).evaluate("el => el.mute()")
    assert muted is True
    assert _shadow(page, "button.mute").get_attribute("aria-pressed") == "true"
    # a muted microphone sends silence: its track is off
    assert _widget(page).evaluate("el => el.mic.getAudioTracks()[0].enabled") is False

    # The widget's insides ignore the host's CSS aimed at them.
    video_border = _shadow(page, "video").evaluate("v => getComputedStyle(v).borderTopWidth")
    assert video_border == "0px"
    assert _shadow(page, ".panel").evaluate("p => getComputedStyle(p).display") == "flex"
    page.wait_for_timeout(400)  # the card's fade-in
    page.screenshot(path=str(SHOTS / "widget-inline-live.png"))

    # Controls are labelled for screen readers.
    for selector in ("button.call", "button.mute", "input"):
        name = _shadow(page, selector).evaluate(
            "n => n.getAttribute('aria-label') || n.textContent || n.labels?.[0]?.textContent"
        )
        assert name and name.strip(), selector
    assert _shadow(page, ".captions").get_attribute("role") == "log"

    _widget(page).evaluate("el => el.end()")
    _event(page, "e.type === 'ended'")
    _wait(lambda: len(fake_server.registry) == 0, "the session to end on the server")
    with fake_server.admin() as admin:
        assert admin.get(f"/v1/sessions/{session_id}").json()["status"] == "ended"

    # The host page is as it was: computed styles of its elements, and no new globals.
    styles_after = page.evaluate(_STYLES_JS, [list(HOST_ELEMENTS), skip])
    changed = {
        sel: {k: (v, after) for k, v in props.items() if (after := styles_after[sel].get(k)) != v}
        for sel, props in styles_before.items()
    }
    assert not any(changed.values()), changed
    assert set(page.evaluate(_GLOBALS_JS)) - globals_before == set()
    errors = [c for c in page.console_lines if c.startswith("pageerror")]
    assert not errors, errors
    print(f"\nwidget: first frame {live['detail']['firstFrameMs']} ms after start() "
          f"(steps {live['detail']['steps']})")


@pytest.mark.parametrize(
    ("case", "code", "words"),
    [
        ("wrong_origin", "origin_not_allowed", "not allowed on this website"),
        ("wrong_key", "invalid_key", "key is not valid"),
        ("secret_key", "secret_key", "only publishable keys"),
        ("wrong_character", "unknown_character", "was not found for this key"),
    ],
)
def test_widget_says_clearly_what_is_wrong(
    fake_server: LiveServer, host: HostSite, tab: Callable[..., Any],
    case: str, code: str, words: str,
) -> None:  # fmt: skip
    keys = {
        "wrong_origin": lambda: _publishable_key(fake_server, ["https://elsewhere.example"]),
        "wrong_key": lambda: "pk_0123456789ab_" + "x" * 43,
        "secret_key": lambda: fake_server.admin_key,
        "wrong_character": lambda: _publishable_key(fake_server, [host.url]),
    }
    key = keys[case]()
    character = "ch_nobody" if case == "wrong_character" else "astronaut"
    page = tab(host.url + "/")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.headers.get("authorization") or ""))
    page.evaluate(_INJECT_JS, [fake_server.url, {"character": character, "key": key}])
    started = _widget(page).evaluate("el => el.start()")
    assert started is False
    error = _event(page, "e.type === 'error' && e.detail.fatal")
    assert error["detail"]["code"] == code
    overlay = _shadow(page, ".overlay")
    assert words in overlay.inner_text(), overlay.inner_text()
    if case == "wrong_origin":
        assert host.url in overlay.inner_text()  # names the site that is not allowed
    if case == "secret_key":  # never sent anywhere
        assert not [a for a in sent if "tk_" in a], sent
    assert len(fake_server.registry) == 0
    page.screenshot(path=str(SHOTS / f"widget-error-{case}.png"))


def test_widget_with_the_microphone_denied_still_talks_by_text(
    playwright_instance: Any, fake_server: LiveServer, host: HostSite, site_key: str
) -> None:
    browser = launch_chromium(playwright_instance, mic=False)
    try:
        page = browser.new_context(viewport={"width": 900, "height": 800}).new_page()
        page.goto(host.url + "/")
        page.evaluate(_INJECT_JS, [fake_server.url, {"character": "astronaut", "key": site_key}])
        assert _widget(page).evaluate("el => el.start()") is True
        error = _event(page, "e.type === 'error'")
        assert error["detail"]["code"] == "microphone_denied" and error["detail"]["fatal"] is False
        assert "Microphone access was denied" in _shadow(page, ".note").inner_text()
        page.wait_for_function(_PLAYING_JS, arg=3, timeout=30_000)
        assert _shadow(page, "button.mute").is_disabled()
        _shadow(page, "input").wait_for(state="visible")
        _shadow(page, "input:not([disabled])").wait_for(timeout=10_000)
        _shadow(page, "input").fill("typing works")
        _shadow(page, "input").press("Enter")
        reply = _event(page, "e.type === 'reply'")
        assert reply["detail"]["text"] == "You said: typing works"
        page.screenshot(path=str(SHOTS / "widget-mic-denied.png"))
        _widget(page).evaluate("el => el.end()")
    finally:
        browser.close()


LAUNCHER_TAG = (
    '<script src="SERVER/widget.js" data-character="astronaut" data-key="KEY" '
    'data-labels=\'{"open": "Chat with {name}"}\' async></script>'
)


@pytest.mark.parametrize(
    ("layout", "options"),
    [
        ("desktop", {"viewport": {"width": 1280, "height": 860}}),
        ("mobile", {"viewport": {"width": 390, "height": 844}, "is_mobile": True,
                    "has_touch": True, "device_scale_factor": 2}),
    ],
)  # fmt: skip
def test_launcher_bubble_from_one_script_tag(
    fake_server: LiveServer, host: HostSite, site_key: str, tab: Callable[..., Any],
    layout: str, options: dict[str, Any],
) -> None:  # fmt: skip
    tag = LAUNCHER_TAG.replace("SERVER", fake_server.url).replace("KEY", site_key)
    host.pages["/launcher"] = HOST_PAGE.replace("</body>", tag + "</body>")
    page = tab(host.url + "/launcher", **options)
    bubble = _shadow(page, "button.bubble")
    bubble.wait_for(timeout=10_000)
    page.wait_for_function(  # its picture is the character's
        "() => { const i = document.querySelector('talkie-character').shadowRoot"
        ".querySelector('.bubble img'); return i && i.complete && i.naturalWidth > 0; }",
        timeout=10_000,
    )
    assert bubble.get_attribute("aria-label") == "Chat with Nova"  # data-labels overrides
    assert bubble.get_attribute("aria-expanded") == "false"
    page.screenshot(path=str(SHOTS / f"widget-launcher-{layout}-closed.png"))
    page.evaluate(
        """() => { window.__testEvents = [];
             const el = document.querySelector('talkie-character');
             for (const type of ['live', 'error']) {
               el.addEventListener(type, (e) => window.__testEvents.push({type, detail: e.detail}));
             } }"""
    )
    if options.get("has_touch"):
        bubble.tap()
    else:
        bubble.click()
    _event(page, "e.type === 'live'", timeout=30)
    page.wait_for_function(_PLAYING_JS, arg=5, timeout=30_000)
    assert bubble.get_attribute("aria-expanded") == "true"
    assert _shadow(page, ".panel").get_attribute("role") == "dialog"
    panel = _shadow(page, ".panel").bounding_box()
    viewport = options["viewport"]
    if layout == "mobile":  # the whole screen
        assert panel["width"] == viewport["width"] and panel["height"] == viewport["height"]
    else:  # a panel above the bubble, inside the window
        assert 300 <= panel["width"] <= 420 and panel["y"] >= 0
        assert panel["x"] + panel["width"] <= viewport["width"]
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / f"widget-launcher-{layout}-open.png"))
    # Escape closes it (and hangs up); focus goes back to the bubble.
    _shadow(page, "input").focus()
    page.keyboard.press("Escape")
    _wait(lambda: len(fake_server.registry) == 0, "the session to end")
    assert _widget(page).evaluate("el => el.hasAttribute('open')") is False


def test_embed_snippet_and_widget_files(fake_server: LiveServer, host: HostSite) -> None:
    with fake_server.admin() as admin:
        r = admin.get("/v1/characters/astronaut/embed", params={"origin": "https://Shop.Example/"})
        assert r.status_code == 200, r.text
        embed = r.json()
        assert admin.get("/v1/characters/nobody/embed").status_code == 404
        assert admin.get("/v1/characters/astronaut/embed?origin=ftp://x").status_code == 400
    widget_url = f"{fake_server.url}/widget.js"
    assert embed["widget_url"] == widget_url
    assert embed["script"] == (
        f'<script src="{widget_url}" data-character="astronaut" '
        'data-key="pk_YOUR_PUBLISHABLE_KEY" async></script>'
    )
    tag = '<talkie-character character="astronaut" key="pk_YOUR_PUBLISHABLE_KEY">'
    assert tag in embed["element"]
    assert "--publishable --origin https://shop.example --tenant admin --character astronaut" in (
        embed["create_key"]
    )
    # No key of any kind in a snippet.
    text = json.dumps(embed)
    assert "tk_" not in text and fake_server.admin_key not in text
    # Unauthenticated: refused.
    assert httpx.get(f"{fake_server.url}/v1/characters/astronaut/embed").status_code == 401

    # The widget's files are served as JavaScript, readable from any origin (CORS), so a
    # module loaded from another site's page works.
    total = zipped = 0
    for name in WIDGET_MODULES:
        res = httpx.get(f"{fake_server.url}/{name}", headers={"Origin": host.url})
        assert res.status_code == 200, name
        assert "javascript" in res.headers["content-type"], name
        assert res.headers.get("access-control-allow-origin") == "*", name
        total += len(res.content)
        zipped += len(gzip.compress(res.content, 9))
    assert (WEB / "widget.js").read_bytes() == httpx.get(widget_url).content
    print(f"\nwidget size: {total} bytes, {zipped} bytes gzipped ({len(WIDGET_MODULES)} files)")


def _wait(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(autouse=True, scope="module")
def _shots() -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)


def test_page_shows_the_snippet_and_the_demo_page_works(
    fake_server: LiveServer, open_page: Callable[[LiveServer], Any], tab: Callable[..., Any]
) -> None:
    page = open_page(fake_server)
    page.pick("astronaut")
    page.page.wait_for_function(
        "() => document.querySelector('#embed .embed-script').textContent.includes('widget.js')",
        timeout=10_000,
    )
    page.page.fill("#embed-origin", "https://shop.example")
    page.page.dispatch_event("#embed-origin", "change")
    page.page.wait_for_function(
        "() => document.querySelector('#embed .embed-key').textContent.includes('shop.example')",
        timeout=10_000,
    )
    script = page.page.inner_text("#embed .embed-script")
    assert f'src="{fake_server.url}/widget.js" data-character="astronaut"' in script
    page_key = page.page.evaluate("async () => (await (await fetch('/api/config')).json()).api_key")
    shown = page.page.inner_text("#embed")
    assert page_key not in shown and "tk_" not in shown  # a placeholder, never a real key
    page.page.locator("#embed").screenshot(path=str(SHOTS / "page-embed-panel.png"))

    # The demo page (served by Talkie itself) starts its inline widget.
    demo = tab(fake_server.url + "/widget-demo.html")
    widget = demo.locator("talkie-character")
    demo.wait_for_function(
        "() => customElements.get('talkie-character') && "
        "document.querySelector('talkie-character').getAttribute('key')",
        timeout=10_000,
    )
    assert widget.evaluate("el => el.start()") is True
    demo.wait_for_function(_PLAYING_JS, arg=5, timeout=30_000)
    assert widget.locator("button.call").inner_text() == "End"  # started from script
    demo.click("#demo-say")
    widget.locator(".captions .line.character").wait_for(timeout=10_000)
    demo.wait_for_timeout(300)
    demo.screenshot(path=str(SHOTS / "widget-demo-page.png"))
    widget.evaluate("el => el.end()")
    assert not [c for c in demo.console_lines if c.startswith("pageerror")], demo.console_lines
