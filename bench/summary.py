"""One line per measured figure, for ``bench/all.py`` to collect from every benchmark's output.

Each benchmark still prints its own table; ``result(...)`` adds a machine-readable line
``BENCH-RESULT {"name": ..., "value": ..., "target": ..., "unit": ...}`` that ``bench/all.py`` gathers into one
summary. ``target`` is the least acceptable value (None: reported only); ``unit`` is ``"x"`` for ratios.
"""

from __future__ import annotations

import json

PREFIX = "BENCH-RESULT "


def result(name: str, value: float, target: float | None = None, unit: str = "x") -> None:
    """Print the figure ``value`` of ``name`` (with its least acceptable ``target``) as one BENCH-RESULT line."""
    print(PREFIX + json.dumps({"name": name, "value": round(value, 3), "target": target, "unit": unit}), flush=True)
