"""Prometheus metrics (exposed at /metrics)."""

from __future__ import annotations

from typing import Any

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


_CHILDREN: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # labelled series, looked up once


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one request and its latency; ``route`` is the path template (bounded label values)."""
    key = (method, route, status)
    children = _CHILDREN.get(key)
    if children is None:
        children = _CHILDREN[key] = (REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
    children[0].inc()
    children[1].observe(seconds)


def render() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
