"""A person gives their character a voice in the page: describe it, hear it, save it, use it.

Upload a photo, type "a warm older woman, slow and calm", press Preview (real speech from the
server), save it under a name, give it to the character: the page starts a new session and the
session's character speaks with that design."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

from live_browser import TalkiePage
from live_fakes import FakeConversation
from live_server import LiveServer


def _voices(page: TalkiePage) -> dict[str, Any]:
    state: dict[str, Any] = page.page.evaluate("() => window.talkie.voices")
    return state


def test_design_preview_save_and_use_a_voice(
    fake_server: LiveServer, open_page: Any, artifacts: Path
) -> None:
    from PIL import Image
    from skimage import data

    page: TalkiePage = open_page(fake_server)
    buf = io.BytesIO()
    Image.fromarray(data.astronaut()[:, ::-1].copy()).save(buf, format="PNG")
    page.page.set_input_files(
        "#upload-file",
        files=[{"name": "me.png", "mimeType": "image/png", "buffer": buf.getvalue()}],
    )
    page.page.fill("#upload-name", "Grace")
    page.page.click("#upload-button")
    page.page.wait_for_selector("#upload-status.ok", timeout=30_000)
    page.wait_playing(timeout=30, frames=2)
    state = _voices(page)
    assert state["voices"][0] == "piper" and len(state["voices"]) >= 5
    assert state["character"]["voice"] == "piper"
    assert "Grace" in page.page.inner_text("#voices-title")

    page.page.fill("#voice-prompt", "a warm older woman, slow and calm")
    page.page.fill("#voice-text", "Good evening, dear. Shall I tell you a story?")
    page.page.click("#voices .voice-preview")
    page.page.wait_for_function(
        "() => window.talkie.voices.status.startsWith('Here it is') || "
        "window.talkie.voices.status.includes('Press play')", timeout=60_000
    )  # fmt: skip
    preview = _voices(page)["lastPreview"]
    assert preview["seconds"] > 1.5 and preview["bytes"] > 40_000
    assert preview["spec"].startswith("design:") and "pitch=" in preview["spec"]
    notes = page.page.inner_text("#voices .voice-notes")
    assert "woman" in notes and "slow" in notes

    page.page.fill("#voice-name", "Grandma")
    page.page.click("#voices .voice-save")
    page.page.wait_for_function("() => window.talkie.voices.status.startsWith('Saved')")
    saved = _voices(page)["selected"]
    assert saved.startswith("voice:v_")
    assert "Grandma" in page.page.inner_text("#voice-select")

    session_before = page.page.evaluate("() => window.talkie.sessionId")
    page.page.click("#voices .voice-use")
    page.page.wait_for_function("() => window.talkie.voices.status.includes('now speaks')")
    assert _voices(page)["character"]["voice"] == saved
    # a new session starts, with the new voice
    page.page.wait_for_function(
        f"() => window.talkie.sessionId && window.talkie.sessionId !== {session_before!r}",
        timeout=30_000,
    )
    page.wait_playing(timeout=30, frames=2)
    deadline = time.monotonic() + 30
    while len(FakeConversation.instances) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # the offer reaches the server a moment after the session is created
    spoken = FakeConversation.instances[-1].character.voice
    assert spoken.startswith("design:") and "pitch=184.5" in spoken
    page.page.locator("#voices").screenshot(path=str(artifacts / "page-voices.png"))
