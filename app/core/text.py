"""Text: the one free-text input type, and folded keys for slugs and accent/case-insensitive search.

``Annotated[str, FreeText(max_length, ...)]`` is the type of every human-written field of a request body
(names, address lines, gift and card messages, delivery instructions, review text, staff notes, descriptions):
the value is put in Unicode NFC, trimmed, and refused (422) if it holds a control character (C0, DEL, C1;
newline and tab are allowed only where the field is multi-line, and CRLF becomes LF there) or a bidirectional
override or isolate (U+202A-U+202E, U+2066-U+2069), which can make text display differently from what it says.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from annotated_types import GroupedMetadata
from pydantic import BeforeValidator, StringConstraints

_NON_WORD = re.compile(r"[^a-z0-9]+")
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class FreeText(GroupedMetadata):
    """The rules of a free-text ``str``: ``Annotated[str, FreeText(80, min_length=1)]`` is NFC, trimmed,
    ``min_length``..``max_length`` characters (counted after normalisation), without control characters (but
    newline/tab when ``multiline``) or bidi overrides. Pydantic expands it (a ``GroupedMetadata``) into a
    ``StringConstraints`` and a ``BeforeValidator``; the instance stays in the field's metadata, as the marker
    the input-rule sweep in the tests looks for."""

    max_length: int
    min_length: int = 0
    multiline: bool = False

    def __iter__(self) -> Iterator[object]:
        yield StringConstraints(strip_whitespace=True, min_length=self.min_length or None, max_length=self.max_length)
        multiline = self.multiline
        yield BeforeValidator(lambda v: clean_text(v, multiline=multiline))


def _is_control(ch: str) -> bool:
    o = ord(ch)
    return o < 0x20 or 0x7F <= o <= 0x9F


def clean_text(value: Any, *, multiline: bool) -> Any:
    """NFC-normalise ``value`` and refuse control characters and bidi overrides (ValueError). Non-strings are
    passed through for the string validation to refuse."""
    if not isinstance(value, str):
        return value
    value = unicodedata.normalize("NFC", value)
    if multiline:
        value = value.replace("\r\n", "\n")
    for ch in value:
        if ch in BIDI_CONTROLS:
            raise ValueError(f"must not contain the bidirectional control U+{ord(ch):04X}")
        if _is_control(ch) and not (multiline and ch in "\n\t"):
            allowed = " (newlines and tabs are allowed)" if multiline else ""
            raise ValueError(f"must not contain the control character U+{ord(ch):04X}{allowed}")
    return value


# Characters outside category Cf that still show nothing (Unicode's Default_Ignorable_Code_Point and blank
# lookalikes): combining grapheme joiner, Hangul fillers, Mongolian variation selectors, variation selectors,
# the Braille blank.
BLANK_LOOKALIKES = frozenset({0x034F, 0x115F, 0x1160, 0x2800, 0x3164, 0xFFA0, *range(0x180B, 0x1810),
                              *range(0xFE00, 0xFE10)})


def clean_token(value: Any) -> Any:
    """``clean_text`` (single line) for a value that must hold no whitespace and no invisible character at all,
    such as a URL: it also refuses (ValueError) whitespace and format characters (Unicode category Cf: soft
    hyphen, zero-width spaces and joiners, bidi marks, the byte-order mark…) and ``BLANK_LOOKALIKES``, which
    free text may carry (an emoji sequence joins with U+200D) but which hide what a link really is."""
    value = clean_text(value, multiline=False)
    if not isinstance(value, str):
        return value
    for ch in value:
        if ch.isspace():
            raise ValueError(f"must not contain whitespace (U+{ord(ch):04X})")
        if unicodedata.category(ch) == "Cf" or ord(ch) in BLANK_LOOKALIKES:
            raise ValueError(f"must not contain the invisible character U+{ord(ch):04X}")
    return value


def normalize(text: str) -> str:
    """Lower-case, accents stripped, punctuation folded to single spaces: "Pêche Peonies!" -> "peche peonies"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("'", "").replace("\u2019", ""))
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", ascii_only).strip()


def slugify(text: str, max_length: int = 80) -> str:
    slug = normalize(text).replace(" ", "-")[:max_length].strip("-")
    return slug or "item"


def word_keys(text: str, limit: int = 12) -> list[str]:
    """The normalized text from each word on: "Pêche Peonies" -> ["peche peonies", "peonies"].

    An anchored prefix match on any key finds the text by the start of any of its words.
    """
    norm = normalize(text)
    words = norm.split(" ") if norm else []
    return [" ".join(words[i:]) for i in range(min(len(words), limit))]


MAX_SEARCH_WORDS = 400


def search_words(*parts: str | list[str] | None) -> list[str]:
    """The distinct folded words (``normalize``: lower-case, accents stripped) of ``parts``, in order of first
    appearance, at most MAX_SEARCH_WORDS: what product search matches query words against, so "rose" finds
    "Rosé" the same way on every database."""
    seen: dict[str, None] = {}
    for part in parts:
        if not part:
            continue
        for word in normalize(" ".join(part) if isinstance(part, list) else part).split():
            seen.setdefault(word, None)
    return list(seen)[:MAX_SEARCH_WORDS]
