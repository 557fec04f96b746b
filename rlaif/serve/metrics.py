"""The service's Prometheus metrics (`GET /metrics`, text format), through prometheus_client.

Each app has its own registry, so several services in one process (tests) do not share counters.
Model calls and cache hits are read from the scorers' own counts (the call layer's) when scraped.
"""
from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("rlaif_serve_requests", "HTTP requests answered", ["endpoint", "status"], registry=r)
        self.latency = Histogram("rlaif_serve_request_seconds", "time to answer a request", ["endpoint"],
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.items = Counter("rlaif_serve_items", "items scored or compared", ["scorer"], registry=r)
        self.queue_depth = Gauge("rlaif_serve_queue_depth", "items waiting for a batch", ["scorer"], registry=r)
        self.batch_size = Histogram("rlaif_serve_batch_size", "items per batch sent to a scorer", ["scorer"],
                                    buckets=_BATCH_BUCKETS, registry=r)
        self.coalesced = Counter("rlaif_serve_coalesced_items", "items answered by an identical item in flight",
                                 ["scorer"], registry=r)
        self.rejected = Counter("rlaif_serve_rejected", "requests refused because a queue was full", ["scorer"],
                                registry=r)
        self.errors = Counter("rlaif_serve_backend_errors", "items that came back with an error, by kind",
                              ["scorer", "kind"], registry=r)
        self.unscored = Counter("rlaif_serve_unscored", "/get_reward items that could not be scored (sent as null, "
                                "or as --unscored-reward)", ["scorer"], registry=r)
        self.model_calls = Gauge("rlaif_serve_model_calls", "model calls made (cache misses)", ["scorer"], registry=r)
        self.cache_hits = Gauge("rlaif_serve_cache_hits", "requests answered by the call cache", ["scorer"],
                                registry=r)
        self._scrapers: list[Callable[[], None]] = []

    def on_scrape(self, fn: Callable[[], None]) -> None:
        """Run `fn` before each scrape (to copy counts kept elsewhere into gauges)."""
        self._scrapers.append(fn)

    def render(self) -> bytes:
        for fn in self._scrapers:
            fn()
        return generate_latest(self.registry)
