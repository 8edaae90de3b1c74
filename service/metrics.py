"""Prometheus metrics: exactly the names in the team contract (dashboards and alerts use them)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

# The *_created series double the exposition size and no dashboard uses them.
disable_created_metrics()

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """One registry per app, so several apps (tests) in one process never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "cratewatch_requests", "HTTP requests", ["endpoint", "method", "status"], registry=r
        )
        self.request_duration = Histogram(
            "cratewatch_request_duration_seconds", "HTTP request latency", ["endpoint"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.stage_duration = Histogram(
            "cratewatch_stage_duration_seconds", "identify stage latency", ["stage"],
            buckets=STAGE_BUCKETS, registry=r,
        )
        self.identifications = Counter(
            "cratewatch_identifications", "successful /identify calls", registry=r
        )
        self.decisions = Counter(
            "cratewatch_identify_decisions",
            "identify answers by the path that decided and whether an album was identified",
            ["decided_by", "identified"], registry=r,
        )
        self.catalog_albums = Gauge("cratewatch_catalog_albums", "searchable albums", registry=r)
        self.model_info = Gauge(
            "cratewatch_model_info", "loaded embedder",
            ["name", "version", "input_size", "embedding_dim"], registry=r,
        )
        self.ready = Gauge("cratewatch_ready", "1 once model and index are loaded", registry=r)
        self.inflight = Gauge(
            "cratewatch_inflight_requests", "identify requests in flight", registry=r
        )
        self.shed = Counter("cratewatch_shed", "identify requests shed with 503", registry=r)
        # Analytics counters carry no album label: the catalog may hold 100k albums.
        self.sightings = Counter("cratewatch_sightings", "sightings stored", registry=r)
        self.browses = Counter(
            "cratewatch_browses", "sightings that started a browse when stored", registry=r)
        self.sales_imported = Counter(
            "cratewatch_sales_imported", "sale rows imported (duplicates excluded)", registry=r)
        self.sales_rejected = Counter(
            "cratewatch_sales_rejected", "sale rows rejected on import", registry=r)

    def observe_stages(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self.stage_duration.labels(stage=stage).observe(ms / 1000.0)
