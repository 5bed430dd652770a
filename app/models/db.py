"""The MongoDB connection, with Beanie initialised on every document model of ``app.models``."""

from __future__ import annotations

from typing import Any

from beanie import init_beanie
from pymongo import AsyncMongoClient

from app.config import Settings
from app.models import DOCUMENT_MODELS


async def connect(settings: Settings, url: str) -> AsyncMongoClient[dict[str, Any]]:
    """A client for ``url`` (UTC-aware datetimes) with Beanie initialised on ``settings.mongodb_db``: every
    document model's collection and declared indexes (``DOCUMENT_MODELS``)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True, uuidRepresentation="standard",
                                                serverSelectionTimeoutMS=5000, appname="amour-florals")
    await init_beanie(database=client[settings.mongodb_db], document_models=DOCUMENT_MODELS)
    return client
