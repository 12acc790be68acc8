"""The `talkie` command line.

Every user-fixable problem is a ``TalkieError``: it is printed as one line (what is wrong, what to
do) with exit status 2 and no traceback. Output files appear only when complete.
"""

from __future__ import annotations

import os

# One thread per BLAS/OpenMP pool, before numpy loads: their worker threads spin-wait between
# the small per-frame calls of the renderer, which kept a whole core busy in an idle session.
# Talkie parallelises by stages and sessions instead. (An explicit setting is respected.)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

from talkie import __version__  # noqa: E402
from talkie.errors import InvalidInputError, TalkieError  # noqa: E402

if TYPE_CHECKING:
    from talkie.rig import CharacterRig

log = logging.getLogger("talkie")

EXIT_USER_ERROR = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args.handler(args) or 0)
    except TalkieError as exc:
        print(f"talkie: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("talkie: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="talkie", description="One image becomes a talking, lip-synced character."
    )
    parser.add_argument("--version", action="version", version=f"talkie {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(title="commands")

    render = sub.add_parser("render", help="render a talking video (MP4) from one image")
    source = render.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", type=Path, help="photo: JPEG, PNG or WebP")
    source.add_argument("--rig", type=Path, help="a rig saved by `talkie rig --save`")
    speech = render.add_mutually_exclusive_group(required=True)
    speech.add_argument("--text", help="what the character says (synthesised with --voice)")
    speech.add_argument("--audio", type=Path, help="speech to lip-sync (WAV, MP3, OGG, FLAC...)")
    render.add_argument("--transcript", help="with --audio: the words spoken, for better timing")
    render.add_argument("--out", type=Path, required=True, help="output MP4 path")
    render.add_argument("--size", default="1280x720", type=_size, help="WIDTHxHEIGHT (1280x720)")
    render.add_argument("--fps", default=24.0, type=_fps, help="frames per second (24)")
    render.add_argument(
        "--voice",
        default="piper",
        help="piper (default), design:pitch=205,formant=1.17,..., remote:NAME, espeak[:VOICE]",
    )
    render.add_argument("--seed", default=0, type=int, help="seed for blinks and head motion")
    render.add_argument(
        "--renderer", default="", help="meshwarp (default), a renderer plug-in, or module:factory"
    )
    render.add_argument("--quiet", action="store_true", help="no progress bar")
    render.set_defaults(handler=_cmd_render)

    rig = sub.add_parser(
        "rig",
        help="build a character rig from one image and show it",
        epilog=_POINTS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rig.add_argument("image", type=Path, help="photo: JPEG, PNG or WebP")
    rig.add_argument("--preview", type=Path, help="write a PNG with the rig drawn on the image")
    rig.add_argument("--save", type=Path, help="write the rig file (reuse with render --rig)")
    rig.add_argument(
        "--points",
        type=Path,
        help="JSON file of hand-placed face points instead of face detection (see below)",
    )
    rig.set_defaults(handler=_cmd_rig)

    from talkie.client_cli import add_client_commands
    from talkie.meet.cli import add_meet_commands
    from talkie.server.cli import add_serve_command

    add_serve_command(sub)
    add_client_commands(sub)
    add_meet_commands(sub)
    return parser


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1280x720") from None
    if not (64 <= w <= 3840 and 64 <= h <= 3840) or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"{text}: width and height must be even, 64..3840")
    return w, h


def _fps(text: str) -> float:
    try:
        fps = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1 <= fps <= 60:
        raise argparse.ArgumentTypeError(f"{text}: fps must be between 1 and 60")
    return fps


def _load_rig(args: argparse.Namespace) -> CharacterRig:
    from talkie.media.image import load_image
    from talkie.rig import build_rig, load_rig

    if getattr(args, "rig", None):
        if not args.rig.is_file():
            raise InvalidInputError(f"{args.rig}: no such rig file")
        return load_rig(args.rig)
    image = load_image(args.image)
    return build_rig(image, progress=lambda msg: log.info("rig: %s", msg))


def _check_output(path: Path, suffixes: tuple[str, ...]) -> None:
    if path.suffix.lower() not in suffixes:
        raise InvalidInputError(f"{path}: the output must end in {' or '.join(suffixes)}")
    parent = path.resolve().parent
    if not parent.is_dir():
        raise InvalidInputError(f"{path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InvalidInputError(f"{path}: cannot write into {parent}")


def _cmd_render(args: argparse.Namespace) -> int:
    from talkie.offline import render_video, synthesize

    _check_output(args.out, (".mp4",))
    from talkie.render import renderer_factory

    renderer_factory(args.renderer)  # an unknown renderer is refused before any work
    if args.transcript and not args.audio:
        raise InvalidInputError("--transcript goes with --audio (it gives the words of that audio)")
    if args.text is not None and not args.text.strip():
        raise InvalidInputError("nothing to say: the text is empty; pass --text with some words")
    t0 = time.perf_counter()
    rig = _load_rig(args)
    for note in rig.notes:
        print(f"talkie: {note}", file=sys.stderr)
    if args.text is not None:
        from talkie.voice import load_tts

        speech = synthesize(load_tts(args.voice), args.text)
    else:
        from talkie.media.audio import load_audio
        from talkie.voice import align_speech

        speech = align_speech(load_audio(args.audio), args.transcript)
    prep = time.perf_counter() - t0

    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=1, unit="frame", desc="rendering", file=sys.stderr, leave=False)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        report = render_video(
            rig, speech, args.out, size=args.size, fps=args.fps, seed=args.seed,
            progress=progress, renderer=args.renderer,
        )  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    print(
        f"wrote {report.path} ({report.frames} frames, {report.duration:.1f} s, "
        f"{args.size[0]}x{args.size[1]} @ {report.fps:g} fps) "
        f"in {prep + report.wall_seconds:.1f} s; "
        f"render {report.render_ms_median:.1f} ms/frame"
    )
    return 0


_POINTS_HELP = """\
hand-placed points (--points), for drawings, animals, mascots or where detection is wrong:
  a JSON object of point name -> [x, y], in pixels of the image as a viewer shows it
  (x right, y down, from the top-left corner), e.g. {"nose_tip": [250, 310], ...}
  required: right_eye_outer right_eye_inner left_eye_inner left_eye_outer nose_tip
            mouth_right mouth_left chin
  optional: upper_lip lower_lip (outer lip edges, in the middle), right_eye_top
            right_eye_bottom left_eye_top left_eye_bottom (lid edges, in the middle),
            forehead (top, above the nose), face_right face_left (face edges by the ears),
            mouth_open_top mouth_open_bottom (only for a mouth drawn open, like an
            emoji's grin: the opening's top and bottom, in the middle)
  "right" and "left" are the character's own: its right eye is on the image's left.
"""


def _rig_from_points(args: argparse.Namespace) -> CharacterRig:
    from talkie.media.image import load_image
    from talkie.rig.manual import build_rig_from_points, load_points

    points = load_points(args.points)  # before the image: a bad points file fails fast
    image = load_image(args.image)
    return build_rig_from_points(image, points, progress=lambda msg: log.info("rig: %s", msg))


def _cmd_rig(args: argparse.Namespace) -> int:
    import cv2

    from talkie.rig.preview import draw_rig_preview

    if not args.preview and not args.save:
        raise InvalidInputError("say what to write: --preview OUT.png and/or --save OUT.rig")
    if args.preview:
        _check_output(args.preview, (".png",))
    if args.save:
        _check_output(args.save, (".rig",))
    t0 = time.perf_counter()
    rig = _rig_from_points(args) if args.points else _load_rig(args)
    elapsed = time.perf_counter() - t0
    for note in rig.notes:
        print(f"talkie: {note}", file=sys.stderr)
    if args.save:
        rig.save(args.save)
        print(f"wrote {args.save}")
    if args.preview:
        preview = draw_rig_preview(rig)
        tmp = args.preview.with_name(args.preview.name + ".tmp.png")
        if not cv2.imwrite(str(tmp), cv2.cvtColor(preview, cv2.COLOR_RGB2BGR)):
            raise InvalidInputError(f"{args.preview}: could not write the preview")
        tmp.replace(args.preview)
        print(f"wrote {args.preview}")
    print(
        f"rigged in {elapsed:.2f} s: {len(rig.mesh.vertices)} vertices, face from {rig.face.source}"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
