"""Error tracking and tracing send what operators need and nothing personal (issue 11 "Operations").

The real SDKs send over HTTP to a local collector that records each request: Sentry's transport posts
envelopes to the DSN's host, the OTLP exporter posts protobuf batches to <endpoint>/v1/traces.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk
from fastapi import Depends, Request
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from sentry_sdk.envelope import Envelope

from app.core.telemetry import redact
from app.deps import optional_user
from tests.support import API, STRONG, bearer, login, new_client, register

STRIPE_KEY = "sk_test_51Hq2Wq8SecretStripeKey0123456789"
JWT_SECRET = "telemetry-jwt-secret-Hb7Kq2Lm9Xw4Tz6Rv1Np3"


class Collector:
    """A loopback HTTP server recording (path, decoded body) of every POST."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                encoding = self.headers.get("content-encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                elif encoding == "br":
                    import brotli  # type: ignore[import-not-found]

                    body = brotli.decompress(body)
                collector.requests.append((self.path, body))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def bodies(self, path_part: str) -> list[bytes]:
        return [body for path, body in self.requests if path_part in path]


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    c.thread.start()
    yield c
    c.server.shutdown()
    c.server.server_close()


def add_failing_route(app) -> None:
    """A route whose handler fails with personal data and a secret in the exception and its locals."""

    @app.post(f"{API}/test-only/boom")
    async def boom(request: Request, user=Depends(optional_user)) -> None:  # noqa: B008
        body = await request.json()
        password = body["password"]  # noqa: F841 - a local a careless SDK setting would send
        raise RuntimeError(f"could not charge {body['email']} with {STRIPE_KEY}")


async def test_sentry_receives_request_and_user_ids_but_no_personal_data_or_secrets(make_settings, app_factory,
                                                                                   collector):
    dsn = f"http://public0123456789abcdef@127.0.0.1:{collector.port}/42"
    settings = make_settings(sentry_dsn=dsn, stripe_secret_key=STRIPE_KEY, jwt_secret=JWT_SECRET,
                             stripe_webhook_secret="whsec_telemetrytest0123456789")
    async with app_factory(settings) as app, new_client(app) as c:
        add_failing_route(app)
        account = await register(c)
        email, user_id = account["user"]["email"], account["user"]["id"]
        tokens = await login(c, email)
        headers = {**bearer(tokens["access_token"]), "X-Cart-Token": "cart-token-that-must-not-leak-0001",
                   "Cookie": "refresh_token=cookie-value-that-must-not-leak", "X-Request-ID": "req-telemetry-0001"}
        r = await c.post(f"{API}/test-only/boom?email={email}", headers=headers,
                         json={"email": email, "password": STRONG, "address": "1 Bleecker St"})
        assert r.status_code == 500 and r.headers["x-request-id"] == "req-telemetry-0001"
        sentry_sdk.flush(timeout=5)

    envelopes = collector.bodies("/api/42/envelope/")
    assert envelopes, collector.requests
    events = [item.payload.json for raw in envelopes for item in Envelope.deserialize(raw).items
              if item.type == "event"]
    [event] = [e for e in events if "RuntimeError" in str(e.get("exception"))]
    assert event["tags"]["request_id"] == "req-telemetry-0001"
    assert event["user"] == {"id": user_id}
    assert event["environment"] == "test"
    sent = b"".join(envelopes).decode(errors="replace")
    for leak in (email, STRONG, tokens["access_token"], tokens["refresh_token"], STRIPE_KEY, JWT_SECRET,
                 "cart-token-that-must-not-leak", "cookie-value-that-must-not-leak", "1 Bleecker St"):
        assert leak not in sent, f"{leak!r} was sent to Sentry"
    assert "could not charge [Filtered] with [Filtered]" in sent  # the message survives, redacted


async def test_traces_of_a_request_its_mongodb_and_redis_calls_reach_the_collector(make_settings, app_factory,
                                                                                 redis_url, collector):
    settings = make_settings(otel_exporter_otlp_endpoint=f"http://127.0.0.1:{collector.port}", redis_url=redis_url,
                             otel_service_name="amour-florals-test")
    async with app_factory(settings) as app, new_client(app) as c:
        account = await register(c)
        email = account["user"]["email"]
        tokens = await login(c, email)
        r = await c.get(f"{API}/users/me", headers={**bearer(tokens["access_token"]), "X-Request-ID": "req-trace-1"})
        assert r.status_code == 200
        r = await c.get(f"{API}/categories")
        assert r.status_code == 200
        assert (await c.get(f"{API}/health")).status_code == 200

    batches = collector.bodies("/v1/traces")
    assert batches, collector.requests
    spans = []
    for raw in batches:
        request = ExportTraceServiceRequest.FromString(raw)
        for resource_spans in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
            assert service == "amour-florals-test"
            for scope in resource_spans.scope_spans:
                spans.extend(scope.spans)

    def attrs(span) -> dict[str, str]:
        return {a.key: a.value.string_value or str(a.value.int_value) for a in span.attributes}

    me = [s for s in spans if s.name == f"GET {API}/users/me"]
    assert len(me) == 1, sorted({s.name for s in spans})
    in_me = [s for s in spans if s.trace_id == me[0].trace_id and s is not me[0]]
    assert any(attrs(s).get("db.system") == "mongodb" for s in in_me), [s.name for s in in_me]
    categories = [s for s in spans if s.name == f"GET {API}/categories"]
    in_categories = [s for s in spans if categories and s.trace_id == categories[0].trace_id]
    assert any(attrs(s).get("db.system") == "redis" for s in in_categories), [s.name for s in in_categories]
    assert not [s for s in spans if "/health" in s.name]  # probes are not traced
    sent = b"".join(batches)
    for leak in (email, STRONG, tokens["access_token"], tokens["refresh_token"]):
        assert leak.encode() not in sent, f"{leak!r} was sent in a trace"


def test_redaction_covers_messages_tokens_and_configured_secrets():
    event = {"message": "login for Ann@Example.com failed: Bearer abc.def-ghi, key sk_live_abc123, "
                        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln, url mongodb://app:pw@db:27017/x",
             "extra": {"nested": ["my-configured-secret-value", 3]}}
    out = redact(event, ["my-configured-secret-value"])
    text = str(out)
    for leak in ("Ann@Example.com", "abc.def-ghi", "sk_live_abc123", "eyJhbGciOiJIUzI1NiJ9", "app:pw",
                 "my-configured-secret-value"):
        assert leak not in text
    assert out["extra"]["nested"][1] == 3
