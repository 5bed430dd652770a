"""Catalog API schemas, by audience: :mod:`.public` (storefront views), :mod:`.params` (public list query
parameters), :mod:`.admin` (admin bodies, views, query parameters and their mappers) and :mod:`.fields` (the
constrained input types they share). The facet labels and price buckets are catalog domain constants, in
:mod:`app.models.catalog_facets`."""
