"""Write the bundled sample images (public-domain scikit-image data) into assets/samples/."""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image
from skimage import data

SAMPLES = {"astronaut.png": data.astronaut}


def main() -> int:
    out_dir = Path(__file__).resolve().parent.parent / "assets" / "samples"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, make in SAMPLES.items():
        path = out_dir / name
        Image.fromarray(make()).save(path, optimize=True)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
