"""Catalog domain constants for browsing: the price buckets of the product facets (the occasions' labels are
``models.catalog.OCCASION_LABELS``: search matches them too)."""

from __future__ import annotations

# Price buckets of the facets, on the cheapest size (cents): [lower, upper) with None = open.
PRICE_BUCKETS: list[tuple[int, int | None]] = [(0, 5000), (5000, 7500), (7500, 10000), (10000, 15000), (15000, None)]
