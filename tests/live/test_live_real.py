"""End to end with the real conversation: the browser sees the character live, hears the greeting,
asks "What is your name?" through the (fake) microphone and gets an answer.

The question is padded with 8 s of silence so it comes after the greeting; the fake microphone
starts when the page opens it (on the click that picks the character).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from live_browser import TalkiePage, launch_chromium, make_question_wav, turn_latency_ms
from live_server import LiveServer

QUESTION_DELAY = 8.0


@pytest.fixture(scope="module")
def late_question_browser(
    playwright_instance: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    wav = make_question_wav(
        tmp_path_factory.mktemp("real") / "question-late.wav", before=QUESTION_DELAY, after=3.0
    )
    yield from _browser_playing(playwright_instance, wav)


def _browser_playing(playwright_instance: Any, wav: Path) -> Iterator[Any]:
    """Chromium whose fake microphone plays ``wav`` once (closed after the tests)."""
    browser = launch_chromium(playwright_instance, fake_audio=wav)
    try:
        yield browser
    finally:
        browser.close()


def test_real_character_is_live_and_answers(
    real_server: LiveServer, late_question_browser: Any, artifacts: Path
) -> None:
    page = TalkiePage(late_question_browser, real_server.url).open(timeout=30)
    try:
        assert "astronaut" in page.card_ids()
        t_click = time.monotonic()
        page.pick("astronaut")
        took = page.wait_playing(timeout=60, frames=5)
        page.start_meter()
        info = page.video_info()
        assert (info["width"], info["height"]) == (1280, 720)

        # Alive: consecutive frames differ (blinks, sway, the greeting's mouth).
        frames = []
        for i in range(4):
            frames.append(page.frame(save=artifacts / f"real-frame-{i}.png"))
            time.sleep(0.7)
        diffs = [
            float(np.mean(np.abs(a.astype(int) - b.astype(int)) > 12))
            for a, b in zip(frames, frames[1:], strict=False)
        ]
        assert max(diffs) > 0.0005, f"the character looks frozen: {diffs}"
        assert frames[0].mean() > 20, "the frame is black"

        page.wait_event("e.type === 'state'", timeout=20)
        greeting = page.wait_event("e.type === 'reply'", timeout=30)
        assert greeting["text"]

        # The question (after QUESTION_DELAY s of silence) is transcribed and answered.
        final = page.wait_event(
            "e.type === 'transcript' && e.final && /name/i.test(e.text)", timeout=40
        )
        page.wait_event(f"e.type === 'reply' && e.t > {final.get('t', 0)}", timeout=30)
        trace = page.wait_event("e.type === 'trace' && e.relative && e.relative.asr_final > 0", 40)
        page.page.wait_for_selector("#timeline .turn", timeout=10_000)
        time.sleep(1.0)  # let the answer's audio reach the meter
        levels = page.levels()
        latency_ms = turn_latency_ms(page.levels("mic"), levels)
        playout_ms = _playout_delay_ms(page.events(), trace, levels)
        page.screenshot(artifacts / "real-page.png")
        events = page.events()
        (artifacts / "real-events.json").write_text(json.dumps(events, indent=1))
        (artifacts / "real-latency.json").write_text(
            json.dumps(
                {"browser_turn_latency_ms": latency_ms, "playout_ms": playout_ms, "trace": trace},
                indent=1,
            )
        )
        stats = [p.stats() for p in real_server.registry.peers()]
        print(
            f"\nplaying {took:.2f} s after the click; question heard as {final['text']!r}; "
            f"turn latency at the browser {latency_ms:.0f} ms; "
            f"answer audio heard {playout_ms:.0f} ms after its server time (upper bound); "
            f"trace {trace.get('relative')}; audio peak {levels[:, 1].max():.3f}; "
            f"session {stats}; total {time.monotonic() - t_click:.1f} s"
        )
        assert levels[:, 1].max() > 0.02, "no audible speech reached the browser"
    finally:
        page.close()


@pytest.fixture(scope="module")
def at_once_browser(
    playwright_instance: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    wav = make_question_wav(
        tmp_path_factory.mktemp("real") / "question-at-once.wav",
        "Hello there! I am reading about planets and stars and rockets. What is your name?",
        before=0.1, after=10.0,
    )  # fmt: skip
    yield from _browser_playing(playwright_instance, wav)


def test_words_said_while_the_page_connects_are_heard(
    real_server: LiveServer, at_once_browser: Any, artifacts: Path
) -> None:
    """The user speaks the moment they pick the character (the fake microphone starts on that
    click), before the connection is up: the page records it, sends it once connected, and the
    question is heard whole and answered."""
    page = TalkiePage(at_once_browser, real_server.url).open(timeout=30)
    try:
        page.pick("astronaut")
        page.wait_playing(timeout=60, frames=5)
        turn = page.wait_event("e.type === 'turn' && /name/i.test(e.user_text)", timeout=60)
        stats = [p.stats() for p in real_server.registry.peers()]
        events = page.events()
        heard = " ".join(e["user_text"] for e in events if e.get("type") == "turn").lower()
        (artifacts / "real-at-once.json").write_text(json.dumps(events, indent=1))
        seams = [(s["mic_preroll"], s["mic_preroll_s"], s["mic_preroll_repeated_s"]) for s in stats]
        print(f"\nsaid while connecting, heard as {turn['user_text']!r}, answered "
              f"{turn['said']!r}; server (outcome, preroll s, repeat cut s) {seams}")
        # The recording covered the start of the question ("Hello" starts 0.1 s after the
        # click; the connection took 0.4-2.4 s here) and the server heard all of it before the
        # live audio: without it the question was lost whole, or began mid-word.
        assert [s["mic_preroll"] for s in stats] == ["complete"], stats
        assert stats[0]["mic_preroll_s"] > 0.2, stats
        assert "hello" in heard, heard  # the first words, said ~0.1 s after the click
        assert turn["said"], turn
    finally:
        page.close()


TWO_BREATHS = [("I was reading about the Moon yesterday.", 0.9), ("How far away is it?", 0.0)]


@pytest.fixture(scope="module")
def two_breath_browser(
    playwright_instance: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    wav = make_question_wav(
        tmp_path_factory.mktemp("real") / "two-breaths.wav", TWO_BREATHS,
        voice="en-us+f4", before=QUESTION_DELAY, after=8.0,
    )  # fmt: skip
    yield from _browser_playing(playwright_instance, wav)


def test_a_question_in_two_breaths_gets_one_answer_and_the_page_shows_the_wait(
    real_server: LiveServer, two_breath_browser: Any, artifacts: Path
) -> None:
    page = TalkiePage(two_breath_browser, real_server.url).open(timeout=30)
    try:
        page.pick("astronaut")
        page.wait_playing(timeout=60, frames=5)
        turn = page.wait_event("e.type === 'turn' && e.user_text", timeout=60)
        words = turn["user_text"].lower()
        # One turn holds both breaths: words of the first ("reading about the Moon yesterday")
        # and of the second ("how far away"). Whisper tiny hears this synthetic voice through
        # WebRTC differently from run to run (CI: "I will read it in the afternoon yesterday",
        # "I will read it about the Moon, Yes, okay?"), so two of the first breath's words do.
        first = [w for w in ("read", "about", "moon", "yesterday") if w in words]
        assert len(first) >= 2 and "far" in words, turn["user_text"]
        # The answer takes its subject from the first breath. Whisper tiny, through Chromium's
        # audio path, now and then hears this voice's "about the Moon" as "in the afternoon"
        # (seen once in CI): then there is no subject to answer about, and that is the
        # recogniser's miss, which the conversation benchmark measures, not turn-taking's.
        if "moon" in words:
            assert "kilometres" in turn["said"], turn["said"]
        row = page.page.wait_for_selector(
            "#timeline .turn[data-felt]:not([data-felt=''])", timeout=10_000
        )
        felt = float(row.get_attribute("data-felt"))
        server = float(row.get_attribute("data-server"))
        time.sleep(3.0)  # nothing more comes: the question was one turn
        events = page.events()
        turns = [e for e in events if e.get("type") == "turn" and e.get("user_text")]
        page.screenshot(artifacts / "real-two-breaths.png")
        (artifacts / "real-two-breaths.json").write_text(json.dumps(events, indent=1))
        print(f"\ntwo breaths heard as {turn['user_text']!r}; waited {felt:.2f} s in the browser "
              f"(server part {server:.2f} s)")  # fmt: skip
        assert len(turns) == 1, [t["user_text"] for t in turns]
        # The browser's wait includes the network, jitter buffer and playout the server can't see.
        assert felt > server - 0.05, (felt, server)
    finally:
        page.close()


def _playout_delay_ms(
    events: list[dict[str, Any]], trace: dict[str, Any], remote: np.ndarray
) -> float:
    """How long after its time on the server's media clock the answer's first sound is heard.

    Events carry ``t`` (server media clock at emission) and ``received_at`` (page time): the
    smallest difference maps server time to page time plus the one-way event delay, so the result
    is an upper bound on network + jitter buffer + audio output delay.
    """
    offsets = [e["received_at"] - 1000 * e["t"] for e in events if "t" in e and "received_at" in e]
    start = trace.get("marks", {}).get("answer_start")
    if not offsets or start is None:
        return float("nan")
    expected = 1000 * start + min(offsets)
    loud = remote[(remote[:, 0] > expected - 500) & (remote[:, 1] > 0.02)]
    return float(loud[0, 0] - expected) if loud.size else float("nan")
