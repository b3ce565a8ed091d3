"""Judge-free answer extraction: which option did a generated response choose?

Rules, in order of precedence (the first that decides wins):

1. **bare** — the whole response, once whitespace and the wrapping characters
   ``( ) [ ] { } . , : ; ! ? * ' " `` are stripped, is one letter of a valid option, in either
   case: ``"B"``, ``"(b)"``, ``"C."``, ``"**D**"``.
2. **letter** — upper-case option letters standing alone as tokens (not part of a word, a number,
   ``A's`` or ``B-12``): ``"Answer: B"``, ``"The answer is (C)."``. Exactly one distinct letter
   decides. Several distinct letters are ambiguous, and give no answer, unless the response *starts*
   with one of them (**leading**): ``"B. A is wrong because ..."`` is B, but ``"A or B"`` (the
   leading letter joined to the next by ``and / or / nor / vs / & / /``) stays ambiguous. Only
   letters of the valid options count, so ``"I think B"`` is B when there is no option I.
3. **text** — the option texts found in the response (case-insensitive, whitespace-normalised,
   at word boundaries, trailing ``.`` of an option ignored). One match decides. Several matches
   decide only when the longest option's mentions cover every mention of the others (``"12"``
   over ``"1"`` and ``"2"`` in ``"there are 12 apples"``); otherwise no answer.
4. **article** — a sentence-initial ``"A"`` that reads as the English article (see below) is
   taken as option A only if no option text was found at all.

The word "A". In ``"A cat is shown."`` the ``A`` is an article, not a choice. A token ``A`` is an
*article candidate* when it starts a sentence (start of the response, after ``. ! ?`` and a space,
or after a line break) and is followed by a space and a lower-case word that is not a verb or
conjunction (``"A is correct"``, ``"A and B"`` keep their letter reading). Candidates do not count
in rule 2, so a unique option text (rule 3) overrides them: with options ``{A: "dog", B: "cat"}``,
``"A cat is shown."`` is B. When nothing else decides, the candidate still counts as A (rule 4), as
MMBench's own matcher would. A lower-case ``a`` only ever counts as a bare response (rule 1).

Differences from VLMEvalKit's ``can_infer`` (the MMBench reference): it falls back to text
matching when several letters appear (we say ambiguous, a mention of two letters is not a
choice); it matches option texts as plain substrings (we require word boundaries, so option
``"cat"`` is not found in ``"category"``); it gives no answer when several option texts match (we
let one that covers all the others win); and it reads every ``A`` as a letter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pulse.eval.options import clean_options

# Characters that may wrap a bare answer ("(B)", "B.", "**B**", "'B'").
_WRAP = " \t\r\n()[]{}.,:;!?*'\"`“”‘’"
# Characters allowed before a leading letter ("(B) ...", "**B** ...").
_OPEN = " \t\r\n([{*'\"`“‘"

# An upper-case letter that stands alone: no word character on either side, and not glued to a
# word by an apostrophe or hyphen ("A's", "B-12", "x-A").
_LETTER_TOKEN = re.compile(r"(?<!\w)(?<!\w['’-])([A-Z])(?!\w)(?!['’-]\w)")
_SENTENCE_START = re.compile(r"(?:\A|[.!?][\"')\]]*[ \t]+|\n[ \t]*)\Z")
_JOINED = re.compile(r"\s*(?:(?:and|or|nor|vs\.?|versus)\b|[&/])", re.IGNORECASE)
_NEXT_WORD = re.compile(r"[ \t]+([a-z]+)")
# After the article "a" comes a noun phrase, never a verb or a conjunction: after these words an
# "A" is the option letter ("A is correct", "A and B are both wrong").
_LETTER_FOLLOWERS = frozenset({"and", "or", "nor", "but", "is", "was", "are", "were", "would"})
_LETTER_FOLLOWERS |= {"could", "should", "will", "might", "must", "seems", "appears", "because"}
_LETTER_FOLLOWERS |= {"since", "as", "vs", "versus", "then", "so"}


@dataclass(frozen=True)
class Extraction:
    """The chosen letter (None: no answer, scored wrong) and the rule that decided."""

    letter: str | None
    rule: str  # bare | letter | leading | text | article | ambiguous | none


def extract_choice(response: str, options: Mapping[str, object]) -> str | None:
    """The option letter a response chose, or None (no answer; scored as wrong)."""
    return explain_choice(response, options).letter


def explain_choice(response: str, options: Mapping[str, object]) -> Extraction:
    """:func:`extract_choice` with the rule that decided (for per-item records and debugging)."""
    opts = clean_options(options)
    if not opts:
        raise ValueError("extraction needs at least one non-empty option")
    text = response.strip()
    if not text:
        return Extraction(None, "none")

    bare = text.strip(_WRAP)
    if len(bare) == 1 and bare.upper() in opts:
        return Extraction(bare.upper(), "bare")

    strong: list[tuple[str, int]] = []  # (letter, start) of tokens read as letters
    article = False
    for match in _LETTER_TOKEN.finditer(text):
        letter = match.group(1)
        if letter not in opts:
            continue
        if letter == "A" and _reads_as_article(text, match.start(), match.end()):
            article = True
        else:
            strong.append((letter, match.start()))
    distinct = {letter for letter, _ in strong}
    if len(distinct) == 1:
        return Extraction(strong[0][0], "letter")
    if distinct:
        first, start = strong[0]
        if not text[:start].strip(_OPEN) and not _JOINED.match(text, start + 1):
            return Extraction(first, "leading")
        return Extraction(None, "ambiguous")

    matched = _option_text_matches(text, opts)
    if len(matched) == 1:
        return Extraction(next(iter(matched)), "text")
    if matched:
        winner = _covering_option(matched)
        return Extraction(winner, "text") if winner else Extraction(None, "ambiguous")
    if article:
        return Extraction("A", "article")
    return Extraction(None, "none")


def mllmu_verdict(response: str, gold_letter: str) -> bool:
    """MLLMU-Bench's published MCQ rule: the first character of the stripped response,
    upper-cased, is one of A-D and equals the gold letter.

    Kept for comparability only: it reads ``"a cat"`` as A and ``"Answer: B"`` as A.
    """
    head = response.strip()[:1].upper()
    return head in ("A", "B", "C", "D") and head == gold_letter


def _reads_as_article(text: str, start: int, end: int) -> bool:
    if not _SENTENCE_START.search(text[:start]):
        return False
    nxt = _NEXT_WORD.match(text, end)
    return nxt is not None and nxt.group(1) not in _LETTER_FOLLOWERS


def _normalise(s: str) -> str:
    return " ".join(s.lower().split())


def _option_text_matches(text: str, opts: Mapping[str, str]) -> dict[str, list[tuple[int, int]]]:
    """Letter -> spans where the option's text occurs in the normalised response."""
    haystack = _normalise(text)
    found: dict[str, list[tuple[int, int]]] = {}
    for letter, option in opts.items():
        needle = _normalise(option).rstrip(".。")
        if not needle:
            continue
        # Word boundaries only where the option itself starts / ends with a word character.
        head = r"(?<!\w)" if re.match(r"\w", needle) else ""
        tail = r"(?!\w)" if re.search(r"\w\Z", needle) else ""
        spans = [m.span() for m in re.finditer(head + re.escape(needle) + tail, haystack)]
        if spans:
            found[letter] = spans
    return found


def _covering_option(matched: Mapping[str, list[tuple[int, int]]]) -> str | None:
    """The longest matched option, if every mention of every other lies inside its mentions."""

    def length(letter: str) -> int:
        start, end = matched[letter][0]
        return end - start

    longest = max(matched, key=length)
    for letter, spans in matched.items():
        if letter == longest:
            continue
        if length(letter) >= length(longest):
            return None  # two options of equal length: nothing strictly contains the other
        for s, e in spans:
            if not any(ls <= s and e <= le for ls, le in matched[longest]):
                return None
    return longest
