"""Prometheus metrics (exposed at /metrics)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram("http_request_duration_seconds", "HTTP request latency", ["method", "route"],
                    registry=REGISTRY, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
EMAILS = Counter("emails_total", "Outbox emails by result", ["result"], registry=REGISTRY)
ANALYTICS_EVENTS = Counter("analytics_events_total", "Shopper-behaviour events by result (stored, "
                           "dropped_queue_full, dropped_write_failed)", ["result"], registry=REGISTRY)
ANALYTICS_FORWARD = Counter("analytics_forwarded_events_total", "Events forwarded to ANALYTICS_FORWARD_URL by "
                            "result (sent, retry, dropped)", ["result"], registry=REGISTRY)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


def render() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
