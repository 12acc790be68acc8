"""Durability: the real server (real conversation, models and all) is killed with SIGKILL in the
middle of a conversation; after a restart on the same data folder, the uploaded character and
every finished turn (transcript and trace) are there, and only the turn in progress is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from api_testutil import png_bytes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
from live_client import ClientSession, connect  # noqa: E402

QUESTIONS = ("What is your name?", "Where do you live?", "What do you like to do?")


def _start(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "TALKIE_LLM_BASE_URL": ""}  # the built-in brain
    proc = subprocess.Popen(
        [sys.executable, "-m", "talkie.cli", "serve", "--port", "0", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    line = proc.stdout.readline().strip() if proc.stdout else ""
    assert line.startswith("Talkie is live at "), line
    return proc, line.rsplit(" ", 1)[1]


async def _turn(session: ClientSession, text: str) -> dict[str, Any]:
    session.send({"type": "text", "text": text})
    return await session.wait_event(
        lambda e: e.get("type") == "turn" and e.get("user_text") == text, timeout=60
    )


def test_sigkill_mid_conversation_loses_at_most_the_turn_in_progress(tmp_path: Path) -> None:
    from skimage import data

    proc, url = _start(tmp_path)
    try:
        admin = {"Authorization": f"Bearer {(tmp_path / 'admin.key').read_text().strip()}"}
        photo = png_bytes(data.astronaut()[:, ::-1].copy())
        r = httpx.post(
            url + "/v1/characters", headers=admin, timeout=60,
            files={"image": ("me.png", photo, "image/png")}, data={"name": "Durable Dana"},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        character_id = r.json()["id"]

        async def converse() -> tuple[str, list[dict[str, Any]]]:
            session = await connect(url, character_id)
            finished = []
            try:
                finished.append(  # the greeting is turn 1
                    await session.wait_event(lambda e: e.get("type") == "turn", timeout=60)
                )
                for question in QUESTIONS[:2]:
                    finished.append(await _turn(session, question))
                # the third question: kill the server while the answer is being spoken
                seen = len(session.events)
                session.send({"type": "text", "text": QUESTIONS[2]})
                await session.wait_event(  # the answer has started playing
                    lambda e: e.get("type") == "reply" and session.events.index(e) >= seen,
                    timeout=60,
                )
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            finally:
                await session.close()
            return session.session_id, finished

        session_id, finished = asyncio.run(asyncio.wait_for(converse(), 180))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert proc.returncode == -signal.SIGKILL
    proc, url = _start(tmp_path)  # the same data folder
    try:
        with httpx.Client(base_url=url, headers=admin, timeout=30) as http:
            names = [c["name"] for c in http.get("/v1/characters").json()["characters"]]
            assert "Durable Dana" in names
            session = http.get(f"/v1/sessions/{session_id}").json()
            assert session["status"] == "ended" and session["end_reason"] == "server restarted"
            lines = http.get(f"/v1/sessions/{session_id}/transcript").json()["lines"]
            traces = http.get(f"/v1/sessions/{session_id}/traces").json()["turns"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    expected = []
    for turn in finished:
        if turn["user_text"]:
            expected.append((turn["turn"], "user", turn["user_text"]))
        if turn["said"]:
            expected.append((turn["turn"], "character", turn["said"]))
    got = [(x["turn"], x["speaker"], x["text"]) for x in lines]
    assert got == expected, (got, expected)  # every finished turn, and nothing of the killed one
    assert [t["turn"] for t in traces] == [t["turn"] for t in finished] == [1, 2, 3]
    assert all(t["latency"] is not None for t in traces[1:])
    assert session["turns"] == 3
