"""Constrained input types of the catalog's admin bodies and query parameters (lengths, patterns, ranges)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from app.core.text import FreeText
from app.core.types import Int

Text = Annotated[str, FreeText(5000, multiline=True)]
Name = Annotated[str, FreeText(120, min_length=2)]
Slug = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=2, max_length=80,
                                        pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
Code = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=30,
                                        pattern=r"^[a-z0-9][a-z0-9_-]*$")]
SeoTitle = Annotated[str, FreeText(70)]
SeoDescription = Annotated[str, FreeText(170)]
Tag = Annotated[str, FreeText(40, min_length=1), StringConstraints(to_lower=True)]
Cents = Annotated[Int, Field(ge=1, le=10_000_000)]
CategoryRefId = Annotated[str, StringConstraints(max_length=40, pattern=r"^cat_[0-9A-Z]{26}$")]
IdOrSlug = Annotated[str, StringConstraints(min_length=2, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")]
