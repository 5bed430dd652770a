"""Text keys for slugs and accent/case-insensitive prefix search."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^a-z0-9]+")


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
