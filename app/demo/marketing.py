"""Demo marketing data: a few newsletter subscribers (some of them demo customers) and a draft campaign.

Idempotent: a subscriber is added only if its address has no record; the campaign only if no campaign of
that name exists. Nothing is queued for sending.
"""

from __future__ import annotations

from beanie import SortDirection

from app.core.clock import utcnow
from app.models.catalog import Product, ProductStatus
from app.models.marketing import (
    Audience,
    BlockKind,
    Campaign,
    CampaignBlock,
    NewsletterSubscription,
    SubscriptionStatus,
)
from app.models.user import Role, User

DEMO_CAMPAIGN = "Spring collection (demo)"
SUBSCRIBERS = [  # Olivia and Liam subscribed from their accounts; the others by the storefront's form.
    ("olivia@example.com", SubscriptionStatus.confirmed, "account"),
    ("liam@example.com", SubscriptionStatus.confirmed, "account"),
    ("hazel@example.com", SubscriptionStatus.confirmed, "form"),
    ("juniper@example.com", SubscriptionStatus.pending, "form"),
    ("rowan@example.com", SubscriptionStatus.unsubscribed, "form"),
]


async def seed_marketing() -> list[str]:
    added = 0
    for email, status, source in SUBSCRIBERS:
        if await NewsletterSubscription.find_one({"email": email}) is None:
            now = utcnow()
            await NewsletterSubscription(
                email=email, status=status, source=source,
                confirmed_at=now if status != SubscriptionStatus.pending else None,
                unsubscribed_at=now if status == SubscriptionStatus.unsubscribed else None,
                unsubscribed_via="link" if status == SubscriptionStatus.unsubscribed else None).insert()
            added += 1
    lines = [f"Newsletter: {added} demo subscriber(s) added."] if added else []
    if await Campaign.find_one({"name": DEMO_CAMPAIGN}) is None:
        admin = await User.find_one({"role": Role.admin.value})
        featured = await Product.find({"status": ProductStatus.active.value, "featured": True}).sort(
            [("_id", SortDirection.ASCENDING)]).limit(3).to_list()
        blocks = [CampaignBlock(type=BlockKind.heading, text="Spring is in bloom, {first_name}"),
                  CampaignBlock(type=BlockKind.paragraph,
                                text="Peonies, tulips and ranunculus have arrived at the shop.\n\n"
                                     "Order by 1 pm for same-day delivery in Manhattan.")]
        if featured:
            blocks.append(CampaignBlock(type=BlockKind.products, title="Our florists' picks",
                                        product_ids=[p.id for p in featured]))
        blocks.append(CampaignBlock(type=BlockKind.button, text="Shop the collection", url="/collections/spring"))
        campaign = Campaign(name=DEMO_CAMPAIGN, subject="{first_name}, spring is in bloom",
                            preheader="New seasonal bouquets, delivered today", blocks=blocks,
                            audience=Audience(), created_by=admin.id if admin else "seed")
        await campaign.insert()
        lines.append(f"Campaigns: draft {DEMO_CAMPAIGN!r} added ({campaign.id}).")
    return lines
