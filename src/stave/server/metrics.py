"""Prometheus metrics (``GET /metrics``): requests, latencies, ingest, store and log figures."""

from __future__ import annotations

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["EVENTS", "REGISTRY", "install"]

REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "stave_http_requests_total",
    "HTTP requests",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "stave_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
EVENTS = Counter(
    "stave_events_ingested_total",
    "Events accepted",
    ["type", "outcome"],
    registry=REGISTRY,
)
LOG_SIZE = Gauge("stave_log_size", "Entries in the log", registry=REGISTRY)
CHECKPOINT_SIZE = Gauge("stave_checkpoint_size", "Size of the latest signed checkpoint", registry=REGISTRY)
ANCHOR_LAG = Gauge(
    "stave_anchor_lag_entries",
    "Entries not yet covered by a confirmed anchor, per ledger",
    ["ledger"],
    registry=REGISTRY,
)
BACKEND_UP = Gauge("stave_store_backend_up", "Store backend health", ["backend"], registry=REGISTRY)
BACKEND_LATENCY = Gauge(
    "stave_store_backend_health_seconds",
    "Store backend health-check latency",
    ["backend"],
    registry=REGISTRY,
)
INGEST_BATCHES = Gauge("stave_ingest_batches", "Group-commit batches so far", registry=REGISTRY)
INGEST_STAGE_SECONDS = Gauge(
    "stave_ingest_stage_seconds",
    "Seconds spent so far in each group-commit stage (store: copies at quorum; log: sequencing)",
    ["stage"],
    registry=REGISTRY,
)


def install(app: FastAPI) -> None:
    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        from fastapi.concurrency import run_in_threadpool

        state = app.state.stave
        LOG_SIZE.set(await run_in_threadpool(state.log.size))
        latest = await run_in_threadpool(state.log.latest_checkpoint)
        CHECKPOINT_SIZE.set(latest.size if latest else 0)
        health = await run_in_threadpool(state.store.health)
        for report in health.backends:
            BACKEND_UP.labels(report.backend).set(1 if report.ok else 0)
            BACKEND_LATENCY.labels(report.backend).set(report.latency_ms / 1000)
        size = LOG_SIZE._value.get()
        for ledger, anchored_size, anchor_state, _, _ in await run_in_threadpool(state.service.anchoring.status):
            if anchor_state == "confirmed":
                ANCHOR_LAG.labels(ledger).set(max(0, size - anchored_size))
        INGEST_BATCHES.set(state.ingestor.batches)
        INGEST_STAGE_SECONDS.labels("store").set(state.ingestor.store_seconds)
        INGEST_STAGE_SECONDS.labels("log").set(state.ingestor.log_seconds)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
