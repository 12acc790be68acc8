"""Generated "screens" with known text, for testing and measuring screen reading.

Each screen is a window-like picture (title bar, light or dark theme, sans or monospace font,
sizes of ordinary desktop text) with lines drawn from varied kinds of content: error messages,
code, prose, file paths, numbers. The lines are returned with the picture, so a reader can be
scored line by line. Fonts: DejaVu (Debian's fonts-dejavu-core, installed with Chromium) when
present, else Pillow's own scalable default font.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_FONTS = Path("/usr/share/fonts/truetype/dejavu")
_SUBJECTS = ["the build", "your upload", "the invoice", "this report", "the meeting", "the server"]
_VERBS = ["failed", "finished", "started", "was saved", "was moved", "timed out"]
_WORDS = [
    "alpha", "budget", "customer", "deadline", "engine", "filter", "garden", "harbor", "income",
    "journal", "kernel", "lemon", "meadow", "network", "orange", "planet", "quarter", "rocket",
    "signal", "ticket", "update", "violet", "window", "yellow", "zebra", "account", "balance",
    "channel", "payment", "release", "storage", "traffic", "version",
]  # fmt: skip
_ERRORS = [
    "TypeError: cannot read properties of undefined (reading '{w}')",
    "ValueError: invalid literal for int() with base 10: '{w}'",
    "Error: ENOENT: no such file or directory, open '{w}.json'",
    "KeyError: '{w}'",
    "ModuleNotFoundError: No module named '{w}'",
]


@dataclass(frozen=True)
class Screen:
    image: np.ndarray  # RGB uint8
    lines: tuple[str, ...]


def _font(mono: bool, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = _FONTS / ("DejaVuSansMono.ttf" if mono else "DejaVuSans.ttf")
    if path.exists():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def random_line(rng: np.random.Generator) -> str:
    kind = int(rng.integers(0, 5))
    word = str(rng.choice(_WORDS))
    if kind == 0:
        return str(rng.choice(_ERRORS)).format(w=word)
    if kind == 1:
        hour, minute = int(rng.integers(1, 12)), int(rng.integers(0, 60))
        return f"{rng.choice(_SUBJECTS).capitalize()} {rng.choice(_VERBS)} at {hour}:{minute:02d}"
    if kind == 2:
        return f"def {word}_{rng.choice(_WORDS)}(count={rng.integers(2, 99)}):"
    if kind == 3:
        return f"/home/user/{word}/{rng.choice(_WORDS)}_{rng.integers(1, 999)}.txt"
    words = [str(w) for w in rng.choice(_WORDS, size=int(rng.integers(4, 8)))]
    return " ".join(words).capitalize() + "."


def make_screen(
    rng: np.random.Generator,
    *,
    size: tuple[int, int] = (1280, 720),
    lines: int = 6,
    text_px: int | None = None,
) -> Screen:
    """A screen of ``lines`` random lines (see the module docstring); ``text_px``: the font
    size (random 16-26 px, ordinary desktop text at 720p, when None)."""
    w, h = size
    dark = bool(rng.random() < 0.4)
    mono = bool(rng.random() < 0.5)
    px = int(text_px or rng.integers(16, 27))
    bg = (30, 30, 36) if dark else (250, 250, 248)
    fg = (225, 225, 220) if dark else (20, 20, 25)
    image = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, w, 36), fill=(60, 62, 70) if dark else (222, 224, 228))
    for i, colour in enumerate(((236, 95, 87), (245, 190, 80), (98, 197, 84))):
        draw.ellipse((14 + 22 * i, 12, 26 + 22 * i, 24), fill=colour)
    font = _font(mono, px)
    text = tuple(random_line(rng) for _ in range(lines))
    x, y = int(rng.integers(30, 90)), 60 + int(rng.integers(0, 40))
    step = int(px * float(rng.uniform(1.6, 2.2)))
    for line in text:
        draw.text((x, y), line, fill=fg, font=font)
        y += step
        if y > h - px:
            break
    return Screen(np.asarray(image), text)
