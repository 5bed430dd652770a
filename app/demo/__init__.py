"""Demo data for `amour-florals seed`: users, catalog, delivery zones and promos, marketing, analytics
history and real store-pickup orders. The entry point is `app.demo.seed.seed_all`; never imported by the API."""
