"""face_ssim / align_face on the astronaut portrait."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from quality_synth import frame_720p

from talkie.quality import FaceMeasure, FaceMeasurer, align_face, face_box, face_ssim


def test_identical_is_one(astronaut: np.ndarray, neutral: FaceMeasure) -> None:
    assert face_ssim(astronaut, astronaut, neutral.landmarks) == pytest.approx(1.0)
    assert face_ssim(astronaut, astronaut, neutral, color=True) == pytest.approx(1.0)
    assert face_ssim(astronaut, astronaut, neutral.box) == pytest.approx(1.0)


def test_drops_under_blur_and_noise(astronaut: np.ndarray, neutral: FaceMeasure) -> None:
    light = cv2.GaussianBlur(astronaut, (0, 0), 1.0)
    heavy = cv2.GaussianBlur(astronaut, (0, 0), 3.0)
    noise = np.random.default_rng(0).normal(0, 20, astronaut.shape)
    noisy = np.clip(astronaut + noise, 0, 255).astype(np.uint8)
    s_light = face_ssim(light, astronaut, neutral)
    s_heavy = face_ssim(heavy, astronaut, neutral)
    s_noise = face_ssim(noisy, astronaut, neutral)
    assert 1.0 > s_light > s_heavy
    assert s_heavy < 0.8
    assert s_noise < 0.8
    # Floats in [0, 1] are accepted too.
    assert face_ssim(light / 255.0, astronaut / 255.0, neutral) == pytest.approx(s_light, abs=1e-6)


def test_box_is_padded_and_clipped(neutral: FaceMeasure) -> None:
    x, y, w, h = neutral.box
    bx, by, bw, bh = face_box(neutral.landmarks, (512, 512, 3))
    assert bx < x and by < y and bw > w * 1.15 and bh > h * 1.15
    assert face_box((-10, -10, 50, 50), (512, 512)) == (0, 0, 40, 40)
    with pytest.raises(ValueError):
        face_box((600, 600, 50, 50), (512, 512))


def test_shape_mismatch_raises(astronaut: np.ndarray, neutral: FaceMeasure) -> None:
    with pytest.raises(ValueError):
        face_ssim(astronaut, astronaut[:-1], neutral)


def test_align_then_compare_across_framings(
    measurer: FaceMeasurer, astronaut: np.ndarray, neutral: FaceMeasure
) -> None:
    # Likeness of a 1280x720 "output" against the 512x512 source: align, then SSIM on the face.
    out = frame_720p(astronaut)
    m_out = measurer.measure(out)
    assert m_out is not None
    aligned = align_face(astronaut, neutral.landmarks, m_out.landmarks, out.shape)
    assert aligned.shape == out.shape
    assert face_ssim(aligned, out, m_out) > 0.8
    shifted = np.roll(aligned, 6, axis=1)
    assert face_ssim(shifted, out, m_out) < face_ssim(aligned, out, m_out) - 0.1
