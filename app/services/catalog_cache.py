"""Catalog cache invalidation hook (placeholder in this branch).

The catalog area provides the implementation (a catalog version bump that invalidates cached lists,
facets and product detail); this stub only fixes the signature that reviews and images call after
every write that changes public product data.
"""

from __future__ import annotations


async def notify_catalog_changed(runtime) -> None:
    """Tell the catalog cache that public product data changed. The catalog area provides the implementation."""
