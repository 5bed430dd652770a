"""Money for people: integer minor units (cents) rendered as text for emails and problem details."""

from __future__ import annotations


def money(cents: int, currency: str = "USD") -> str:
    """``cents`` (integer minor units, may be negative) as display text: ``$1,234.50`` for USD,
    ``EUR 12.00`` for any other ISO 4217 code; a minus sign leads (``-$5.00``). Two decimals always."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    prefix = "$" if currency.upper() == "USD" else f"{currency.upper()} "
    return f"{sign}{prefix}{whole:,}.{frac:02d}"
