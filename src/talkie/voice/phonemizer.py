"""Text -> IPA phonemes through the ``espeak-ng`` command-line program, in its own process.

Why a separate program: espeak-ng is GPL-3. Talkie (Apache-2.0) does not link it or load its
library into the process; it runs the ``espeak-ng`` executable and reads IPA text from its output,
the way a program runs ``git``. The Piper voices were trained on exactly this front end (espeak-ng
IPA), so the phonemes match what the voice model expects.

One ``espeak-ng -q --ipa`` process is kept per dialect (``en-us``, ``en-gb``...): started once
(~25 ms), it then answers a line in ~1-2 ms. espeak-ng reads stdin line by line and prints one line
of IPA per clause it finds; after each request a sentinel line is sent, whose known output marks
the end of the answer. Clause punctuation (which the CLI does not print) is taken back from the
text, so the phoneme string has the ``,`` ``.`` ``?`` tokens Piper voices were trained with.
"""

from __future__ import annotations

import logging
import os
import re
import select
import shutil
import subprocess
import threading
import time
import unicodedata

from talkie.errors import EngineError, InvalidInputError, MissingDependencyError

__all__ = ["ESPEAK_PROGRAM", "EspeakPhonemizer", "phonemizer", "dialect_is_valid"]

log = logging.getLogger(__name__)

ESPEAK_PROGRAM = "espeak-ng"
_SENTINEL = "zxqv"  # spelled out by espeak-ng; its fixed output ends every answer
_TIMEOUT = 10.0
_DIALECT = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{1,8})*$")
# Clause punctuation as espeak-ng reports it to Piper: the clause's terminator character.
_CLAUSE_END = re.compile(r"([.,;:!?…]+)[\"'”’»)\]}]*(?=\s|$)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def dialect_is_valid(dialect: str) -> bool:
    return bool(_DIALECT.match(dialect))


def _terminator(mark: str) -> str:
    """The punctuation token for a clause ending in ``mark`` ("" after an ellipsis)."""
    if "?" in mark:
        return "?"
    if "!" in mark:
        return "!"
    if mark.startswith("...") or "…" in mark:
        return ""
    return mark[0]


def attach_punctuation(text: str, lines: list[str]) -> str:
    """Join espeak-ng's clause lines into one phoneme string with each clause's terminator.

    The CLI prints a clause per line without its punctuation; the text's clause-ending marks are
    matched to the lines in order when their counts agree (the usual case), else inner clauses are
    joined with a comma and the last takes the text's final mark.
    """
    found = list(_CLAUSE_END.finditer(text.rstrip()))
    marks = [_terminator(m.group(1)) for m in found]
    ends_marked = bool(found) and found[-1].end() == len(text.rstrip())
    if not ends_marked:
        marks.append("")
    if len(marks) != len(lines):
        marks = [","] * (len(lines) - 1) + [marks[-1]]
    # Inside a sentence a clause mark is followed by a space, even at the very end (as Piper's
    # front end does: the voices learnt a short pause there); sentences are joined by a space.
    pieces = [
        line + mark + (" " if mark and mark in ",;:" else "")
        for line, mark in zip(lines, marks, strict=True)
    ]
    return "".join(
        p if p.endswith(" ") or i == len(pieces) - 1 else p + " " for i, p in enumerate(pieces)
    )


class _Process:
    """One running ``espeak-ng -q --ipa -v DIALECT`` reading requests line by line."""

    def __init__(self, program: str, dialect: str) -> None:
        self.proc = subprocess.Popen(
            [program, "-q", "--ipa", "-v", dialect],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
        )
        self._buffer = b""
        self.sentinel = ""
        self.sentinel = "".join(self.ask(_SENTINEL, sentinel=None))

    def ask(self, line: str, sentinel: str | None = "") -> list[str]:
        """The output lines for one input line (up to the sentinel's answer)."""
        assert self.proc.stdin is not None
        payload = line + "\n" + (f"{_SENTINEL}\n" if sentinel is not None else "")
        self.proc.stdin.write(payload.encode("utf-8"))
        self.proc.stdin.flush()
        deadline = time.monotonic() + _TIMEOUT
        out: list[str] = []
        if sentinel is None:  # the sentinel itself: one answer line
            return [self._read_line(deadline)]
        while True:
            got = self._read_line(deadline)
            if got == self.sentinel:
                return out
            if got:
                out.append(got)

    def _read_line(self, deadline: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EngineError("espeak-ng did not answer in time")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                data = os.read(fd, 65536)
                if not data:
                    raise EngineError("espeak-ng stopped unexpectedly")
                self._buffer += data
        raw, self._buffer = self._buffer.split(b"\n", 1)
        return raw.decode("utf-8", "replace").strip()

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


class EspeakPhonemizer:
    """IPA phonemes of English (or any espeak-ng language) text, from the espeak-ng program.

    Thread-safe; one process per dialect, restarted if it dies.
    """

    def __init__(self, *, program: str = ESPEAK_PROGRAM) -> None:
        self.program = program
        self._processes: dict[str, _Process] = {}
        self._lock = threading.Lock()

    def available(self) -> bool:
        return shutil.which(self.program) is not None

    def clauses(self, text: str, dialect: str = "en-us") -> list[str]:
        """One IPA string per clause espeak-ng finds in ``text`` (stress marks kept)."""
        if not dialect_is_valid(dialect):
            raise InvalidInputError(f"invalid espeak-ng dialect {dialect!r}: use e.g. en-us, en-gb")
        line = _CONTROL.sub(" ", text).strip()
        if not line:
            return []
        if _SENTINEL in line.lower():
            line = re.sub(_SENTINEL, " ", line, flags=re.IGNORECASE)
        with self._lock:
            for attempt in (1, 2):
                process = self._process(dialect)
                try:
                    return process.ask(line)
                except (EngineError, OSError) as exc:
                    process.close()
                    self._processes.pop(dialect, None)
                    if attempt == 2:
                        raise EngineError(f"espeak-ng failed to phonemize ({exc})") from exc
                    log.warning("espeak-ng restarted after: %s", exc)
        raise AssertionError("unreachable")

    def phonemize(self, text: str, dialect: str = "en-us") -> str:
        """The whole text as one IPA string with clause punctuation, NFD-normalised."""
        lines = self.clauses(text, dialect)
        return unicodedata.normalize("NFD", attach_punctuation(text, lines)) if lines else ""

    def _process(self, dialect: str) -> _Process:
        process = self._processes.get(dialect)
        if process is None or process.proc.poll() is not None:
            if shutil.which(self.program) is None:
                raise MissingDependencyError(
                    f"the {self.program} program is not installed: run `apt-get install espeak-ng`"
                    " (Talkie runs it as a separate program for phonemes)"
                )
            try:
                process = _Process(self.program, dialect)
            except OSError as exc:
                raise EngineError(f"could not start {self.program} ({exc})") from exc
            except EngineError as exc:  # it exits at once on a voice it does not have
                raise InvalidInputError(
                    f"espeak-ng does not know the voice {dialect!r}: see `espeak-ng --voices`"
                ) from exc
            self._processes[dialect] = process
        return process

    def close(self) -> None:
        with self._lock:
            for process in self._processes.values():
                process.close()
            self._processes.clear()


_SHARED: list[EspeakPhonemizer] = []
_SHARED_LOCK = threading.Lock()


def phonemizer() -> EspeakPhonemizer:
    """The process-wide phonemizer."""
    with _SHARED_LOCK:
        if not _SHARED:
            _SHARED.append(EspeakPhonemizer())
        return _SHARED[0]
