"""Renderer: the photo at rest, closed-loop checks on rendered frames, no holes, no wobble."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talkie.messages import FaceParams
from talkie.quality import FaceMeasurer, face_ssim
from talkie.render import MeshWarpRenderer, Renderer, RenderOptions
from talkie.rig import CharacterRig, build_rig


@pytest.fixture(scope="module")
def measurer():  # type: ignore[no-untyped-def]
    with FaceMeasurer() as m:
        yield m


@pytest.fixture(scope="module")
def closed_renderer(closed_mouth_photo: np.ndarray) -> MeshWarpRenderer:
    return MeshWarpRenderer(build_rig(closed_mouth_photo))


def _source_in_output(rig: CharacterRig, r: MeshWarpRenderer, source: np.ndarray) -> np.ndarray:
    """The source photo placed into the output frame by the rig's crop and the renderer's
    framing (both known exactly), for comparing like with like."""
    x0, y0, s = rig.crop
    k = r.stage.scale * s
    m = np.array(
        [
            [k, 0, r.stage.offset[0] - x0 * r.stage.scale],
            [0, k, r.stage.offset[1] - y0 * r.stage.scale],
        ]
    )
    return cv2.warpAffine(
        source, m, r.size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101
    )


def test_is_a_renderer_and_outputs_the_requested_size(renderer: MeshWarpRenderer) -> None:
    assert isinstance(renderer, Renderer)
    frame = renderer.render(FaceParams(jaw_open=0.5))
    assert frame.shape == (720, 1280, 3) and frame.dtype == np.uint8


def test_neutral_frame_looks_like_the_photo(
    astronaut: np.ndarray, astronaut_rig: CharacterRig, renderer: MeshWarpRenderer, measurer
) -> None:  # type: ignore[no-untyped-def]
    frame = renderer.render(FaceParams())
    reference = _source_in_output(astronaut_rig, renderer, astronaut)
    landmarks = measurer.landmarks(frame)
    assert landmarks is not None
    assert face_ssim(frame, reference, landmarks) >= 0.95


def test_framing_pads_and_never_stretches(astronaut_rig: CharacterRig, measurer) -> None:  # type: ignore[no-untyped-def]
    for size in ((1280, 720), (720, 720), (640, 960)):
        r = MeshWarpRenderer(astronaut_rig, options=RenderOptions(size=size))
        frame = r.render(FaceParams())
        assert frame.shape == (size[1], size[0], 3)
        lm = measurer.landmarks(frame)
        assert lm is not None, size
        src = astronaut_rig.face.points
        # Width/height proportions of the face are those of the photo (no stretching).
        ratio_out = np.ptp(lm[:, 0]) / np.ptp(lm[:, 1])
        ratio_src = np.ptp(src[:, 0]) / np.ptp(src[:, 1])
        assert ratio_out == pytest.approx(ratio_src, rel=0.05), size


def test_blinks_close_the_eyes(renderer: MeshWarpRenderer, measurer) -> None:  # type: ignore[no-untyped-def]
    open_eyes = measurer.measure(renderer.render(FaceParams()))
    closed = measurer.measure(renderer.render(FaceParams(blink_left=1.0, blink_right=1.0)))
    wink = measurer.measure(renderer.render(FaceParams(blink_left=1.0)))
    assert open_eyes and closed and wink
    assert closed.eye_open_left < 0.5 * open_eyes.eye_open_left
    assert closed.eye_open_right < 0.5 * open_eyes.eye_open_right
    assert wink.eye_open_left < 0.5 * open_eyes.eye_open_left
    assert wink.eye_open_right > 0.8 * open_eyes.eye_open_right


def test_jaw_opens_the_mouth_as_measured_on_the_frames(
    closed_renderer: MeshWarpRenderer, measurer
) -> None:  # type: ignore[no-untyped-def]
    apertures = []
    for jaw in (0.0, 0.3, 0.6):
        m = measurer.measure(closed_renderer.render(FaceParams(jaw_open=jaw)))
        assert m is not None
        apertures.append(m.aperture)
    assert apertures[0] < 0.05
    assert apertures[0] + 0.03 < apertures[1] < apertures[2]
    pressed = measurer.measure(closed_renderer.render(FaceParams(lip_press=1.0, jaw_open=0.0)))
    assert pressed is not None and pressed.aperture < 0.05


def test_open_mouth_shows_teeth_over_a_dark_cavity(closed_renderer: MeshWarpRenderer) -> None:
    params = FaceParams(jaw_open=0.8)
    frame = closed_renderer.render(params).astype(np.float32)
    verts = closed_renderer.deformed_vertices(params)
    regions = closed_renderer.deformer.mesh.regions
    up, lo = verts[regions["inner_lip_upper"]], verts[regions["inner_lip_lower"]]
    mid = len(up) // 2
    top, bottom = up[mid], lo[mid]
    luma = frame.mean(axis=2)
    x = int(round(top[0]))
    column = luma[int(top[1]) + 1 : int(bottom[1]) - 1, x - 2 : x + 3].mean(axis=1)
    skin = luma[int(top[1]) - 40 : int(top[1]) - 25, x - 10 : x + 10].mean()
    teeth = column[: max(2, len(column) // 5)].mean()
    cavity = column[len(column) // 3 : 2 * len(column) // 3].mean()
    assert cavity < 0.5 * skin, "the inside of the mouth is dark"
    assert teeth > 1.5 * cavity, "upper teeth show under the upper lip"


def test_head_motion_leaves_no_holes_and_the_background_still(
    astronaut_rig: CharacterRig, renderer: MeshWarpRenderer
) -> None:
    params = FaceParams(head_yaw=8, head_pitch=6, head_roll=5, head_dx=0.03, jaw_open=0.7)
    verts = renderer.deformed_vertices(params)
    w, h = renderer.size
    covered = np.zeros((h, w), np.uint8)
    for tri in renderer.deformer.mesh.triangles:
        cv2.fillConvexPoly(covered, np.round(verts[tri] * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    inside = renderer.stage.alpha > 0  # the output area that shows the photo's content
    assert covered[inside].all(), "the deformed mesh still covers every pixel"

    rest = renderer.render(FaceParams())
    moved = renderer.render(params)
    # Background and body away from the head are exactly still (no wobble): nothing changes
    # outside the triangles that carry a moving vertex, and that is most of the frame.
    can_move = np.zeros((h, w), np.uint8)
    for tri in renderer.triangles:
        for pts in (renderer.rest[tri], verts[tri]):
            cv2.fillConvexPoly(can_move, np.round(pts).astype(np.int32), 1)
    far = can_move == 0
    assert far.sum() > 0.4 * w * h
    # (8-bit rounding in the composite may move a value by a few levels: invisible, and below
    # the encoder's own noise.)
    assert np.abs(rest[far].astype(int) - moved[far]).max() <= 3
    # The head really moved.
    assert np.abs(rest.astype(int) - moved).mean() > 1.0


def test_rejects_absurd_output_sizes(astronaut_rig: CharacterRig) -> None:
    with pytest.raises(ValueError, match="outside"):
        MeshWarpRenderer(astronaut_rig, options=RenderOptions(size=(10, 10)))


def test_a_face_that_barely_moved_is_the_last_frame_drawn_again(
    astronaut_rig: CharacterRig,
) -> None:
    """An idle face drifts a fraction of a pixel a frame: such a frame is not drawn again. Any
    visible change (a step, a blink, the tongue) is drawn, and every frame is its caller's own."""
    r = MeshWarpRenderer(astronaut_rig, options=RenderOptions(size=(640, 360)))
    rest = r.deformed_vertices(FaceParams())
    # head_dx in steps measured in output pixels for this rig and size
    px_per_dx = float(np.abs(r.deformed_vertices(FaceParams(head_dx=0.01)) - rest).max()) / 0.01
    tiny = 0.5 * r.options.still_px / px_per_dx  # half the threshold
    first = r.render(FaceParams(head_dx=0.02))
    drifted = r.render(FaceParams(head_dx=0.02 + tiny))
    assert r.frames_reused == 1
    assert np.array_equal(drifted, first) and drifted is not first
    drifted[:] = 0  # the caller's own copy: the next reused frame is untouched
    assert np.array_equal(r.render(FaceParams(head_dx=0.02 - tiny)), first)
    assert r.frames_reused == 2
    # What drawing it would have given differs by less than a grey level on average.
    exact = MeshWarpRenderer(astronaut_rig, options=RenderOptions(size=(640, 360), still_px=0))
    drawn = exact.render(FaceParams(head_dx=0.02 + tiny))
    assert exact.frames_reused == 0
    assert float(np.abs(drawn.astype(np.int16) - first.astype(np.int16)).mean()) < 0.5

    # Small steps add up: measured from the last frame drawn, not the previous one.
    r.render(FaceParams(head_dx=0.02 + 3 * tiny))
    assert r.frames_reused == 2
    for changed in (FaceParams(head_dx=0.02 + 3 * tiny, blink_left=0.5),
                    FaceParams(head_dx=0.02 + 3 * tiny, blink_left=0.5, tongue=0.8)):  # fmt: skip
        before = r.frames_reused
        frame = r.render(changed)
        assert r.frames_reused == before, changed
    assert not np.array_equal(frame, first)
    # Reuse off: every frame is drawn.
    for _ in range(3):
        exact.render(FaceParams(head_dx=0.02 + tiny))
    assert exact.frames_reused == 0
