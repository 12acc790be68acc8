"""The vectorised triangle rasteriser against the one-call-per-triangle reference.

The renderer's default ("spans") must draw the same frames as the reference ("polygons", the
way every frame was drawn before): both are run through the real renderer on the sample
characters (the astronaut photo, her closed-mouth variant, the drawn cat) in poses that move
everything the warp moves: wide open mouth, blinks, head turns with folds near the silhouette.
"""

from __future__ import annotations

import numpy as np
import pytest

from talkie.messages import FaceParams
from talkie.quality.sample_faces import draw_cat
from talkie.render import MeshWarpRenderer, RenderOptions
from talkie.render.raster import polygon_ids, span_ids
from talkie.rig import CharacterRig, build_rig, build_rig_from_points

POSES = {
    "rest": FaceParams(),
    "open mouth": FaceParams(jaw_open=1.0, lip_width=0.3, upper_lip_raise=0.5),
    "round lips": FaceParams(jaw_open=0.4, lip_round=1.0),
    "pressed lips": FaceParams(lip_press=1.0, smile=0.6),
    "blink": FaceParams(blink_left=1.0, blink_right=1.0, brow_raise=0.7),
    "half blink, gaze": FaceParams(blink_left=0.5, blink_right=0.6, gaze_x=0.8, gaze_y=-0.5),
    "head turn": FaceParams(head_yaw=14, head_pitch=-6, head_roll=4, jaw_open=0.5),
    "head turn other way": FaceParams(head_yaw=-12, head_pitch=8, head_dx=0.04, head_dy=-0.02),
    "idle sway": FaceParams(head_yaw=1.3, head_pitch=-0.7, head_roll=0.4, blink_right=0.2),
}


@pytest.fixture(scope="module")
def characters(astronaut_rig: CharacterRig, closed_mouth_photo: np.ndarray) -> dict[str, object]:
    return {
        "astronaut": astronaut_rig,
        "closed mouth": build_rig(closed_mouth_photo),
        "drawn cat": build_rig_from_points(*draw_cat()),
    }


def _pair(rig: CharacterRig, size: tuple[int, int]) -> tuple[MeshWarpRenderer, MeshWarpRenderer]:
    return (
        MeshWarpRenderer(rig, options=RenderOptions(size=size, rasteriser="spans")),
        MeshWarpRenderer(rig, options=RenderOptions(size=size, rasteriser="polygons")),
    )


@pytest.mark.parametrize("name", ["astronaut", "closed mouth", "drawn cat"])
def test_fast_rasteriser_draws_the_frames_of_the_reference(
    characters: dict[str, CharacterRig], name: str
) -> None:
    fast, reference = _pair(characters[name], (1280, 720))
    for pose, params in POSES.items():
        a = fast.render(params).astype(np.int16)
        b = reference.render(params).astype(np.int16)
        diff = np.abs(a - b).max(axis=2)
        # The two differ only in which of two triangles a sample on their shared edge belongs
        # to (rounding of OpenCV's fixed-point edges): a few dozen pixels of a frame, along
        # folds and the lips, where neighbouring triangles' maps part.
        assert diff.mean() < 0.02, (name, pose, diff.mean())
        assert (diff > 8).mean() < 2e-4, (name, pose, (diff > 8).mean())
    moved = fast.render(POSES["head turn"]).astype(np.int16) - fast.render(FaceParams())
    assert np.abs(moved).mean() > 1.0, "the poses really move the face"


def test_smaller_output_sizes_agree_too(characters: dict[str, CharacterRig]) -> None:
    fast, reference = _pair(characters["astronaut"], (640, 360))
    for params in (POSES["open mouth"], POSES["head turn"], POSES["blink"]):
        diff = np.abs(fast.render(params).astype(np.int16) - reference.render(params)).max(axis=2)
        assert diff.mean() < 0.05 and (diff > 8).mean() < 5e-4


def _tri(*pts: tuple[float, float]) -> np.ndarray:
    return np.array(pts, np.float64)


def test_span_ids_fill_the_inside_and_later_triangles_win() -> None:
    big = _tri((1, 1), (30, 2), (4, 25))
    small = _tri((5, 5), (12, 5), (5, 12))  # inside big, drawn after it
    tris = np.stack([big, small])
    ids = span_ids(tris, np.array([True, True]), (32, 40))
    assert ids[3, 3] == 0 and ids[7, 7] == 1 and ids[30, 35] == -1
    # Same drawing order the other way round: the big one covers the small one.
    flipped = span_ids(tris[::-1].copy(), np.array([True, True]), (32, 40))
    assert flipped[7, 7] == 1 and flipped[3, 3] == 1
    # Winding does not matter; a triangle that is not solid is not drawn.
    assert span_ids(big[None, ::-1].copy(), np.array([True]), (32, 40))[3, 3] == 0
    assert (span_ids(tris, np.array([False, False]), (32, 40)) == -1).all()


def test_span_ids_leave_no_crack_between_neighbours_and_match_the_reference() -> None:
    rng = np.random.default_rng(3)
    # A jittered grid split into triangles: a mesh that covers its inside exactly once.
    gy, gx = np.mgrid[0:9, 0:12].astype(np.float64) * 7.3 + 2.0
    pts = np.stack([gx, gy], axis=-1) + rng.uniform(-2.5, 2.5, (9, 12, 2))
    tris = []
    for i in range(8):
        for j in range(11):
            a, b, c, d = pts[i, j], pts[i, j + 1], pts[i + 1, j], pts[i + 1, j + 1]
            tris += [np.stack([a, b, d]), np.stack([a, d, c])]
    tris_arr = np.stack(tris)
    solid = np.ones(len(tris_arr), bool)
    shape = (70, 90)
    fast = span_ids(tris_arr, solid, shape)
    ref = polygon_ids(tris_arr, solid, shape)
    inner = np.zeros(shape, bool)
    inner[12:55, 12:75] = True  # well inside the grid's outline
    assert (fast[inner] >= 0).all(), "no sample between two triangles is left out"
    # Where they differ, the reference gave the sample to a neighbour sharing an edge.
    agree = (fast == ref)[inner].mean()
    assert agree > 0.9, agree


def test_unknown_rasteriser_is_a_clear_error(astronaut_rig: CharacterRig) -> None:
    with pytest.raises(ValueError, match="rasteriser"):
        MeshWarpRenderer(astronaut_rig, options=RenderOptions(rasteriser="magic"))
