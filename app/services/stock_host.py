"""The view of the app runtime that stock writes (``app.services.inventory``) need.

``app.composition.Runtime`` satisfies it; services that take or return stock (orders, product admin) are
given it instead of the whole runtime, so what they can reach is typed and stated here.
"""

from __future__ import annotations

from typing import Protocol

from app.config import Settings
from app.core.jobs import JobRunner
from app.services.catalog_cache import CatalogCache
from app.services.email import EmailService


class StockHost(Protocol):
    """Settings and the outbox (the low-stock alert email), the job runner (woken when a size is back in
    stock; None: the back-in-stock job finds it when it next polls) and the catalog cache (bumped)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def email(self) -> EmailService | None: ...

    @property
    def jobs(self) -> JobRunner | None: ...

    @property
    def catalog_cache(self) -> CatalogCache: ...
