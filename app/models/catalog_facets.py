"""Catalog domain constants for browsing: display labels of the occasions and the price buckets of the
product facets."""

from __future__ import annotations

from app.models.catalog import Occasion

OCCASION_LABELS: dict[Occasion, str] = {
    Occasion.birthday: "Birthday", Occasion.anniversary: "Anniversary", Occasion.love_romance: "Love & Romance",
    Occasion.wedding: "Wedding", Occasion.sympathy: "Sympathy", Occasion.get_well: "Get Well",
    Occasion.congratulations: "Congratulations", Occasion.thank_you: "Thank You", Occasion.new_baby: "New Baby",
    Occasion.just_because: "Just Because", Occasion.mothers_day: "Mother's Day",
    Occasion.valentines_day: "Valentine's Day",
}

# Price buckets of the facets, on the cheapest size (cents): [lower, upper) with None = open.
PRICE_BUCKETS: list[tuple[int, int | None]] = [(0, 5000), (5000, 7500), (7500, 10000), (10000, 15000), (15000, None)]
