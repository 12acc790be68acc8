"""FaceMeasurer on the astronaut portrait and on edits of it (re-detected, closed loop)."""

from __future__ import annotations

import numpy as np
import pytest
from quality_synth import close_eye, close_mouth, frame_720p, open_mouth, rotate

from talkie.quality import TRACK_KEYS, FaceMeasure, FaceMeasurer, measure_landmarks


def test_photo_is_measured_plausibly(neutral: FaceMeasure, astronaut: np.ndarray) -> None:
    m = neutral
    assert m.landmarks.shape == (478, 3)
    assert 45 < m.interocular_px < 80  # the face is ~100 px wide in the 512 px photo
    # Smiling with the teeth just showing: lips slightly apart, far from an open mouth.
    assert 0.0 <= m.aperture < 0.2
    assert 0.5 < m.mouth_width < 0.95
    for eye in (m.eye_open_left, m.eye_open_right):
        assert 0.2 < eye < 0.5
    assert abs(m.eye_open_left - m.eye_open_right) < 0.08
    assert abs(m.roll_deg) < 8
    x, y, w, h = m.box
    assert x >= 0 and y >= 0 and x + w <= 512 and y + h <= 512
    assert 70 < w < 140 and 80 < h < 160


def test_closed_lips_read_near_zero(measurer: FaceMeasurer, astronaut, neutral) -> None:
    m = measurer.measure(close_mouth(astronaut, neutral.landmarks))
    assert m is not None
    assert m.aperture < 0.08 < neutral.aperture


@pytest.mark.parametrize("in_720p", [False, True], ids=["photo", "720p"])
def test_aperture_grows_with_drawn_opening(
    measurer: FaceMeasurer, astronaut: np.ndarray, in_720p: bool
) -> None:
    base = frame_720p(astronaut) if in_720p else np.array(astronaut)
    m0 = measurer.measure(base)
    assert m0 is not None
    base = close_mouth(base, m0.landmarks)
    # Openings in inter-ocular units: 0 .. 0.3 covers speech (a wide "aa" is ~0.25-0.3).
    drawn = np.array([0.0, 0.06, 0.12, 0.18, 0.24, 0.30])
    frames = [open_mouth(base, m0.landmarks, r * m0.interocular_px) for r in drawn]
    full = np.array([measurer.measure(f).aperture for f in frames])  # type: ignore[union-attr]
    assert np.all(np.diff(full) > 0.01), full
    assert full[0] < 0.08 and full[-1] > 0.25, full
    # Re-detected gap ~ drawn gap + the closed lips' ~0.05 (measured: within ~0.05).
    assert np.allclose(full, drawn + 0.05, atol=0.06), full
    assert np.corrcoef(full, drawn)[0, 1] > 0.95
    # The tracked path (crop from the previous frame) sees the same growth.
    tracks = measurer.measure_many(frames)
    assert tracks["found"].all()
    assert np.all(np.diff(tracks["aperture"]) > 0), tracks["aperture"]
    assert np.allclose(tracks["aperture"], full, atol=0.05)


@pytest.mark.parametrize("which", ["left", "right"])
def test_painted_over_eye_reads_closed(
    measurer: FaceMeasurer, astronaut: np.ndarray, neutral: FaceMeasure, which: str
) -> None:
    m = measurer.measure(close_eye(astronaut, neutral.landmarks, which))
    assert m is not None
    shut, other = ("eye_open_left", "eye_open_right")[:: 1 if which == "left" else -1]
    assert getattr(m, shut) < 0.5 * getattr(neutral, shut)
    assert getattr(m, other) == pytest.approx(getattr(neutral, other), rel=0.2)


def test_roll_is_positive_for_a_clockwise_tilt(
    measurer: FaceMeasurer, astronaut: np.ndarray, neutral: FaceMeasure
) -> None:
    centre = tuple(float(v) for v in neutral.landmarks[:, :2].mean(0))
    for tilt in (-10.0, 10.0):
        m = measurer.measure(rotate(astronaut, tilt, centre))  # type: ignore[arg-type]
        assert m is not None
        assert m.roll_deg - neutral.roll_deg == pytest.approx(tilt, abs=2.0)


def test_720p_frame_matches_the_photo(
    measurer: FaceMeasurer, astronaut: np.ndarray, neutral: FaceMeasure
) -> None:
    # A 16:9 frame is cropped square before FaceMesh; fed whole, its landmarks come back shifted
    # ~8 px and the lip gap under-measured ~2.5x. Same face, same ratios, mapped landmarks.
    m = measurer.measure(frame_720p(astronaut))
    assert m is not None
    s = 720 / 512
    mapped = neutral.landmarks[:, :2] * s + [280, 0]
    assert np.median(np.linalg.norm(m.landmarks[:, :2] - mapped, axis=1)) < 0.03 * m.interocular_px
    assert m.aperture == pytest.approx(neutral.aperture, abs=0.025)
    assert m.eye_open_left == pytest.approx(neutral.eye_open_left, abs=0.04)
    assert m.interocular_px == pytest.approx(neutral.interocular_px * s, rel=0.05)


def test_small_face_in_720p_found_by_tiles(measurer: FaceMeasurer, astronaut: np.ndarray) -> None:
    frame = frame_720p(astronaut, face_height=300)  # inter-ocular ~35 px
    m = measurer.measure(frame)
    assert m is not None
    assert 490 < m.landmarks[:, 0].mean() < 790


def test_roi_agrees_with_full_frame(
    measurer: FaceMeasurer, astronaut: np.ndarray, neutral: FaceMeasure
) -> None:
    roi = measurer.track_roi(neutral)
    m = measurer.measure(astronaut, roi=roi)
    assert m is not None
    assert np.median(np.linalg.norm(m.landmarks[:, :2] - neutral.landmarks[:, :2], axis=1)) < 2
    assert m.aperture == pytest.approx(neutral.aperture, abs=0.02)
    # A roi partly outside the frame is padded, not rejected.
    x, y, w, h = neutral.box
    assert measurer.measure(astronaut, roi=(x - 200, y, w + 200, h)) is not None


def test_no_face_gives_none_and_nan(measurer: FaceMeasurer, astronaut: np.ndarray) -> None:
    blank = np.full((720, 1280, 3), 90, np.uint8)
    assert measurer.measure(blank) is None
    assert measurer.detect(blank) is None
    tracks = measurer.measure_many([np.array(astronaut), np.full_like(astronaut, 90), astronaut])
    assert tracks["found"].tolist() == [True, False, True]
    for k in TRACK_KEYS:
        assert tracks[k].shape == (3,)
        assert np.isnan(tracks[k][1]) and np.isfinite(tracks[k][[0, 2]]).all()
    assert tracks["landmarks"].shape == (3, 478, 3)
    assert np.isnan(tracks["landmarks"][1]).all()


def test_fixed_roi_sequence(measurer: FaceMeasurer, astronaut: np.ndarray, neutral) -> None:
    roi = measurer.track_roi(neutral)
    tracks = measurer.measure_many([astronaut] * 3, roi=roi)
    assert tracks["found"].all()
    assert np.ptp(tracks["aperture"]) == 0.0  # same pixels, same crop: deterministic


def test_measure_landmarks_geometry() -> None:
    lm = np.zeros((478, 3))
    lm[33, :2], lm[263, :2] = (0, 0), (100, 100)  # eye line at +45 deg: clockwise in the image
    lm[133, :2], lm[362, :2] = (30, 30), (70, 70)
    lm[159, :2], lm[145, :2] = (15, 5), (15, 15)
    lm[386, :2], lm[374, :2] = (85, 80), (85, 95)
    for u, lo in ((13, 14), (82, 87), (312, 317)):
        lm[u, :2], lm[lo, :2] = (50, 100), (50, 100 + 100 * np.sqrt(2) * 0.2)
    lm[61, :2], lm[291, :2] = (0, 120), (100 * np.sqrt(2) * 0.7, 120)
    m = measure_landmarks(lm)
    assert m.interocular_px == pytest.approx(100 * np.sqrt(2))
    assert m.roll_deg == pytest.approx(45.0)
    assert m.aperture == pytest.approx(0.2)
    assert m.mouth_width == pytest.approx(0.7)
    assert m.eye_open_right == pytest.approx(10 / np.hypot(30, 30))
    assert m.eye_open_left == pytest.approx(15 / np.hypot(30, 30))


def test_bad_input_and_lifecycle(astronaut: np.ndarray) -> None:
    fm = FaceMeasurer()
    with pytest.raises(ValueError):
        fm.measure(astronaut[..., 0])
    with pytest.raises(ValueError):
        fm.measure(astronaut.astype(np.float32))
    with pytest.raises(ValueError):
        fm.measure(astronaut, roi=(2000, 2000, 10, 10))
    fm.close()
    fm.close()  # idempotent
    with pytest.raises(RuntimeError):
        fm.measure(astronaut)
