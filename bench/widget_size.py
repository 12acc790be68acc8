"""How many bytes a site's visitors download for the embeddable widget.

The widget is ``web/widget.js`` (the loader a site's ``<script>`` tag names) plus every ES module
it imports, followed import by import from the loader's ``import()`` of ``widget-element.js``.
Each file is counted as served (raw) and gzipped at level 6 (what a proxy or CDN typically
sends; the server itself does not compress). Prints a table and writes
``bench/results/widget_size.json``.

    .venv/bin/python bench/widget_size.py [--out PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[1] / "web"
RESULTS = Path(__file__).resolve().parent / "results" / "widget_size.json"
# `import ... from "./x.js"` and `import("..." + "x.js")`-style loads of sibling modules.
_IMPORT = re.compile(r"""(?:from\s+|import\s*\(\s*`?[^`"')]*?)["'`]?\.?/?([\w-]+\.js)["'`]""")


def widget_files(entry: str = "widget.js") -> list[str]:
    """The loader and every module it loads, in load order."""
    seen: list[str] = []
    todo = [entry]
    while todo:
        name = todo.pop(0)
        if name in seen or not (WEB / name).is_file():
            continue
        seen.append(name)
        todo += _IMPORT.findall((WEB / name).read_text())
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    for name in widget_files():
        data = (WEB / name).read_bytes()
        rows.append({"file": name, "bytes": len(data), "gzip": len(gzip.compress(data, 6))})
    total = {
        "bytes": sum(r["bytes"] for r in rows),
        "gzip": sum(r["gzip"] for r in rows),
        "gzip_one_bundle": len(
            gzip.compress(b"".join((WEB / r["file"]).read_bytes() for r in rows), 6)
        ),
    }
    print(f"{'file':<22}{'bytes':>9}{'gzip':>9}")
    for r in rows:
        print(f"{r['file']:<22}{r['bytes']:>9}{r['gzip']:>9}")
    print(f"{'total':<22}{total['bytes']:>9}{total['gzip']:>9}")
    print(f"(gzipped as one bundle: {total['gzip_one_bundle']} bytes)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"files": rows, "total": total}, indent=1) + "\n")


if __name__ == "__main__":
    main()
