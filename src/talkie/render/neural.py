"""How a neural face renderer (a GPU model: LivePortrait-, SadTalker- or Wav2Lip-like) plugs in.

Talkie ships no neural renderer: none of the registries it may use at run time ships weights
(they all download them). A user who brings one writes a ``FrameModel`` and wraps it in
``NeuralRenderer``, which speaks Talkie's ``Renderer`` protocol, so sessions, ``talkie render``
and the benchmarks use it unchanged:

1. ``prepare(source, keypoints)`` runs once per character: ``source`` is the character framed
   exactly as the CPU renderer frames it (RGB uint8 at the output size, background included),
   ``keypoints`` the rig's 478 face landmarks there (x, y, depth; output pixels). Load weights,
   encode the source (appearance features, identity), move things to the GPU here.
2. ``generate(driving, params)`` runs once per step (4 frames at 24 fps: ~167 ms of video, so a
   model has ~40 ms a frame): ``driving`` is (B, 478, 2), where Talkie's motion puts every
   landmark in each frame (jaw, lips, tongue-free mouth shapes, blinks, gaze, head turn, from the
   same rules as the CPU renderer); ``params`` the frames' ``FaceParams`` for models driven by
   expression coefficients instead. It returns (B, H, W, 3) RGB uint8 frames.

Keypoint-driven models use ``driving`` (map it to their own implicit keypoints by the landmark
indices), coefficient-driven ones ``params``; audio-driven ones get the speech from the session
the same way the motion stage does. Frames must come back in order and at the output size.

Select it with ``talkie serve --renderer package.module:factory`` (or an entry point in the
``talkie.renderers`` group), where ``factory(rig, *, options)`` returns
``NeuralRenderer(rig, model=YourModel(), options=options)``.

``ReferenceTestDouble`` is a test double of such a model, no neural network: it moves the
source by the similarity transform that best fits the driving keypoints (so the head moves, the
mouth does not open). It exists to prove the boundary end to end (``--renderer
reference-test-double``), not to be looked at.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from talkie.messages import FaceParams
from talkie.render.deform import FaceDeformer
from talkie.render.framing import frame_rig
from talkie.render.meshwarp import RenderOptions
from talkie.rig import topology as topo
from talkie.rig.model import CharacterRig


@runtime_checkable
class FrameModel(Protocol):
    """What a neural face renderer provides (see the module docstring)."""

    def prepare(self, source: np.ndarray, keypoints: np.ndarray) -> None: ...

    def generate(self, driving: np.ndarray, params: Sequence[FaceParams]) -> np.ndarray: ...


class NeuralRenderer:
    """``Renderer`` on top of a ``FrameModel``: Talkie's framing and motion rules give the model
    its source frame and per-frame driving keypoints. ``render_many`` hands a whole step to the
    model at once (what a GPU wants); ``render`` is a step of one."""

    def __init__(
        self, rig: CharacterRig, *, model: FrameModel, options: RenderOptions | None = None
    ) -> None:
        self.options = options or RenderOptions()
        self.size = self.options.size
        stage = frame_rig(rig, self.size)
        vertices = stage.to_output(rig.mesh.vertices)
        self._deformer = FaceDeformer(mesh=rig.mesh, vertices=vertices)
        self._landmarks = np.arange(topo.N_FACE_LANDMARKS)
        self.keypoints = self._deformer.rest[self._landmarks].copy()
        self.model = model
        self.model.prepare(stage.canvas.copy(), self.keypoints.copy())
        self._lock = threading.Lock()

    def driving_keypoints(self, params: FaceParams) -> np.ndarray:
        """Where Talkie's motion puts the 478 landmarks for ``params`` (output pixels, (478, 2))."""
        return np.asarray(self._deformer.deform(params)[self._landmarks])

    def render(self, params: FaceParams) -> np.ndarray:
        return self.render_many([params])[0]

    def render_many(self, params: Sequence[FaceParams]) -> list[np.ndarray]:
        driving = np.stack([self.driving_keypoints(p) for p in params]).astype(np.float32)
        with self._lock:
            frames = np.asarray(self.model.generate(driving, list(params)))
        w, h = self.size
        if frames.shape != (len(params), h, w, 3) or frames.dtype != np.uint8:
            raise ValueError(
                f"the frame model returned {frames.dtype} {frames.shape}, expected uint8 "
                f"({len(params)}, {h}, {w}, 3)"
            )
        return [np.ascontiguousarray(f) for f in frames]


class ReferenceTestDouble:
    """A stand-in for a neural model (a test double, NOT a neural network): each frame is the
    source moved by the similarity transform that best fits the driving keypoints."""

    def __init__(self) -> None:
        self.calls: list[int] = []  # batch sizes, for tests and benchmarks
        self._source: np.ndarray | None = None
        self._rest: np.ndarray | None = None

    def prepare(self, source: np.ndarray, keypoints: np.ndarray) -> None:
        self._source = source
        self._rest = keypoints[:, :2].astype(np.float32)

    def generate(self, driving: np.ndarray, params: Sequence[FaceParams]) -> np.ndarray:
        assert self._source is not None and self._rest is not None, "prepare() first"
        self.calls.append(len(driving))
        h, w = self._source.shape[:2]
        frames = []
        for keypoints in driving:
            matrix, _ = cv2.estimateAffinePartial2D(self._rest, keypoints, method=cv2.LMEDS)
            if matrix is None:
                matrix = np.eye(2, 3, dtype=np.float64)
            frames.append(
                cv2.warpAffine(self._source, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
            )
        return np.stack(frames)


def reference_test_double(
    rig: CharacterRig, *, options: RenderOptions | None = None
) -> NeuralRenderer:
    """The factory behind ``--renderer reference-test-double``."""
    return NeuralRenderer(rig, model=ReferenceTestDouble(), options=options)
