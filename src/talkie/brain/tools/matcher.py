"""Picking a tool from what the user said, for the built-in brain (no LLM).

Modest on purpose: it recognises requests that resemble a tool's description or examples, and
fills simple arguments; an LLM brain does the real thing with ``Tool.to_openai()``.

Matching (English). Text is lowercased, split into words, common function words and
politeness are dropped ("can you please tell me..."), numbers and web addresses are left out
(they are argument values, not intent), and words are lightly stemmed (plurals, -ing, -ed, a
final e: "prices", "pricing" and "price" meet). Each tool's vocabulary is its name, description
and examples, minus the capitalised sample values inside examples ("the weather in Paris").
A word's weight is an inverse document frequency across the declared tools (a word every tool
shares says little), halved for generic action verbs (show, open, find, check...). A tool's
score, from 0 to 1, is ``0.6 * phrase + 0.4 * request`` where
- ``phrase``: the weighted share of its best-matching example (or name, or description) that
  the request contains, and
- ``request``: the weighted share of the request's words that belong to the tool (words no
  tool knows count at half weight: they are often the argument itself),
so "has my package shipped yet?" matches the example "has my parcel shipped" plus the
description's "package", while "what's your name?" shares nothing with any tool. Below
``threshold`` nothing is picked: chit-chat goes to the normal reply. A remark that names a
tool's subject ("I love this weather") does pick it: that is the limit of word matching.

Arguments (only for string parameters; others are left to the brain to ask for):
- a parameter with an ``enum``: the value the request mentions (by stemmed word);
- a parameter named like url/link: the first web address in the text;
- a parameter named like id/number/code (``order_id``): the first token with a digit in it;
- a parameter named like query/search/product/sku/item/term/keyword/city/location/place/name:
  the request's longest run of words that are not the tool's own words, trimmed of function
  words ("do you have the *blue hiking boots* in stock", "weather in *New York*").
Required parameters that could not be filled are listed in ``ToolChoice.missing``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from talkie.brain.tools.spec import Tool

__all__ = ["ToolChoice", "normalize", "pick_tool", "stem"]

DEFAULT_THRESHOLD = 0.45

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")
_URL = re.compile(
    r"\bhttps?://[^\s<>\"']+|\b(?:[a-z0-9-]+\.)+[a-z]{2,}(?:/[^\s<>\"']*)?", re.IGNORECASE
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

# Words that carry no intent: function words, auxiliaries, politeness and the generic request
# verbs every tool's examples share ("can you tell me", "I want to know").
_STOP = frozenset(
    """
    a about above after again all also am an and any are as at be been being both but by can
    could did do does doing done for from had has have having he her here hers him his how i if
    in into is it its itself just let lets me mine more most much my myself no nor not now of
    off on once only or other our ours out over own same she should so some such than that the
    their theirs them then there these they this those through to too under until up very was
    we were what when where which while who whom why will with would you your yours yourself
    ok okay please pls thanks thank hi hello hey yes yeah sure well oh um uh hmm
    tell give want wanna need like know think see make get got go going gonna would may might
    must shall something anything thing things really actually maybe kind sort bit lot today
    don doesn didn isn aren wasn weren won couldn wouldn shouldn haven hasn
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
_PARAM_URL = ("url", "link", "website", "address")
_PARAM_ID = ("id", "number", "code", "reference", "ref")
_PARAM_TEXT = (
    "query", "search", "product", "sku", "item", "term", "keyword", "keywords", "topic",
    "city", "location", "place", "name", "text", "q",
)  # fmt: skip


@dataclass(frozen=True)
class ToolChoice:
    """The tool a request asks for, the arguments found in it, and the required parameters
    still missing (the brain should ask for them, or call without them if it can)."""

    tool: Tool
    arguments: dict[str, Any] = field(hash=False)
    score: float
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Word:
    text: str  # as written
    stem: str  # "" for a stopword or a number
    start: int
    end: int


def stem(word: str) -> str:
    """A light suffix stripper (plural, -ing, -ed, final e); both sides of a comparison use it,
    so it only has to be consistent, not linguistically right."""
    w = word.lower()
    if len(w) <= 3:
        return w
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed"):
        base = w[: -len(suffix)]
        if (
            w.endswith(suffix)
            and len(w) >= 5
            and not w.endswith("eed")
            and re.search(r"[aeiouy]", base)
        ):
            # "shipping"/"shipped" -> "ship", but "called" keeps its double l.
            if len(base) > 2 and base[-1] == base[-2] and base[-1] not in "lsz":
                base = base[:-1]
            w = base
            break
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


def normalize(text: str) -> list[str]:
    """The meaningful word stems of ``text``, in order (stopwords and numbers dropped)."""
    return [w.stem for w in _words(text) if w.stem]


def _words(text: str) -> list[_Word]:
    words: list[_Word] = []
    for match in _TOKEN.finditer(text):
        raw = match.group(0)
        # "what's" -> "what", "don't" -> "don": contractions keep their (stop)word.
        base = re.split(r"['’]", raw)[0].lower()
        content = base not in _STOP and not any(c.isdigit() for c in base)
        words.append(_Word(raw, stem(base) if content else "", match.start(), match.end()))
    return words


# Action verbs many tools share: they count half, so "show me something funny" alone does not
# pick the "show_page" tool, while "show me the prices" still does.
_GENERIC = frozenset(
    stem(w) for w in ("show", "open", "find", "check", "look", "search", "see", "take", "bring",
                      "display", "send", "help", "use")
)  # fmt: skip


def _without_samples(example: str) -> str:
    """An example minus its sample values: capitalised words after the first ("the weather in
    Paris", "is the Nike Air in stock") are what a user would vary, not what they ask for."""
    words = example.split()
    return " ".join(w for i, w in enumerate(words) if i == 0 or not w[:1].isupper())


class _Index:
    """Per-tool vocabularies and word weights for one set of tools."""

    def __init__(self, tools: Sequence[Tool]) -> None:
        self.tools = list(tools)
        self.phrases: list[list[set[str]]] = []
        self.vocab: list[set[str]] = []
        for tool in self.tools:
            name = " ".join(_CAMEL.sub(" ", tool.name).replace("_", " ").replace("-", " ").split())
            texts = [name, tool.description, *(_without_samples(e) for e in tool.examples)]
            phrases = [set(normalize(t)) for t in texts]
            self.phrases.append([p for p in phrases if p])
            self.vocab.append(set().union(*phrases))
        n = len(self.tools)
        df: dict[str, int] = {}
        for vocab in self.vocab:
            for term in vocab:
                df[term] = df.get(term, 0) + 1
        # ln(1 + N/df): a word unique to one tool weighs most, one shared by all the least.
        self.weight = {
            t: math.log(1.0 + n / d) * (0.5 if t in _GENERIC else 1.0) for t, d in df.items()
        }
        # Words no tool knows (often argument values) still count in the request's total, at
        # the weight of a word unique to one tool... but half, since they are often the
        # argument itself ("Paris", "blue boots") rather than a competing intent.
        self.unknown_weight = 0.5 * math.log(1.0 + n) if n else 0.0

    def score(self, i: int, query: set[str]) -> float:
        vocab = self.vocab[i]
        matched = query & vocab
        if not matched:
            return 0.0
        w = self.weight
        best_phrase = 0.0
        for phrase in self.phrases[i]:
            total = sum(w[t] for t in phrase)
            if total > 0:
                best_phrase = max(best_phrase, sum(w[t] for t in phrase & query) / total)
        query_total = sum(w.get(t, self.unknown_weight) for t in query)
        query_cover = sum(w[t] for t in matched) / query_total if query_total else 0.0
        return 0.6 * best_phrase + 0.4 * query_cover


def pick_tool(
    text: str, tools: Sequence[Tool], *, threshold: float = DEFAULT_THRESHOLD
) -> ToolChoice | None:
    """The tool ``text`` asks for, with the arguments found in it, or ``None`` (chit-chat, or
    nothing scores ``threshold``; scores run from 0 to 1)."""
    if not tools or not text.strip():
        return None
    # Web addresses are argument values: their pieces ("https", "org") are not intent.
    query = set(normalize(_URL.sub(" ", text)))
    if not query:
        return None
    index = _Index(tools)
    scores = [index.score(i, query) for i in range(len(tools))]
    best = max(range(len(tools)), key=lambda i: scores[i])
    if scores[best] < threshold:
        return None
    tool = tools[best]
    arguments, missing = extract_arguments(text, tool, index.vocab[best])
    return ToolChoice(tool=tool, arguments=arguments, score=round(scores[best], 3), missing=missing)


def extract_arguments(
    text: str, tool: Tool, tool_words: set[str] | None = None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Arguments for ``tool`` found in ``text`` (see the module docstring), and the names of
    required parameters not found."""
    schema = tool.parameters
    props: Mapping[str, Any] = schema.get("properties") or {}
    own = tool_words if tool_words is not None else _Index([tool]).vocab[0]
    words = _words(text)
    arguments: dict[str, Any] = {}
    for name, sub in props.items():
        if not isinstance(sub, Mapping) or sub.get("type", "string") != "string":
            continue
        value = _extract_one(text, words, name, sub, own)
        if value:
            arguments[name] = value
    missing = tuple(r for r in schema.get("required") or [] if r not in arguments)
    return arguments, missing


def _extract_one(
    text: str, words: list[_Word], name: str, schema: Mapping[str, Any], own: set[str]
) -> str | None:
    enum = schema.get("enum")
    if isinstance(enum, list):
        stems = {w.stem or stem(w.text.lower()) for w in words}
        for option in enum:
            if isinstance(option, str) and set(normalize(option) or [stem(option)]) <= stems:
                return option
        return None
    parts = set(re.split(r"[_\-]|(?<=[a-z])(?=[A-Z])", name))
    lowered = {p.lower() for p in parts if p}
    if lowered & set(_PARAM_URL):
        match = _URL.search(text)
        return match.group(0).rstrip(".,;:!?)") if match else None
    if lowered & set(_PARAM_ID):
        # Whitespace tokens, so "A-5521" and "#1234" stay whole (minus edge punctuation).
        for token in text.split():
            token = token.strip(".,;:!?()[]{}\"'#")
            if any(c.isdigit() for c in token):
                return token
        return None
    if lowered & set(_PARAM_TEXT):
        return _free_text(text, words, own, max_length=schema.get("maxLength"))
    return None


def _free_text(text: str, words: list[_Word], own: set[str], *, max_length: Any) -> str | None:
    """The longest run of words that are not the tool's own words, trimmed of stopwords at both
    ends; ties go to the later run (requests tend to end with their object)."""
    runs: list[list[_Word]] = []
    current: list[_Word] = []
    for w in words:
        if w.stem and w.stem in own:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(w)
    if current:
        runs.append(current)
    best: list[_Word] = []
    for run in runs:
        while run and not run[0].stem and not run[0].text[0].isdigit():
            run = run[1:]
        while run and not run[-1].stem and not run[-1].text[0].isdigit():
            run = run[:-1]
        content = sum(1 for w in run if w.stem or w.text[0].isdigit())
        if content and content >= sum(1 for w in best if w.stem or w.text[0].isdigit()):
            best = run
    if not best:
        return None
    value = text[best[0].start : best[-1].end].strip()
    if isinstance(max_length, int) and not isinstance(max_length, bool):
        value = value[:max_length]
    return value or None
