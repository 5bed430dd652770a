"""Parameters shared by routers (ids are validated by shape before any query sees them; the RFC 8058 one-click
form field), and the ``Location`` helper of 201 answers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Form, Path, Response

from app.core.openapi import response_headers

API_PREFIX = "/api/v1"  # every API route is mounted under it (re-exported by app.routers)


def id_path(prefix: str) -> Any:
    return Path(max_length=40, pattern=rf"^{prefix}_[0-9A-Z]{{26}}$", description=f"An id such as `{prefix}_01J…`")


AddressId = Annotated[str, id_path("adr")]
CampaignId = Annotated[str, id_path("cmp")]
CategoryId = Annotated[str, id_path("cat")]
ImageId = Annotated[str, id_path("img")]
LineId = Annotated[str, id_path("cln")]
OrderId = Annotated[str, id_path("ord")]
ProductId = Annotated[str, id_path("prd")]
PromoId = Annotated[str, id_path("prm")]
ReviewId = Annotated[str, id_path("rev")]
UserId = Annotated[str, id_path("usr")]
ZoneId = Annotated[str, id_path("dzn")]

# The form body mail clients POST to a List-Unsubscribe URL (RFC 8058); a storefront page may send none.
OneClick = Annotated[Literal["One-Click"] | None, Form(alias="List-Unsubscribe",
                                                       description="`One-Click`, as mail clients send it.")]


CREATED = response_headers(201, "Location")  # route-level ``responses`` entry of operations that use created()


def created(response: Response, path: str) -> None:
    """Set ``Location`` of a 201 to the new resource (``path`` below the API prefix, e.g. ``/orders/ord_…``)."""
    response.headers["Location"] = API_PREFIX + path
