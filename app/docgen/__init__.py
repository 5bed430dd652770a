"""Generated parts of ``docs/system-design.md``: what mirrors the code is written from the code.

``amour-florals docs`` rewrites every marked section of the document::

    <!-- BEGIN GENERATED: erd -->
    ...replaced by the generator...
    <!-- END GENERATED: erd -->

and ``amour-florals docs --check`` (run by ``.ci/run``) fails when the committed document differs from
what the code generates, so a new collection, reference, index, order state, route or setting cannot
land undocumented. The sections (``SECTIONS``):

- ``erd``: Mermaid ``erDiagram`` of every Beanie document in ``DOCUMENT_MODELS`` and its string-id
  references (``app/docgen/erd.py``; unknown ``*_id`` fields are an error until ``REFERENCES`` names them).
- ``indexes``: every declared index and the queries it serves (``app/docgen/indexes.py``; an index
  without an ``INDEX_QUERIES`` entry is an error).
- ``order-states``: Mermaid ``stateDiagram-v2`` from ``app/models/order_states.py``.
- ``routes``: method, path, auth and summary of every API route of ``app.main.create_app``.
- ``settings``: every ``app.config.Settings`` field with its env var, default and description.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from app.docgen.errors import DocGenError

__all__ = ["SECTIONS", "DocGenError", "apply_sections", "render_sections", "generate"]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DOC = Path("docs/system-design.md")

_MARKER = re.compile(r"<!-- (BEGIN|END) GENERATED: ([a-z0-9-]+) -->")


def _erd() -> str:
    from app.docgen.erd import erd_section
    from app.models import DOCUMENT_MODELS

    return erd_section(DOCUMENT_MODELS)


def _indexes() -> str:
    from app.docgen.indexes import index_section
    from app.models import DOCUMENT_MODELS

    return index_section(DOCUMENT_MODELS)


def _order_states() -> str:
    from app.docgen.states import order_state_section

    return order_state_section()


def _routes() -> str:
    from app.config import Settings
    from app.docgen.routes import route_section
    from app.main import create_app

    return route_section(create_app(Settings(_env_file=None)))


def _settings() -> str:
    from app.config import Settings
    from app.docgen.settings_doc import settings_section

    return settings_section(Settings, (ROOT / ".env.example").read_text(encoding="utf-8"))


SECTIONS: dict[str, Callable[[], str]] = {
    "erd": _erd,
    "indexes": _indexes,
    "order-states": _order_states,
    "routes": _routes,
    "settings": _settings,
}


def render_sections(names: list[str] | None = None) -> dict[str, str]:
    """Section name -> generated Markdown (without markers). Raises DocGenError on undocumented code."""
    return {name: SECTIONS[name]().rstrip("\n") for name in (names or list(SECTIONS))}


def apply_sections(text: str, sections: dict[str, str]) -> str:
    """``text`` with the body of every ``BEGIN/END GENERATED: <name>`` pair replaced by ``sections[name]``.

    Raises DocGenError when a section has no (or more than one) marker pair, when markers are unbalanced
    or nested, or when the document marks a section the generator does not know."""
    out: list[str] = []
    pos = 0
    open_name: str | None = None
    seen: list[str] = []
    for m in _MARKER.finditer(text):
        kind, name = m.group(1), m.group(2)
        if kind == "BEGIN":
            if open_name is not None:
                raise DocGenError(f"section {open_name!r} is not closed before {name!r} begins")
            if name not in sections:
                raise DocGenError(f"the document marks an unknown generated section {name!r}")
            out.append(text[pos:m.end()])
            open_name = name
        else:
            if open_name != name:
                raise DocGenError(f"END GENERATED: {name} without its BEGIN")
            out.append("\n" + sections[name] + "\n")
            out.append(m.group(0))
            seen.append(name)
            open_name = None
        pos = m.end()
    if open_name is not None:
        raise DocGenError(f"section {open_name!r} has no END marker")
    out.append(text[pos:])
    missing = [n for n in sections if n not in seen]
    twice = sorted({n for n in seen if seen.count(n) > 1})
    if missing or twice:
        raise DocGenError(f"generated sections missing from the document: {missing}; marked twice: {twice}")
    return "".join(out)


def generate(path: Path) -> tuple[str, str]:
    """(current text, text with every generated section rewritten) of the document at ``path``."""
    if not path.exists():
        raise DocGenError(f"{path} does not exist")
    current = path.read_text(encoding="utf-8")
    return current, apply_sections(current, render_sections())
