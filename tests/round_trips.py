"""Count MongoDB round trips with a PyMongo command listener (tests and bench/checkout.py).

``COMMANDS`` is registered globally once (PyMongo applies listeners to clients created afterwards, so import
this module before the app connects). It records nothing until ``recording(db)`` is entered, and then only
commands sent to that database, so other apps and background work on other databases never count.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pymongo import monitoring


@dataclass(frozen=True)
class Command:
    name: str  # find, update, insert, findAndModify, aggregate, ...
    collection: str

    def __str__(self) -> str:
        return f"{self.name} {self.collection}"


@dataclass
class Recording:
    database: str
    commands: list[Command] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.commands)


class _Listener(monitoring.CommandListener):
    def __init__(self) -> None:
        self.current: Recording | None = None

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        rec = self.current
        if rec is None or event.database_name != rec.database:
            return
        target = event.command.get(event.command_name)
        rec.commands.append(Command(event.command_name, target if isinstance(target, str) else ""))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


COMMANDS = _Listener()
monitoring.register(COMMANDS)


@contextmanager
def recording(database: str) -> Iterator[Recording]:
    """Record every command sent to ``database`` inside the block (one recording at a time)."""
    rec = Recording(database)
    previous, COMMANDS.current = COMMANDS.current, rec
    try:
        yield rec
    finally:
        COMMANDS.current = previous
