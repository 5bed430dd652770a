"""Marketing consent moves from the account to the address: ``preferences.newsletter`` becomes the address's
``newsletter_subscriptions`` record, the one fact that ``/newsletter/*`` and ``/users/me`` share.

Forward: every account with ``preferences.newsletter: true`` gets a confirmed subscription (source
``migration``; an existing record of the address is left as it is), and the field leaves every account.
Backward: every account gets ``preferences.newsletter`` back, true when its address has a confirmed
subscription; the records this migration created are removed (those made by the new release stay, unused
by the previous one).
"""

from datetime import UTC, datetime

from beanie import Document, free_fall_migration
from pymongo.errors import DuplicateKeyError

from app.core.ids import new_id


class User(Document):
    id: str

    class Settings:
        name = "users"


class NewsletterSubscription(Document):
    id: str

    class Settings:
        name = "newsletter_subscriptions"


class Forward:
    @free_fall_migration(document_models=[User, NewsletterSubscription])
    async def preference_to_subscription(self, session):
        users = User.get_pymongo_collection()
        subs = NewsletterSubscription.get_pymongo_collection()
        await subs.create_index("email", unique=True, name="email_unique")
        async for user in users.find({"preferences.newsletter": True, "email": {"$type": "string"}},
                                     {"email": 1}, session=session):
            now = datetime.now(UTC)
            try:
                await subs.insert_one({"_id": new_id("nls"), "email": user["email"].lower(), "status": "confirmed",
                                       "source": "migration", "confirmed_at": now, "unsubscribed_at": None,
                                       "unsubscribed_via": None, "created_at": now}, session=session)
            except DuplicateKeyError:
                pass  # the address already has its record: it is the fact
        await users.update_many({"preferences.newsletter": {"$exists": True}},
                                {"$unset": {"preferences.newsletter": ""}}, session=session)


class Backward:
    @free_fall_migration(document_models=[User, NewsletterSubscription])
    async def subscription_to_preference(self, session):
        users = User.get_pymongo_collection()
        subs = NewsletterSubscription.get_pymongo_collection()
        confirmed = {d["email"] async for d in subs.find({"status": "confirmed"}, {"email": 1}, session=session)}
        async for user in users.find({}, {"email": 1, "preferences": 1}, session=session):
            if not isinstance(user.get("preferences"), dict):
                continue  # never had preferences (the earlier migration's backward handles those it added)
            await users.update_one({"_id": user["_id"]},
                                   {"$set": {"preferences.newsletter": user.get("email") in confirmed}},
                                   session=session)
        await subs.delete_many({"source": "migration"}, session=session)
