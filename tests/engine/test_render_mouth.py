"""The mouth interior, checked on rendered frames: separate teeth, a cavity, a tongue that rises
for l/n/th, lower teeth only on wide openings, gums only when the lip lifts, colours and light from
the photo, pressed lips that leave no teeth showing, and the face at rest untouched."""

from __future__ import annotations

import numpy as np
import pytest

from talkie.messages import FaceParams
from talkie.render import MeshWarpRenderer
from talkie.rig import CharacterRig, build_rig


@pytest.fixture(scope="module")
def closed_rig(closed_mouth_photo: np.ndarray) -> CharacterRig:
    return build_rig(closed_mouth_photo)


@pytest.fixture(scope="module")
def closed(closed_rig: CharacterRig) -> MeshWarpRenderer:
    return MeshWarpRenderer(closed_rig)


def _mouth_coords(r: MeshWarpRenderer, params: FaceParams) -> tuple[np.ndarray, np.ndarray]:
    """Mouth-axis coordinates (u across, v down, output pixels) of every pixel of the opening."""
    import cv2

    verts = r.deformer.deform(params)
    mask = np.zeros((r.size[1], r.size[0]), np.uint8)
    cv2.fillPoly(mask, [np.round(r.mouth._polygon(verts)).astype(np.int32)], 255)
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero(mask)
    return np.stack([xs, ys], axis=1), mask > 0


def _luma(pixels: np.ndarray) -> np.ndarray:
    return np.asarray(pixels.astype(float) @ np.array([0.3, 0.59, 0.11]))


def test_the_face_at_rest_is_the_photo(closed: MeshWarpRenderer) -> None:
    frame = closed.render(FaceParams())
    assert np.array_equal(frame, closed.stage.canvas)


def test_an_open_mouth_shows_separate_teeth_a_cavity_and_a_tongue(
    closed: MeshWarpRenderer,
) -> None:
    params = FaceParams(jaw_open=0.85, lip_width=0.15, upper_lip_raise=0.1)
    frame = closed.render(params)
    pts, inside = _mouth_coords(closed, params)
    pixels = frame[inside]
    luma = _luma(pixels)
    assert (luma < 60).mean() > 0.3, "no dark cavity"
    assert (luma > 150).mean() > 0.05, "no teeth"
    # Across the mouth, the brightest pixel of each column (a tooth) rises and falls: separate
    # teeth, not one band.
    xs = np.arange(pts[:, 0].min(), pts[:, 0].max() + 1)
    line = np.array([luma[pts[:, 0] == x].max() for x in xs])
    bumps = np.flatnonzero((line[1:-1] > line[:-2]) & (line[1:-1] >= line[2:]))
    peaks = [b for b in bumps if line[b + 1] - min(line[max(0, b - 6) : b + 8]) > 8]
    assert len(peaks) >= 4, f"the teeth read as one band: {len(peaks)} teeth"
    # The tongue: pinkish red low in the mouth.
    low = pixels[pts[:, 1] > np.percentile(pts[:, 1], 80)].astype(float)
    assert (low[:, 0] - low[:, 2]).mean() > 15, "no tongue low in the mouth"


def _centre_redness(r: MeshWarpRenderer, params: FaceParams) -> float:
    frame = r.render(params)
    pts, inside = _mouth_coords(r, params)
    centre = r.mouth.axes.centre
    near = np.abs(pts[:, 0] - centre[0]) < 0.08 * r.deformer.frame.mouth_width
    px = frame[inside][near].astype(float)
    return float((px[:, 0] - px[:, 2]).mean() + 0.3 * px[:, 0].mean())


def test_the_tongue_rises_for_l_and_th(closed: MeshWarpRenderer) -> None:
    still = _centre_redness(closed, FaceParams(jaw_open=0.5))
    raised = _centre_redness(closed, FaceParams(jaw_open=0.5, tongue=0.85))
    assert raised > still + 8, (still, raised)


def test_lower_teeth_on_wide_openings_only(closed_rig: CharacterRig) -> None:
    """What the lower row adds to the frame: nothing on a small opening, a visible strip on a
    wide one (measured by rendering once more without it)."""
    from talkie.render.dental import Layer

    with_teeth = MeshWarpRenderer(closed_rig)
    without = MeshWarpRenderer(closed_rig)
    empty = without.mouth.lower_row
    without.mouth.lower_row = Layer(np.zeros_like(empty.rgba), empty.origin)

    def shown(jaw: float) -> int:
        a = with_teeth.render(FaceParams(jaw_open=jaw)).astype(int)
        b = without.render(FaceParams(jaw_open=jaw)).astype(int)
        return int((np.abs(a - b).max(axis=2) > 25).sum())

    small, wide = shown(0.35), shown(1.0)
    print("pixels the lower teeth change: jaw 0.35", small, "jaw 1.0", wide)
    assert small < 5 and wide > 20


def test_gums_show_only_when_the_lip_lifts(closed: MeshWarpRenderer) -> None:
    def gum_pixels(params: FaceParams) -> int:
        frame = closed.render(params)
        _, inside = _mouth_coords(closed, params)
        px = frame[inside].astype(float)
        gum = closed.mouth.look.gum
        return int((np.abs(px - gum).sum(axis=1) < 45).sum())

    assert gum_pixels(FaceParams(jaw_open=0.6)) < 10
    assert gum_pixels(FaceParams(jaw_open=0.6, upper_lip_raise=1.0, smile=0.6)) > 20


def test_colours_and_light_come_from_the_photo(closed_mouth_photo: np.ndarray) -> None:
    bright = MeshWarpRenderer(build_rig(closed_mouth_photo))
    dim = MeshWarpRenderer(build_rig((closed_mouth_photo * 0.55).astype(np.uint8)))
    params = FaceParams(jaw_open=0.85)
    teeth = []
    for r in (bright, dim):
        frame = r.render(params)
        _, inside = _mouth_coords(r, params)
        teeth.append(np.percentile(_luma(frame[inside]), 95))
    assert 0.4 < teeth[1] / teeth[0] < 0.75, teeth


def test_pressed_lips_leave_no_teeth_showing(renderer: MeshWarpRenderer) -> None:
    """The astronaut smiles with her teeth: pressing her lips hides them (what stays white is
    the shine on her lower lip)."""
    import cv2

    from talkie.rig import topology as topo

    def tooth_white(params: FaceParams) -> int:
        frame = renderer.render(params)
        verts = renderer.deformer.deform(params)
        outer = verts[list(topo.OUTER_LIP_UPPER + topo.OUTER_LIP_LOWER[::-1])]
        mask = np.zeros(frame.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(outer).astype(np.int32)], 255)
        px = frame[mask > 0].astype(float)
        return int(((_luma(px) > 185) & ((px.max(axis=1) - px.min(axis=1)) < 45)).sum())

    smiling, pressed = tooth_white(FaceParams()), tooth_white(FaceParams(lip_press=1.0))
    print("tooth-white pixels: smiling", smiling, "lips pressed", pressed)
    assert smiling > 150 and pressed < 0.25 * smiling
