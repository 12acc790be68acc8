"""Lexical search over a short knowledge text, for the built-in brain.

No embeddings, no model: the knowledge text of a persona is a page or two (opening hours, prices,
an FAQ), where careful lexical matching is enough and is deterministic, instant and explainable.

- The text is cut into sentences (reusing ``split_clauses`` without comma splits); a lead-in
  ending in ":" is joined to what follows, and a short heading line ("Returns") is remembered as
  context for the sentences under it.
- Words are normalised (case, accents, contractions), stop-words dropped and lightly stemmed
  ("opening", "opens", "opened" -> "open").
- Questions are matched to sentences by BM25, with a small table of paraphrases ("money back"
  -> "refund") and synonyms, and with *answer types*: a "when" question favours a sentence with a
  time or weekday in it, "where" one with an address, "how much" one with a price.
- A match counts only if it covers enough of the question's important words (weighted by IDF),
  so an off-topic question that shares one word with the text gets "I don't know" rather than
  a wrong fact.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from talkie.brain.markdown import strip_markdown
from talkie.voice.text import split_clauses

__all__ = [
    "KnowledgeHit",
    "KnowledgeIndex",
    "answer_tags",
    "normalize",
    "stem",
    "synonyms",
    "tokenize",
]


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP_WORDS = _wordset(
    """a about above after again against all am an and any are as at be been before being below
    between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his i if in into is it its itself just let
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what which while who whom why
    will with would you your yours yourself yourselves tell know please like want wanted need
    also get got give go going gonna wanna could might may shall must thing things something
    anything really actually exactly basically precisely maybe well hey hi hello ok okay um uh
    wait sorry
    er oh yeah yes sure one way
    how when where much many does say said see look bit lot any goes went gets getting come
    comes came done doing take takes took make makes
    us ask asks asked asking wonder wonders wondered wondering curious
    """
)

# Paraphrases rewritten before tokenising: phrase -> canonical words. Answer-type tags start
# with "@" and are also attached to sentences that contain such an answer (see _TAG_PATTERNS).
_PARAPHRASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"\b(?:send|bring|take|give|get)(?:\s+\w+){0,2}\s+back\b", " return refund "),
        (r"\bmoney back\b", " refund "),
        (r"\bhow much\b|\bwhat (?:does|do|will) (?:it|that|this|they) cost\b", " @price "),
        (r"\bwhat time\b|\bhow late\b|\bhow early\b|\bwhen\b|\bwhich days?\b", " @time "),
        (
            r"\bwhere\b|\bhow (?:do|can) i (?:get|find)\b|\bget (?:there|here)\b|\bdirections?\b",
            " @place ",
        ),
        (r"\bget in touch\b|\breach you\b|\bcontact you\b", " contact @phone @email "),
        (r"\bcall you\b|\bring you\b|\bphone\b|\btelephone\b", " @phone "),
        (r"\be-?mail\b", " @email "),
        (r"\bwho (?:is|are|runs|owns)\b", " @person "),
        # "who started it", "how old is the business": a founding story, a year.
        (r"\bwho (?:founded|started|created|set up|established|opened|built)\b",
         " @person founded "),
        (r"\bhow old\b|\bsince when\b|\bwhat year\b|\bhow long ago\b", " @year founded "),
        # "take out / check out a book" is borrowing; "left it on the train" is losing it.
        (r"\b(?:take|check) (?:\w+ )?out\b", " borrow "),
        (r"\b(?:left|forgot) (?:my|our|the|a|it)\b", " lost "),
        (r"\bduring the week\b|\bon weekdays\b", " weekday "),
    )
)
# Answer types: a sentence containing a match gets the tag as an extra term.
_TAG_PATTERNS: dict[str, re.Pattern[str]] = {
    "@time": re.compile(
        r"\b\d{1,2}(?:[:.]\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.|h|o'clock)\b|\b\d{1,2}:\d{2}\b|"
        r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|wed|thu|fri|sat|"
        r"sun|weekdays?|weekends?|daily|noon|midnight|morning|evening|holidays?|"
        r"january|february|march|april|may|june|july|august|september|october|november|"
        r"december|days?|weeks?|hours?|minutes?)\b",
        re.IGNORECASE,
    ),
    "@place": re.compile(
        r"\b(?:street|st|road|rd|avenue|ave|lane|boulevard|blvd|square|plaza|drive|way|floor|"
        r"building|located|address|corner|next to|opposite|near|downtown|city|town|"
        r"postcode|zip)\b",
        re.IGNORECASE,
    ),
    "@phone": re.compile(r"\+?\d[\d\s().-]{5,}\d|\b(?:phone|call|telephone|hotline)\b", re.I),
    "@email": re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b|\be-?mail\b", re.IGNORECASE),
    "@price": re.compile(
        r"[$€£¥]\s?\d|\d\s?(?:[$€£¥]|dollars?|euros?|pounds?|cents?|usd|eur|gbp)\b|"
        r"\b(?:price|prices|cost|costs|fee|fees|free|charge|cheap|discount)\b",
        re.IGNORECASE,
    ),
    "@person": re.compile(r"\b(?:owner|owned|founded|manager|run by|team|staff)\b", re.I),
    "@year": re.compile(r"\b(?:1[6-9]\d\d|20\d\d)\b|\b(?:since|founded|established)\b", re.I),
}
# Synonym groups: a question word also matches the other words of its group, at a lower weight.
# Written as plain words; stemmed with ``stem`` below (see ``_synonyms``).
_SYNONYM_TEXT = (
    "open close hours time",
    "return refund exchange reimburse",
    "address location located street directions find",
    "phone call telephone number ring contact",
    "email mail contact",
    "price cost charge fee pay paid cheap expensive discount reduced concession",
    "repair fix service mend broken",
    "deliver delivery shipping ship send post",
    "buy sell sold purchase stock product item carry",
    "staff employee team owner manager",
    "park parking",
    "payment card cash pay",
    "weekend saturday sunday",
    "kid child children family",
    "pet dog cat animal",
    "book booking reserve reservation appointment",
    "job career hire hiring work",
    "cancel cancellation",
    "warranty guarantee",
    "eat food drink cafe coffee lunch restaurant snack meal hungry",
    "photo photography picture camera",
    "toilet restroom bathroom",
    "wifi internet",
    # Measures: questions ask "how far / how high / how long", texts state the quantity.
    "far distance distant kilometre kilometres mile miles",
    "high height altitude tall",
    "long lasts duration",
    "fast speed quick quickly",
    "often every frequently frequency",
    "computer laptop pc notebook",
    "borrow loan lend",
    "late overdue fine fines",
    "found founder start establish",
    "business shop store company firm",
    "tell report inform notify",
    "lose lost missing stolen",
    "week weekday",
    "town city village",
    "around orbit orbits circle circles",
)
_SYNONYM_WEIGHT = 0.6
_CONTRACTIONS = (
    (re.compile(r"\bcan'?t\b"), "can not"),
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'m\b"), " am"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'d\b"), " would"),
    (re.compile(r"\b(what|who|where|when|how|that|it|there|here|he|she)'s\b"), r"\1 is"),
    (re.compile(r"'s\b"), ""),
    # "e-bike", "e bike", "electric bike" are one word for one thing (and "e-books" are not
    # "books"): join the "e-" compounds before the single letter is dropped as noise.
    (re.compile(r"\be[- ]?(bike|scooter|book|reader|car)s?\b"), r"e\1"),
    (re.compile(r"\belectric (bike|bicycle|scooter|car)s?\b"), r"e\1"),
    (re.compile(r"\bebicycle\b"), "ebike"),
    # Typed or transcribed without the apostrophe.
    (re.compile(r"\b(what|where|when|who|how|that|there|it)s\b"), r"\1 is"),
    (re.compile(r"\b(do|does|did|is|are|was|were|could|would|should|have|has)nt\b"), r"\1 not"),
    (re.compile(r"\bcant\b"), "can not"),
    (re.compile(r"\bim\b"), "i am"),
    (re.compile(r"\byoure\b"), "you are"),
)
_TOKEN = re.compile(r"@?[a-z0-9]+")


def normalize(text: str) -> str:
    """Lower case, accents removed, typographic quotes unified, contractions expanded."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("’", "'").replace("‘", "'").replace("`", "'")
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return text


def stem(word: str) -> str:
    """A light suffix stripper: consistent on both sides, which is all lexical matching needs."""
    if len(word) <= 3 or word.isdigit() or word.startswith("@"):
        return word
    for suffix, replacement in (("ies", "y"), ("sses", "ss"), ("ied", "y")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return word[: -len(suffix)] + replacement
    if word.endswith(("ches", "shes", "sses", "xes", "zzes")):
        return word[:-2]  # "es" is a suffix only after a sibilant: boxes, but bikes -> bike
    for suffix in ("ing", "ed", "ly", "s", "ment", "ion", "er"):
        if (
            word.endswith(suffix)
            and len(word) - len(suffix) >= 3
            and not (suffix == "s" and word.endswith(("ss", "us", "is")))
        ):
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]  # running -> run, shopping -> shop
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]  # close/closes/closed -> clos
    return word


def tokenize(text: str, *, paraphrase: bool = False) -> list[str]:
    """Stemmed content words of ``text`` (stop-words dropped). With ``paraphrase``, known
    question phrasings are first rewritten to canonical terms and answer-type tags."""
    # "@" marks answer-type tags only: in the text itself "a@b.com" is just words.
    text = normalize(text).replace("@", " ")
    if paraphrase:
        for pattern, replacement in _PARAPHRASES:
            text = pattern.sub(replacement, text)
    return [
        stem(word)
        for word in _TOKEN.findall(text)
        # Single letters ("e" of "e-bike", "s" of "children's") carry no meaning on their own.
        if word not in STOP_WORDS and (len(word) > 1 or word.isdigit())
    ]


@functools.cache
def _synonyms() -> tuple[frozenset[str], ...]:
    # The groups must go through the same stemmer as the text and the questions.
    return tuple(frozenset(stem(word) for word in group.split()) for group in _SYNONYM_TEXT)


def answer_tags(text: str) -> list[str]:
    """The answer-type tags (``"@time"``, ``"@price"``, ...) whose patterns occur in ``text``:
    a question "how much ..." is tokenised to ``@price``, which then matches such a text."""
    return [tag for tag, pattern in _TAG_PATTERNS.items() if pattern.search(text)]


def synonyms(term: str) -> list[str]:
    """Other stemmed words of ``term``'s synonym groups (empty for most words)."""
    out: list[str] = []
    for group in _synonyms():
        if term in group:
            out.extend(other for other in sorted(group) if other != term and other not in out)
    return out


@dataclass(frozen=True)
class KnowledgeHit:
    """One sentence of the knowledge text that answers a question.

    ``coverage`` is the IDF-weighted share of the question's words found in the sentence.
    """

    text: str
    score: float
    coverage: float
    position: int


@dataclass(frozen=True)
class _Passage:
    text: str
    position: int
    terms: dict[str, float]
    length: int


class KnowledgeIndex:
    """BM25 index over the sentences of a knowledge text (built once, searched per question)."""

    K1 = 1.2
    B = 0.75
    HEADING_WEIGHT = 0.5  # a heading describes its section, but less than the sentence's own words

    def __init__(self, text: str) -> None:
        self.topics: list[str] = []  # headings, for "you can ask me about ..."
        self._passages = self._build_passages(text)
        self._df: Counter[str] = Counter()
        for passage in self._passages:
            self._df.update(passage.terms.keys())
        self._n = len(self._passages)
        self._avg_len = (sum(p.length for p in self._passages) / self._n) if self._n else 1.0

    def __len__(self) -> int:
        return self._n

    def sentences(self) -> list[str]:
        """The indexed sentences in the text's order (markdown stripped, headings dropped)."""
        return [passage.text for passage in self._passages]

    def knows(self, term: str) -> bool:
        """Does ``term`` (a ``tokenize`` term) occur in the text?"""
        return term in self._df

    def idf(self, term: str) -> float:
        """BM25 IDF (always > 0); a term absent from the text gets the highest value."""
        df = self._df.get(term, 0)
        return math.log(1.0 + (self._n - df + 0.5) / (df + 0.5))

    def search(self, question: str, *, limit: int = 2) -> list[KnowledgeHit]:
        """The best sentences for ``question``, best first (may be empty)."""
        query = list(dict.fromkeys(tokenize(question, paraphrase=True)))
        if not query or not self._n:
            return []
        expansions = {term: self._expand(term) for term in query}
        importance = {term: self._importance(term, expansions[term]) for term in query}
        total = sum(importance.values())
        hits: list[KnowledgeHit] = []
        for passage in self._passages:
            score = 0.0
            covered = 0.0
            for term in query:
                best = 0.0
                for candidate, weight in expansions[term]:
                    best = max(best, weight * self._bm25(candidate, passage))
                if best > 0:
                    score += best
                    covered += importance[term]
            if score > 0:
                hits.append(KnowledgeHit(passage.text, score, covered / total, passage.position))
        hits.sort(key=lambda hit: (-hit.score, -hit.coverage, hit.position))
        return hits[:limit]

    # -- internals -------------------------------------------------------------------------

    def _expand(self, term: str) -> list[tuple[str, float]]:
        return [(term, 1.0)] + [(other, _SYNONYM_WEIGHT) for other in synonyms(term)]

    def _importance(self, term: str, expansions: Iterable[tuple[str, float]]) -> float:
        """How much a question word matters: its IDF in the text (or its synonyms' if it is
        absent but they are present). Answer-type tags count half: "when" alone is not a topic."""
        # Not discounted by the synonym weight: "pictures" is no less important a word of the
        # question because the text says "photography".
        present = [self.idf(c) for c, _ in expansions if c in self._df]
        value = max(present) if present else self.idf(term)
        return value * (0.5 if term.startswith("@") else 1.0)

    def _bm25(self, term: str, passage: _Passage) -> float:
        tf = passage.terms.get(term, 0.0)
        if not tf:
            return 0.0
        norm = self.K1 * (1 - self.B + self.B * passage.length / self._avg_len)
        return self.idf(term) * tf * (self.K1 + 1) / (tf + norm)

    def _build_passages(self, text: str) -> list[_Passage]:
        passages: list[_Passage] = []
        heading = ""
        for paragraph in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
            lines = [line for line in paragraph.split("\n") if line.strip()]
            if not lines:
                continue
            # Headings: a short first line without terminal punctuation ("Returns", "## Hours").
            # A "Key: value" line is a fact, not a heading.
            first = re.sub(r"^[#>*\-\s]+|[*#:\s]+$", "", lines[0])
            if (
                first
                and len(lines) > 1
                and len(first.split()) <= 6
                and ":" not in first
                and not re.search(r"[.!?]\s*$", lines[0])
            ):
                heading = first
                self.topics.append(first)
                lines = lines[1:]
            sentences = self._sentences("\n".join(lines))
            for sentence in sentences:
                terms: dict[str, float] = dict(Counter(tokenize(sentence)))
                for tag in answer_tags(sentence):
                    terms[tag] = terms.get(tag, 0.0) + 1.0
                for term in tokenize(heading):
                    terms[term] = terms.get(term, 0.0) + self.HEADING_WEIGHT
                if not terms:
                    continue
                passages.append(
                    _Passage(sentence, len(passages), terms, max(1, len(sentence.split())))
                )
        return passages

    @staticmethod
    def _sentences(text: str) -> list[str]:
        """Sentences of a paragraph; "Hours:" lead-ins are joined with what follows."""
        pieces = split_clauses(text, min_comma_words=10**6)
        merged: list[str] = []
        carry = ""
        for piece in pieces:
            piece = f"{carry} {piece}".strip() if carry else piece
            carry = ""
            if piece.endswith((":", ";")) or (len(piece.split()) <= 2 and piece[-1] not in ".!?"):
                carry = piece  # a lead-in or a fragment: it belongs to the next piece
                continue
            merged.append(piece)
        if carry:
            merged.append(carry)
        out = []
        for sentence in merged:
            spoken = strip_markdown(sentence)
            if spoken and spoken[-1] not in ".!?":
                spoken += "."
            if re.search(r"\w", spoken):
                out.append(spoken)
        return out
