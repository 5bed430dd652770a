"""Demo catalog: 15 categories on 2 levels and 64 bouquets covering every occasion, flower type and color.

Idempotent: categories and products are matched by slug; existing ones are left as they are.
No images (the image storage seeds placeholders).
"""

from __future__ import annotations

import hashlib

from app.core.text import slugify, word_keys
from app.models.catalog import AddOn, AddOnKind, Category, Product, ProductStatus, Size
from app.models.inventory import StockMovement, StockReason
from app.services.categories import category_path

CATEGORIES: list[tuple[str, str | None, str]] = [
    ("Bouquets", None, "Hand-tied bouquets arranged the morning they are delivered."),
    ("Rose Bouquets", "bouquets", "Garden and long-stem roses in every shade."),
    ("Mixed Bouquets", "bouquets", "Seasonal mixes designed by our florists."),
    ("Luxury Bouquets", "bouquets", "Generous, statement-making designs with premium stems."),
    ("Arrangements", None, "Designs arranged in a vessel, ready to display."),
    ("Vase Arrangements", "arrangements", "Arrangements delivered in a glass or ceramic vase."),
    ("Boxed Flowers", "arrangements", "Flowers arranged in a keepsake hat box."),
    ("Baskets", "arrangements", "Rustic baskets filled with blooms."),
    ("Plants & Orchids", None, "Long-lasting orchids and flowering plants."),
    ("Orchids", "plants-orchids", "Phalaenopsis and cymbidium orchids in ceramic pots."),
    ("Sympathy", None, "Thoughtful flowers to honour and comfort."),
    ("Sympathy Bouquets", "sympathy", "Soft, peaceful bouquets for the home."),
    ("Funeral Sprays", "sympathy", "Standing sprays and casket arrangements for services."),
    ("Gifts", None, "Flowers paired with something sweet."),
    ("Flowers & Chocolates", "gifts", "Bouquets delivered with artisan chocolates."),
]

# name, category slug, flower types, colors, occasions, standard price (dollars), one-line description
BOUQUETS: list[tuple[str, str, str, str, str, int, str]] = [
    ("Classic Dozen Red Roses", "rose-bouquets", "roses", "red", "love_romance valentines_day anniversary", 69,
     "Twelve long-stem red roses with eucalyptus, the timeless way to say I love you."),
    ("Blush Garden Roses", "rose-bouquets", "roses", "pink", "anniversary love_romance mothers_day", 74,
     "Soft blush garden roses gathered with dusty miller and waxflower."),
    ("White Rose Elegance", "rose-bouquets", "roses", "white", "wedding sympathy anniversary", 72,
     "Ivory roses and seeded eucalyptus in a clean, modern wrap."),
    ("Sunshine Yellow Roses", "rose-bouquets", "roses", "yellow", "birthday thank_you just_because", 64,
     "A dozen cheerful yellow roses to brighten any day."),
    ("Two Dozen Red Roses", "luxury-bouquets", "roses", "red", "valentines_day love_romance anniversary", 129,
     "Twenty-four velvet red roses for the grandest gesture."),
    ("Lavender Rose Dream", "rose-bouquets", "roses", "purple", "love_romance birthday just_because", 79,
     "Rare lavender roses with silver-dollar eucalyptus."),
    ("Coral Rose Sunset", "rose-bouquets", "roses", "orange", "birthday congratulations thank_you", 76,
     "Coral and peach roses that glow like a summer evening."),
    ("Rainbow Rose Bouquet", "rose-bouquets", "roses", "mixed", "birthday congratulations just_because", 82,
     "Roses in every colour of the rainbow for a joyful surprise."),
    ("Pêche Peonies", "luxury-bouquets", "peonies", "pink orange", "mothers_day birthday wedding", 95,
     "Peach and coral peonies, lush and fragrant, in season from May."),
    ("Blushing Peony Cloud", "luxury-bouquets", "peonies", "pink", "wedding anniversary mothers_day", 110,
     "Armfuls of pale pink peonies that open into soft clouds."),
    ("White Peony Grace", "luxury-bouquets", "peonies", "white", "wedding sympathy anniversary", 105,
     "Pure white peonies with delicate greenery."),
    ("Peony & Rose Romance", "luxury-bouquets", "peonies roses", "pink red", "love_romance valentines_day", 125,
     "Deep red roses nestled among blush peonies."),
    ("Stargazer Lily Bouquet", "mixed-bouquets", "lilies", "pink", "birthday congratulations mothers_day", 68,
     "Fragrant stargazer lilies with their bold pink petals."),
    ("Peaceful White Lilies", "sympathy-bouquets", "lilies", "white", "sympathy get_well", 72,
     "Oriental white lilies that bring calm and comfort."),
    ("Tiger Lily Blaze", "mixed-bouquets", "lilies", "orange", "congratulations birthday just_because", 62,
     "Spotted orange tiger lilies with bright solidago."),
    ("Golden Lily Glow", "mixed-bouquets", "lilies", "yellow", "get_well thank_you", 60,
     "Yellow Asiatic lilies to lift spirits."),
    ("Spring Tulip Medley", "mixed-bouquets", "tulips", "mixed", "just_because birthday mothers_day", 54,
     "A bright armful of Dutch tulips in mixed spring colours."),
    ("Pink Tulip Kiss", "mixed-bouquets", "tulips", "pink", "love_romance new_baby mothers_day", 52,
     "Twenty soft pink tulips, simply wrapped."),
    ("Purple Tulip Reverie", "mixed-bouquets", "tulips", "purple", "birthday thank_you just_because", 56,
     "Deep purple and lilac tulips with spring greens."),
    ("White Tulip Whisper", "vase-arrangements", "tulips", "white", "wedding sympathy new_baby", 66,
     "White French tulips arranged in a clear glass vase."),
    ("Yellow Tulip Morning", "mixed-bouquets", "tulips", "yellow", "get_well thank_you", 50,
     "Sunny yellow tulips to welcome the morning."),
    ("Red Tulip Passion", "mixed-bouquets", "tulips", "red", "valentines_day love_romance", 55,
     "Scarlet tulips for a modern declaration of love."),
    ("White Phalaenopsis Orchid", "orchids", "orchids", "white", "sympathy congratulations thank_you", 79,
     "A double-stem white orchid in a ceramic pot that blooms for weeks."),
    ("Purple Orchid Elegance", "orchids", "orchids", "purple", "birthday congratulations", 84,
     "Vivid purple phalaenopsis in a glazed pot."),
    ("Blush Cymbidium Orchid", "orchids", "orchids", "pink", "mothers_day anniversary", 115,
     "Long-lasting cymbidium stems in blush tones."),
    ("Mini Orchid Trio", "orchids", "orchids", "mixed", "thank_you new_baby get_well", 69,
     "Three mini orchids in white, pink and purple."),
    ("Sunflower Smiles", "mixed-bouquets", "sunflowers", "yellow", "birthday get_well thank_you", 58,
     "Big-faced sunflowers with chamomile and greens."),
    ("Sunflower Harvest Basket", "baskets", "sunflowers", "yellow orange", "thank_you congratulations", 75,
     "Sunflowers, orange roses and wheat in a willow basket."),
    ("Sunny Days Bouquet", "mixed-bouquets", "sunflowers daisies", "yellow white", "just_because get_well", 56,
     "Sunflowers and white daisies: a field of summer in your hands."),
    ("Autumn Sunflower Glow", "mixed-bouquets", "sunflowers", "orange", "thank_you just_because", 62,
     "Bronze sunflowers and rust-coloured foliage."),
    ("Blue Hydrangea Breeze", "vase-arrangements", "hydrangeas", "blue", "get_well thank_you new_baby", 72,
     "Cloud-like blue hydrangeas in a tall glass vase."),
    ("Hydrangea & Rose Vase", "vase-arrangements", "hydrangeas roses", "white pink", "anniversary mothers_day", 89,
     "White hydrangeas and pink roses arranged in a cylinder vase."),
    ("Purple Hydrangea Hatbox", "boxed-flowers", "hydrangeas", "purple", "birthday mothers_day", 92,
     "Violet hydrangeas tucked into a round keepsake box."),
    ("Ocean Blue Delight", "mixed-bouquets", "hydrangeas", "blue white", "new_baby congratulations", 78,
     "Blue hydrangeas, white roses and delphinium."),
    ("Carnation Confetti", "mixed-bouquets", "carnations", "mixed", "birthday congratulations", 44,
     "Bright mixed carnations, bursting with colour."),
    ("Pink Carnation Love", "mixed-bouquets", "carnations", "pink", "mothers_day love_romance", 42,
     "Soft pink carnations, Mother's Day's classic flower."),
    ("Red Carnation Tribute", "funeral-sprays", "carnations", "red white", "sympathy", 145,
     "A standing spray of red and white carnations for a service."),
    ("White Carnation Serenity", "sympathy-bouquets", "carnations", "white", "sympathy get_well", 48,
     "Pure white carnations with soft greenery."),
    ("Daisy Delight", "mixed-bouquets", "daisies", "white yellow", "just_because get_well new_baby", 42,
     "White daisies with sunny centres, simple and sweet."),
    ("Gerbera Daisy Party", "mixed-bouquets", "gerberas", "mixed", "birthday congratulations", 49,
     "Vibrant gerbera daisies in a riot of colours."),
    ("Orange Gerbera Zest", "vase-arrangements", "gerberas", "orange", "get_well thank_you", 52,
     "Orange gerberas and green hypericum in a glass vase."),
    ("Pink Gerbera Pop", "mixed-bouquets", "gerberas", "pink", "new_baby birthday", 46,
     "Playful pink gerberas to welcome the new arrival."),
    ("Ranunculus Romance", "luxury-bouquets", "ranunculus", "pink white", "wedding love_romance", 98,
     "Layered ranunculus blooms in blush and cream."),
    ("Coral Ranunculus Charm", "mixed-bouquets", "ranunculus", "orange", "birthday thank_you", 74,
     "Coral ranunculus with silver eucalyptus."),
    ("Butterfly Ranunculus Whimsy", "luxury-bouquets", "ranunculus", "yellow pink", "just_because mothers_day", 96,
     "Shimmering butterfly ranunculus in sunny shades."),
    ("Garden Party Mix", "mixed-bouquets", "mixed", "mixed", "birthday just_because", 64,
     "A florist's choice of the freshest seasonal blooms."),
    ("Wildflower Meadow", "mixed-bouquets", "mixed daisies", "mixed", "just_because thank_you", 59,
     "A loose, just-picked meadow bouquet."),
    ("Pastel Dreams", "mixed-bouquets", "mixed roses", "pink purple", "new_baby mothers_day", 68,
     "Pastel roses, stock and lisianthus."),
    ("Bold & Bright Bouquet", "mixed-bouquets", "mixed gerberas", "orange yellow red", "birthday congratulations",
     61, "Hot-coloured gerberas, roses and alstroemeria."),
    ("Congratulations Basket", "baskets", "mixed", "mixed", "congratulations new_baby", 79,
     "A celebratory basket of mixed blooms."),
    ("Get Well Sunshine Basket", "baskets", "daisies sunflowers", "yellow", "get_well", 67,
     "Sunny blooms in a basket to speed recovery."),
    ("Thank You Posy", "mixed-bouquets", "mixed", "pink white", "thank_you", 45,
     "A petite posy that says thank you beautifully."),
    ("New Baby Boy Blues", "vase-arrangements", "hydrangeas carnations", "blue white", "new_baby", 64,
     "Blue and white blooms to welcome a baby boy."),
    ("New Baby Girl Blush", "vase-arrangements", "roses carnations", "pink", "new_baby", 64,
     "Pink roses and carnations for a baby girl."),
    ("Eternal Peace Spray", "funeral-sprays", "lilies roses", "white", "sympathy", 185,
     "A standing spray of white lilies and roses."),
    ("Heartfelt Condolences", "sympathy-bouquets", "lilies roses", "white purple", "sympathy", 89,
     "White lilies and lavender roses to express sympathy."),
    ("Roses & Truffles", "flowers-chocolates", "roses", "red", "valentines_day love_romance anniversary", 95,
     "A dozen red roses with a box of dark chocolate truffles."),
    ("Tulips & Sweets", "flowers-chocolates", "tulips", "mixed", "birthday mothers_day", 72,
     "Spring tulips paired with milk chocolate bonbons."),
    ("Peonies & Pralines", "flowers-chocolates", "peonies", "pink", "mothers_day anniversary", 125,
     "Blush peonies with hazelnut pralines."),
    ("Red Rose Hatbox", "boxed-flowers", "roses", "red", "valentines_day anniversary love_romance", 149,
     "Thirty-six red roses in a black keepsake hatbox."),
    ("Blush Rose Hatbox", "boxed-flowers", "roses", "pink", "mothers_day birthday", 139,
     "Blush roses in a white keepsake hatbox."),
    ("Valentine's Luxe Roses", "luxury-bouquets", "roses", "red pink", "valentines_day", 159,
     "Fifty red and pink roses for Valentine's Day."),
    ("Mother's Day Garden", "mixed-bouquets", "peonies roses tulips", "pink purple", "mothers_day", 88,
     "Peonies, roses and tulips in Mom's favourite pastels."),
    ("Wedding Bliss Bouquet", "luxury-bouquets", "roses peonies ranunculus", "white", "wedding", 175,
     "A bridal-style bouquet of white roses, peonies and ranunculus."),
]

VASES = [AddOn(code="glass-vase", name="Clear glass vase", kind=AddOnKind.vase, price=1500),
         AddOn(code="ceramic-vase", name="Hand-glazed ceramic vase", kind=AddOnKind.vase, price=2800)]
EXTRAS = [AddOn(code="chocolates", name="Box of artisan chocolates", kind=AddOnKind.extra, price=1800),
          AddOn(code="balloon", name="\"Celebrate\" balloon", kind=AddOnKind.extra, price=899),
          AddOn(code="card", name="Greeting card with your message", kind=AddOnKind.extra, price=499),
          AddOn(code="teddy", name="Plush teddy bear", kind=AddOnKind.extra, price=1999)]


def _n(slug: str, salt: str, modulo: int) -> int:
    return int(hashlib.sha256(f"{slug}:{salt}".encode()).hexdigest(), 16) % modulo


def _cents(dollars: float) -> int:
    return int(round(dollars)) * 100 - 1  # $69 -> 6899 cents


async def seed_catalog() -> list[str]:
    cats: dict[str, Category] = {}
    for name, parent_slug, description in CATEGORIES:
        slug = slugify(name)
        cat = await Category.find_one(Category.slug == slug)
        if cat is None:
            parent = cats.get(parent_slug) if parent_slug else None
            ancestors = [*parent.ancestors, parent.id] if parent else []
            cat = await Category(name=name, slug=slug, description=description, parent_id=parent.id if parent else None,
                                 ancestors=ancestors, depth=len(ancestors), sort_order=len(cats),
                                 search_keys=word_keys(name), seo_description=description).insert()
        cats[slug] = cat

    added = 0
    for i, (name, cat_slug, flowers, colors, occasions, dollars, description) in enumerate(BOUQUETS):
        slug = slugify(name)
        if await Product.find_one(Product.slug == slug) is not None:
            continue
        cat = cats[cat_slug]
        sold_out = i % 16 == 5
        sizes = [Size(code="standard", name="Standard", price=_cents(dollars)),
                 Size(code="deluxe", name="Deluxe", price=_cents(dollars * 1.35),
                      description="About a third more stems."),
                 Size(code="premium", name="Premium", price=_cents(dollars * 1.75),
                      description="Our most generous version, with a vase.")]
        stock = {s.code: 0 if sold_out else _n(slug, s.code, 25) for s in sizes}
        tags = sorted({*flowers.split(), *colors.split(), cat_slug.split("-")[0]})
        product = await Product(
            name=name, slug=slug, description=description,
            care_instructions="Trim stems at an angle, use fresh water every two days, keep away from direct sun.",
            category_id=cat.id, category_path=category_path(cat.id, cat.ancestors), occasions=occasions.split(),
            flower_types=flowers.split(), colors=colors.split(), sizes=sizes, stock=stock,
            stock_total=sum(stock.values()), add_ons=[VASES[i % 2], *EXTRAS[: 2 + i % 3]], tags=tags,
            seo_description=description[:160], status=ProductStatus.active, featured=i % 8 == 0,
            low_stock_threshold=3, price_min=sizes[0].price, units_sold=_n(slug, "sold", 400),
            name_keys=word_keys(name),  # search_words are derived by the model
        ).insert()
        for code, units in stock.items():
            if units:
                await StockMovement(product_id=product.id, size=code, delta=units, before=0, after=units,
                                    reason=StockReason.initial, note="demo catalog").insert()
        added += 1
    return [f"Catalog: {len(cats)} categories, {len(BOUQUETS)} bouquets ({added} added)."]
