"""Service settings: every knob is a ``CRATEWATCH_*`` environment variable or a CLI flag."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Also the default of code that reads a catalog without Settings (training, offline tools).
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000


def available_cpus() -> int:
    """CPUs this process may actually use: affinity mask and cgroup quota, not the host count."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        count = min(count, quota)
    return max(1, count)


def _cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Whole CPUs granted by cgroup v2 ``cpu.max`` (or v1 cfs files); None when unlimited."""
    v2 = root / "cpu.max"
    try:
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
            if quota == "max":
                return None
            return max(1, math.ceil(int(quota) / int(period)))
        v1q = root / "cpu" / "cpu.cfs_quota_us"
        v1p = root / "cpu" / "cpu.cfs_period_us"
        if v1q.exists() and v1p.exists():
            quota_us = int(v1q.read_text())
            if quota_us <= 0:
                return None
            return max(1, math.ceil(quota_us / int(v1p.read_text())))
    except (OSError, ValueError):
        return None
    return None


class Settings(BaseSettings):
    """All service settings (env prefix ``CRATEWATCH_``)."""

    model_config = SettingsConfigDict(env_prefix="CRATEWATCH_", extra="ignore")

    catalog: Path = Field(default=Path("catalog"), description="catalog dir with albums.csv")
    data: Path = Field(default=Path("data"), description="everything the service writes")
    model: Path = Field(
        default=Path("models/cratewatch-embedder.onnx"), description="ONNX embedder + .json"
    )
    host: str = Field(default="127.0.0.1", description="bind address")
    port: int = Field(default=8000, ge=0, le=65535)
    threads: int = Field(default_factory=available_cpus, ge=1, description="ORT intra-op threads")
    ort_spinning: bool = Field(
        default=False, description="ORT intra-op threads busy-wait between runs (CPU burnt)")
    inference_concurrency: int = Field(
        default=2, ge=1, description="inference jobs (decode, embed, search, enrol) run at once")
    workers: int | None = Field(
        default=None, ge=1, description="deprecated alias of inference_concurrency")
    api_key: SecretStr | None = Field(default=None, description="X-API-Key needed for writes")
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=DEFAULT_MAX_IMAGE_PIXELS, ge=1)
    max_inflight: int = Field(default=32, ge=1, description="identify in flight before 503")
    request_timeout_s: float = Field(default=30.0, gt=0, description="deadline for a body")
    rerank: bool = Field(default=True, description="local-feature path (votes + verification)")
    rerank_top_k: int = Field(default=10, ge=1, le=50, description="embedding candidates verified")
    vote_top_k: int = Field(default=10, ge=0, le=50, description="vote candidates verified")
    rerank_accept_inliers: int = Field(
        default=12, ge=0, description="stop verifying at a candidate with this many inliers")
    rerank_stop_coverage: float = Field(
        default=0.3125, ge=0, le=1, description="... spread over this share of the cover grid")
    rerank_first_k: int = Field(
        default=3, ge=0, le=50, description="embedding candidates verified before the votes run")
    speculative_features: bool = Field(
        default=True, description="query features alongside the embedding when otherwise idle")
    parallel_alone: bool = Field(
        default=True, description="a query alone in flight splits votes/verification on 2 threads")
    second_look: bool = Field(
        default=True, description="look again (rectified sleeve, sub-crops) when none accepted")
    grey_views: bool = Field(
        default=True, description="RGB models: also embed each cover's grey rendition; grey "
        "queries (CCTV grey, IR night) are ranked against those")
    local_features: int = Field(default=500, ge=16, le=4000,
                                description="RootSIFT keypoints kept per catalog cover")
    local_query_features: int = Field(default=500, ge=16, le=4000,
                                      description="RootSIFT keypoints kept per query crop")
    # 256, not the covers' 320: CCTV crops are ~60-230 px and OpenCV's SIFT doubles its input
    # anyway, so scaling them past 256 adds interpolated pixels only; larger crops keep their
    # own size up to 320. Measured: /identify p50 15.3-15.9 -> 12.5-12.6 ms, stress accuracy
    # within a few crops after recalibration (README, "Issue 8 speed check").
    local_query_side: int = Field(
        default=256, ge=32, le=2048,
        description="smaller query crops are scaled up to this longer side for RootSIFT")
    local_index: str = Field(default="IVF1024,SQ8",
                             description="FAISS factory string of the descriptor index")
    local_exact_limit: int = Field(default=50_000, ge=0,
                                   description="exact descriptor index up to this many")
    local_nprobe: int = Field(default=6, ge=1, description="IVF lists probed per descriptor")
    accept_inliers: int | None = Field(
        default=None, ge=1, description="override the model's calibrated acceptance inliers")
    accept_coverage: float | None = Field(
        default=None, ge=0, le=1, description="override the calibrated inlier spread to accept")
    gate_score: float | None = Field(
        default=None, description="override the calibrated top cosine that skips local features")
    gate_margin: float | None = Field(
        default=None, description="override the calibrated top1-top2 margin of the gate")
    exact_search_limit: int = Field(default=100_000, ge=1, description="flat index up to this")
    approx_index: Literal["hnsw", "ivf"] = Field(default="hnsw")
    embed_batch_size: int = Field(default=32, ge=1)
    reject_duplicate_images: bool = Field(
        default=False, description="409 instead of 201 + duplicate_of for an enrolled image")
    log_level: str = Field(default="INFO")
    database_url: SecretStr | None = Field(
        default=None, description="postgresql://... for a shared analytics store; unset: SQLite")
    browse_gap_s: float = Field(
        default=60.0, gt=0, le=86_400, description="sightings closer than this are one browse")
    timezone: str = Field(default="UTC", description="the shop's IANA time zone")
    sightings_retention_days: int = Field(
        default=365, ge=0, description="sightings older than this are deleted; 0 keeps all")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @field_validator("api_key", "database_url", mode="before")
    @classmethod
    def _blank_key_is_unset(cls, value: object) -> object:
        # An empty CRATEWATCH_API_KEY= line in .env must not mean "the empty string is the key":
        # that would open writes silently, without the startup warning.
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        return value

    @model_validator(mode="after")
    def _workers_is_an_alias(self) -> Settings:
        # CRATEWATCH_WORKERS read like uvicorn processes; it still works (create_app warns),
        # but an explicit INFERENCE_CONCURRENCY wins.
        if self.workers is not None and "inference_concurrency" not in self.model_fields_set:
            self.inference_concurrency = self.workers
        return self
