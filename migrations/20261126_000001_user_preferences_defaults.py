"""Give every user the preferences object (accounts imported from the MERN app may lack it)."""

from beanie import Document, free_fall_migration
from pydantic import Field


class User(Document):
    id: str
    preferences: dict = Field(default_factory=dict)

    class Settings:
        name = "users"


DEFAULTS = {"email_notifications": True, "newsletter": False, "favorite_occasions": []}


class Forward:
    @free_fall_migration(document_models=[User])
    async def add_preferences(self, session):
        await User.get_pymongo_collection().update_many(
            {"preferences": {"$exists": False}}, {"$set": {"preferences": DEFAULTS, "prefs_migrated": True}})


class Backward:
    @free_fall_migration(document_models=[User])
    async def remove_added_preferences(self, session):
        await User.get_pymongo_collection().update_many(
            {"prefs_migrated": True}, {"$unset": {"preferences": "", "prefs_migrated": ""}})
