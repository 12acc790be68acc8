"""The README's licence table tells the truth about what a default install puts in the process.

Checked against the installed distributions' own metadata (License-Expression, License,
classifiers): every default dependency is listed, each listed licence is the one the package
declares, and nothing GPL-licensed is among the installed default dependencies (or theirs).
"""

from __future__ import annotations

import importlib.metadata as md
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
_FAMILIES = (  # order matters: LGPL and AGPL before GPL
    ("AGPL", ("agpl", "affero")),
    ("LGPL", ("lgpl", "lesser general public")),
    ("GPL", ("gpl", "general public license")),
    ("MIT", ("mit",)),
    ("BSD", ("bsd",)),
    ("Apache", ("apache",)),
    ("MPL", ("mpl", "mozilla")),
    ("PSF", ("psf", "python software foundation")),
    ("ISC", ("isc",)),
)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def families(text: str) -> set[str]:
    """Licence families named in a licence string ("Apache-2.0 OR BSD-3-Clause" -> both)."""
    found: set[str] = set()
    for part in re.split(r"\s+(?:OR|AND|or|and)\s+|[;,/()]", text):
        lowered = part.strip().lower()
        for family, needles in _FAMILIES:
            if any(re.search(rf"\b{re.escape(n)}", lowered) for n in needles):
                found.add(family)
                break
    return found


def declared_families(dist: md.Distribution) -> set[str]:
    meta = dist.metadata
    found = families(meta.get("License-Expression") or "")
    licence = meta.get("License") or ""
    if len(licence) < 100:  # some packages paste their whole licence text here
        found |= families(licence)
    elif "matplotlib" in licence.lower():
        found.add("PSF")  # matplotlib's licence is PSF-based
    for classifier in meta.get_all("Classifier") or []:
        if classifier.startswith("License ::"):
            found |= families(classifier.split("::")[-1])
    return found


def licence_table() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- licences:start -->")[1].split("<!-- licences:end -->")[0]
    rows: dict[str, str] = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] not in ("package", "") and not cells[0].startswith("---"):
            rows[_normalise(cells[0])] = cells[1]
    return rows


def pip_dependencies() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [_normalise(Requirement(r).name) for r in project["dependencies"]]


def no_deps_packages() -> list[str]:
    """Installed by the Makefile with ``--no-deps`` (their declared requirements are not)."""
    makefile = (ROOT / "Makefile").read_text()
    nodeps = re.search(r"^NODEPS_PKGS := (.*)$", makefile, re.MULTILINE)
    assert nodeps, "the Makefile lists the packages installed with --no-deps"
    return [_normalise(Requirement(p).name) for p in nodeps.group(1).split()]


def default_dependencies() -> list[str]:
    return pip_dependencies() + no_deps_packages()


def installed_closure(roots: list[str], leaves: list[str]) -> dict[str, md.Distribution]:
    """Every installed distribution the roots need (their default requirements, recursively),
    plus the ``leaves`` themselves (installed without their requirements)."""
    seen: dict[str, md.Distribution] = {n: md.distribution(n) for n in leaves}
    stack = list(roots)
    while stack:
        name = _normalise(stack.pop())
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # an optional requirement that is not installed
        seen[name] = dist
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                stack.append(req.name)
    return seen


def test_every_default_dependency_is_in_the_table() -> None:
    table = licence_table()
    missing = [name for name in default_dependencies() if name not in table]
    assert not missing, f"add these to the README's licence table: {missing}"


@pytest.mark.parametrize("name", sorted(licence_table()))
def test_table_licence_matches_the_package_metadata(name: str) -> None:
    table_families = families(licence_table()[name])
    assert table_families, f"the table's licence for {name} names no known licence"
    dist = md.distribution(name)
    declared = declared_families(dist)
    assert declared, f"{name} {dist.version} declares no licence we can read"
    assert table_families <= declared, (
        f"{name} {dist.version} declares {sorted(declared)}, the README says "
        f"{licence_table()[name]}"
    )


def test_no_gpl_package_among_the_default_dependencies() -> None:
    closure = installed_closure(pip_dependencies(), no_deps_packages())
    assert "talkie" not in closure and len(closure) > 30
    copyleft = {
        name: sorted(declared_families(dist) & {"GPL", "AGPL", "LGPL"})
        for name, dist in closure.items()
        if declared_families(dist) & {"GPL", "AGPL", "LGPL"}
    }
    assert not copyleft, f"GPL-family packages in a default install: {copyleft}"
    assert "piper-tts" not in closure


def test_the_checker_reads_licences_correctly() -> None:
    assert families("GPL-3.0-or-later") == {"GPL"}
    assert families("GNU Lesser General Public License v3 (LGPLv3)") == {"LGPL"}
    assert families("Apache-2.0 OR BSD-3-Clause") == {"Apache", "BSD"}
    assert families("MPL-2.0 AND MIT") == {"MPL", "MIT"}
    assert families("MIT-CMU") == {"MIT"}
    assert not families("Proprietary")
