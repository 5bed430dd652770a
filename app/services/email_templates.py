"""Email rendering with Jinja2: every email has an HTML part (autoescaped) and a plain-text part.

Templates live in ``app/templates``: ``<name>.html`` (extends ``email_base.html``; autoescaping on, so every
value — a customer's name, a product name, a campaign's text — is escaped) and ``<name>.txt`` (no escaping:
plain text). Subjects are short Jinja strings here. ``StrictUndefined`` turns a missing value into an error
at render time instead of an empty gap in a sent email.

The older transactional emails (``app.services.email.TEMPLATES``) keep their ``string.Template`` text and
get their HTML part from ``transactional.html``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

SUBJECTS: dict[str, str] = {
    "newsletter_confirm": "Please confirm your Amour Florals newsletter subscription",
    "stock_alert": "{{ product.name }} is back in stock",
    "cart_reminder": "Your bouquet is still in your cart",
}


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def nl2br(value: Any) -> Markup:
    """Escape ``value`` and turn its line breaks into ``<br>``."""
    return Markup("<br>\n").join(escape(line) for line in str(value).split("\n"))


@lru_cache
def environment() -> Environment:
    """The one Jinja2 environment (templates are compiled once per process and cached by Jinja2)."""
    env = Environment(
        loader=PackageLoader("app", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), disabled_extensions=("txt",),
                                    default_for_string=False, default=True),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters["nl2br"] = nl2br
    return env


def render_email(name: str, context: dict[str, Any], *, subject: str | None = None) -> RenderedEmail:
    """Render ``<name>.html`` and ``<name>.txt`` with ``context``. The subject is ``subject`` when given (taken
    literally), else ``SUBJECTS[name]`` rendered with the context. Raises jinja2's errors on a missing
    template or value."""
    env = environment()
    if subject is None:
        subject = env.from_string(SUBJECTS[name]).render(context)
    subject = " ".join(subject.split())  # one header line, whatever the values held
    ctx = {"subject": subject, "preheader": None, **context}
    return RenderedEmail(subject=subject, text=env.get_template(f"{name}.txt").render(ctx),
                         html=env.get_template(f"{name}.html").render(ctx))


def render_paragraphs_html(subject: str, text: str) -> str:
    """The HTML part of a plain-text email: one paragraph per blank-line-separated block, escaped."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return environment().get_template("transactional.html").render(subject=subject, preheader=None,
                                                                    paragraphs=paragraphs)
