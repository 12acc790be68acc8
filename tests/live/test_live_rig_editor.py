"""A person brings a drawing to life in the browser: upload a drawn face the detector cannot see,
get the point editor (needs_rig), drag the guessed points where they belong (the mesh and the
test animation follow; a point dragged across the mouth is refused, naming it), save, and talk
to it: the live video shows its mouth moving.

Runs against the real server with the real conversation (voice, motion, renderer)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from live_browser import TalkiePage
from live_server import LiveServer

from talkie.quality.sample_faces import drawn_cat
from talkie.render import MeshWarpRenderer
from talkie.rig import build_rig_from_points


def _state(page: TalkiePage) -> dict[str, Any]:
    state: dict[str, Any] = page.page.evaluate("() => window.talkie.rigEditor")
    return state


def _drag(page: TalkiePage, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drag with the mouse from one image point to another (image pixels)."""
    canvas = page.page.locator("#rig-editor canvas.rig-photo")
    canvas.scroll_into_view_if_needed()
    canvas.focus()  # focusing (as a click does) must not scroll it during the drag
    box = canvas.bounding_box()
    size = page.page.evaluate(
        "() => { const c = document.querySelector('#rig-editor canvas.rig-photo');"
        " return [c.width, c.height]; }"
    )
    info = _state(page)["info"]
    sx = box["width"] / info["image_width"]
    sy = box["height"] / info["image_height"]
    assert abs(box["width"] - size[0]) < 2  # shown at the canvas's own size

    def screen(p: tuple[float, float]) -> tuple[float, float]:
        return box["x"] + p[0] * sx, box["y"] + p[1] * sy

    mouse = page.page.mouse
    mouse.move(*screen(start))
    mouse.down()
    for k in range(1, 6):
        t = k / 5
        mouse.move(
            *screen((start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1])))
        )
    mouse.up()


def test_upload_a_drawing_place_its_points_and_talk(
    real_server: LiveServer, chromium: Any, artifacts: Path, tmp_path: Path
) -> None:
    face = drawn_cat()
    assert face.points is not None
    photo = tmp_path / "drawn-cat.png"
    cv2.imwrite(str(photo), cv2.cvtColor(face.image, cv2.COLOR_RGB2BGR))
    page = TalkiePage(chromium, real_server.url).open(timeout=30)
    try:
        page.page.set_input_files("#upload-file", str(photo))
        page.page.fill("#upload-name", "Whiskers")
        page.page.click("#upload-button")
        page.page.wait_for_selector("#rig-editor:not([hidden])", timeout=60_000)
        assert "face points" in page.page.inner_text("#upload-status")
        page.page.wait_for_function("() => window.talkie.rigEditor.lastMesh", timeout=30_000)
        state = _state(page)
        assert state["info"]["source"] == "guess"
        cid = state["characterId"]
        page.page.wait_for_function(
            "() => window.talkie.rigEditor.frames.length === 6", timeout=60_000
        )
        page.screenshot(artifacts / "rig-editor-guess.png")

        # Every point dragged to where it belongs.
        current = {k: (v["x"], v["y"]) for k, v in state["points"].items()}
        for name, target in face.points.items():
            if np.hypot(current[name][0] - target[0], current[name][1] - target[1]) > 1.5:
                _drag(page, current[name], target)
        page.page.wait_for_function("() => !window.talkie.rigEditor.error", timeout=30_000)
        placed = _state(page)["points"]
        for name, (x, y) in face.points.items():
            assert abs(placed[name]["x"] - x) < 3 and abs(placed[name]["y"] - y) < 3, name

        # A mouth corner dragged past the mouth's middle folds the face: refused, and named.
        corner = (placed["mouth_right"]["x"], placed["mouth_right"]["y"])
        _drag(page, corner, (face.points["nose_tip"][0] + 8, corner[1]))
        page.page.wait_for_function("() => window.talkie.rigEditor.error", timeout=20_000)
        assert "mouth_right" in _state(page)["bad"], _state(page)
        assert "cannot be a face" in page.page.inner_text("#rig-editor .rig-status")
        page.screenshot(artifacts / "rig-editor-error.png")
        _drag(page, (face.points["nose_tip"][0] + 8, corner[1]), corner)  # and back
        page.page.wait_for_function("() => !window.talkie.rigEditor.error", timeout=20_000)

        mesh = np.array(_state(page)["lastMesh"])
        assert np.hypot(*(mesh[152] - face.points["chin"])) < 3  # the mesh follows the points
        page.page.wait_for_function(
            "() => window.talkie.rigEditor.frames.length === 6 && !window.talkie.rigEditor.busy",
            timeout=60_000,
        )
        page.screenshot(artifacts / "rig-editor-placed.png")
        placed = _state(page)["points"]

        page.page.click("#rig-editor .rig-save")
        page.page.wait_for_selector("#rig-editor", state="hidden", timeout=60_000)
        page.wait_playing(timeout=90, frames=5)
        page.wait_event("e.type === 'reply'", timeout=60)  # the greeting

        # Talking: the mouth opens and closes in the video.
        saved = {k: (v["x"], v["y"]) for k, v in placed.items()}
        rig = build_rig_from_points(face.image, saved)
        frame_geometry = MeshWarpRenderer(rig).deformer.frame
        cx, cy = frame_geometry.mouth_centre
        half_w, half_h = (
            int(0.7 * frame_geometry.mouth_width),
            int(0.35 * frame_geometry.mouth_width),
        )
        page.wait_event("e.type === 'turn'", timeout=60)  # the greeting has been said
        time.sleep(1.0)
        quiet = page.frame(save=artifacts / "rig-talk-quiet.png")
        page.say("Please tell me a long story about your favourite place.")
        page.wait_event("e.type === 'state' && e.state === 'speaking'", timeout=60)
        frames = []
        for i in range(20):
            frames.append(page.frame(save=artifacts / f"rig-talk-{i:02d}.png"))
            time.sleep(0.12)

        def dark(frame: np.ndarray) -> int:  # the mouth's dark inside (and its drawn line)
            box = frame[int(cy) - half_h : int(cy) + half_h, int(cx) - half_w : int(cx) + half_w]
            return int((box.astype(float).mean(axis=2) < 70).sum())

        areas = [dark(f) for f in frames]
        print("dark mouth pixels: quiet", dark(quiet), "talking", areas)
        # The drawing's own outlines are dark at rest; an open mouth adds its dark inside. The
        # closed mouth is the least dark talking frame (the "quiet" frame may catch the end of
        # the greeting: CI once saw it open).
        assert max(areas) > 1.4 * min(areas) + 100, "the mouth did not open while it talked"
        assert min(areas) < 1.2 * dark(quiet) + 100, "the mouth did not close between sounds"
        card = page.page.inner_text(f'button.card[data-character-id="{cid}"]')
        assert "Whiskers" in card and "Needs" not in card
        assert not [c for c in page.console if c.startswith("pageerror")], page.console
    finally:
        page.close()
