"""MongoDB connection and Beanie initialisation."""

from __future__ import annotations

from typing import Any

from beanie import init_beanie
from pymongo import AsyncMongoClient

from app.config import Settings


async def connect(settings: Settings, url: str) -> AsyncMongoClient[dict[str, Any]]:
    from app.models import DOCUMENT_MODELS

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True, uuidRepresentation="standard",
                                                serverSelectionTimeoutMS=5000, appname="amour-florals")
    await init_beanie(database=client[settings.mongodb_db], document_models=DOCUMENT_MODELS)
    return client
