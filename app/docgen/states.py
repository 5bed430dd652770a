"""The order state diagram (Mermaid ``stateDiagram-v2``), drawn from ``app/models/order_states.py``.

Edges come from its transition table; each is labelled with who moves it (``STAFF_TARGETS`` and
``CUSTOMER_CANCELLABLE``; other targets are set by the system: payments, the expiry sweeper) and the
delivery method it is limited to. Start states are those no edge leads to; ``TERMINAL`` ones end.
"""

from __future__ import annotations

from app.models.order import OrderStatus


def edge_label(source: OrderStatus, target: OrderStatus) -> str:
    from app.models import order_states as st

    if target == OrderStatus.cancelled:
        who = "customer or staff" if source in st.CUSTOMER_CANCELLABLE else "staff"
    elif target in st.STAFF_TARGETS:
        who = "staff"
    else:
        who = "system"
    only = st._METHOD_ONLY.get(target)
    return who + (f", {only.value} only" if only is not None else "")


def order_state_mermaid() -> str:
    from app.models import order_states as st

    edges = [(s, t) for s in OrderStatus for t in OrderStatus if t in st._EDGES.get(s, set())]
    reached = {t for _, t in edges}
    starts = [s for s in OrderStatus if s not in reached and st._EDGES.get(s)]
    lines = ["```mermaid", "stateDiagram-v2"]
    lines += [f"    [*] --> {s.value}" for s in starts]
    lines += [f"    {s.value} --> {t.value} : {edge_label(s, t)}" for s, t in edges]
    lines += [f"    {s.value} --> [*]" for s in OrderStatus if s in st.TERMINAL]
    lines.append("```")
    return "\n".join(lines)


def order_state_section() -> str:
    from app.models import order_states as st

    terminal = ", ".join(f"`{s.value}`" for s in OrderStatus if s in st.TERMINAL)
    return (order_state_mermaid() + "\n\n" + f"Terminal: {terminal}. Any other move is a 409 "
            "(`app/models/order_states.can_move`).")
