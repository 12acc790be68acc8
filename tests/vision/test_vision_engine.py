"""The eyes' models on generated pictures: presence, position, attention; screen reading."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from vision_scenes import empty_room, placed

from talkie.quality.screens import make_screen
from talkie.vision.presence import PresenceDetector
from talkie.vision.screen import ScreenReader


@pytest.fixture(scope="module")
def detector() -> PresenceDetector:
    return PresenceDetector()


def test_a_person_is_found_where_they_are(
    detector: PresenceDetector, render_person: Callable[..., np.ndarray]
) -> None:
    face = render_person()
    frontal = detector.detect(face, 1.0)
    assert frontal.present and frontal.faces == 1
    assert frontal.looking is True
    assert frontal.pts == 1.0
    on_left = detector.detect(placed(face, left=True))
    on_right = detector.detect(placed(face, left=False))
    assert on_left.present and on_right.present
    assert on_left.x < 0.45 < 0.55 < on_right.x
    assert on_left.size < frontal.size


def test_nobody_in_an_empty_room(detector: PresenceDetector) -> None:
    for seed in range(3):
        seen = detector.detect(empty_room(seed=seed))
        assert not seen.present and seen.faces == 0


def test_a_head_turned_away_is_not_looking(
    detector: PresenceDetector, render_person: Callable[..., np.ndarray]
) -> None:
    for yaw in (25.0, -25.0):
        seen = detector.detect(render_person(yaw=yaw))
        assert seen.present
        assert seen.looking is False, f"yaw {yaw}: {seen}"


def test_bad_pictures_are_refused(detector: PresenceDetector) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect(np.zeros((10, 10), np.uint8))


def test_screens_are_read_line_by_line_and_only_when_they_change() -> None:
    reader = ScreenReader()
    rng = np.random.default_rng(13)
    screens = [make_screen(rng, lines=5) for _ in range(2)]
    exact = total = 0
    for screen in screens:
        read = reader.read(screen.image, 2.0)
        total += len(screen.lines)
        exact += sum(line in read.lines for line in screen.lines)
        assert read.ocr_ms > 0
    assert reader.readings == 2
    assert exact >= total - 1, f"{exact}/{total} lines read exactly"
    again = reader.read(screens[-1].image.copy(), 5.0)
    assert reader.readings == 2, "an unchanged screen was read again"
    assert again.pts == 2.0  # the cached reading, from when it was made
    assert not reader.needs_reading(screens[-1].image)
    assert reader.needs_reading(screens[0].image)
