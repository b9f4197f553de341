"""Serving settings (``LIFECYCLE_SERVING_*``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Literal

from annotated_types import Ge, Gt, Le
from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lifecycle.names import SERVING_TAG_PREFIX


class ServingSettings(BaseSettings):
    """The serving process: which model it serves, its address, request limits, batching, the
    prediction log, shadow mirroring and metrics."""

    model_config = SettingsConfigDict(env_prefix="LIFECYCLE_SERVING_", extra="forbid")

    model: str = "digits"
    """The default model: answers ``/v1/predict`` and ``/v1/predict_array``, loads at start and is
    never unloaded; readiness (``/readyz``, ``/v2/health/ready``) waits for it. Empty: none (ready
    once the registry was listed)."""
    models: Annotated[list[str], NoDecode] = []
    """Models to serve over the Open Inference Protocol besides the default (comma-separated, or a
    JSON list).
    Empty: every registered model that has ``ALIAS`` (a model that gets one is served within
    ``POLL_INTERVAL_S``)."""
    alias: str = "champion"
    """Alias whose version answers requests."""
    memory_budget_mb: Annotated[int, Ge(1)] = 4096
    """Resident memory the loaded models may take together (each measured while it loads, at
    least its files' size). Over it, the least recently used idle models are unloaded (never the
    default model, one with a request in flight or one in a rollout); they load again when asked."""
    host: str = "127.0.0.1"
    """Interface the serving process binds to."""
    port: Annotated[int, Ge(1), Le(65535)] = 3000
    """Port of the serving API."""
    poll_interval_s: Annotated[float, Gt(0)] = 2.0
    """How often the registry alias is checked (hot swap; the fallback once webhooks exist)."""
    max_instances: Annotated[int, Ge(1)] = 256
    """Largest number of rows in one request."""
    max_body_bytes: Annotated[int, Ge(1024)] = 4 * 1024 * 1024
    """Larger request bodies get 413 before they are parsed."""
    max_tensor_elements: Annotated[int, Ge(1)] = 4 * 1024 * 1024
    """Tensor elements in one Open Inference Protocol request at most (all inputs together); 413 above.
    Per model: the registered-model tag ``lifecycle.serving.max_tensor_elements``."""
    runtime_threads: Annotated[int, Ge(0)] = 0
    """Intra-op threads of the model runtime; 0: the runtime's default."""
    log_queue_size: Annotated[int, Ge(1)] = 20_000
    """Prediction records held in memory before back-pressure."""
    log_batch_size: Annotated[int, Ge(1)] = 500
    """Prediction records written to the database in one transaction at most."""
    log_flush_interval_s: Annotated[float, Gt(0)] = 0.5
    """The prediction log writes what it holds at least this often."""
    log_submit_timeout_s: Annotated[float, Gt(0)] = 2.0
    """How long a request waits for room in a full log queue before it gets 503."""
    input_sample_rate: Annotated[float, Ge(0), Le(1)] = 0.05
    """Share of Open Inference Protocol requests to non-tabular models whose input tensors are kept
    (``lifecycle.input_store``; a tabular model's rows are always in the prediction log)."""
    input_store_dir: str = ""
    """Where sampled inputs are kept; empty: ``inputs/`` in the state directory. Replicas may share it."""
    input_store_max_mb: Annotated[int, Ge(1)] = 1024
    """Sampled-input files kept per model at most; the oldest go first."""
    input_store_max_age_h: Annotated[float, Gt(0)] = 168.0
    """Sampled-input files older than this are removed."""
    input_store_batch_items: Annotated[int, Ge(1)] = 256
    """Sampled items written together in one compressed file (or when 5 s passed)."""
    max_batch_size: Annotated[int, Ge(1)] = 32
    """Most items in one adaptive batch, of the JSON predict API and of the Open Inference Protocol
    (concurrent requests run as one model call; a request that finds the model idle never waits).
    1 turns batching off. Per model: the registered-model tag ``lifecycle.serving.max_batch_size``."""
    max_batch_wait_ms: Annotated[float, Ge(0)] = 0.0
    """How long an Open Inference Protocol batch that is not full waits for more requests (Triton's
    ``max_queue_delay``); 0 never waits. Per model: tag ``lifecycle.serving.max_batch_wait_ms``."""
    inline_max_ms: Annotated[float, Ge(0)] = 5.0
    """A lone request runs on the event loop, skipping the hop to the batch thread (~0.5 ms), while
    the median of the last 15 lone model calls is under this; 0: always hop. Only a request that
    finds nothing else queued runs inline, so the loop is held that long only when it is idle."""
    metrics_flush_interval_s: Annotated[float, Gt(0)] = 1.0
    """How often a model call's queued observations (rows, latency, confidence) are written to the
    Prometheus series; the request counter is written at once."""
    shadow_queue_size: Annotated[int, Ge(1)] = 1000
    """Mirrored requests waiting for the challenger on the mirror thread (``SHADOW_ISOLATION=thread``;
    a shadow process queues in its socket buffer); when full, more are dropped and counted."""
    shadow_isolation: Literal["process", "thread"] = "process"
    """Where mirrored requests run: a child process at ``SHADOW_NICE`` (shares no GIL with the request
    path), or a thread of the serving process."""
    shadow_nice: Annotated[int, Ge(0), Le(19)] = 19
    """CPU priority (nice) of the shadow's child process: 19 gets only the CPU that serving leaves idle."""
    gc_freeze: bool = True
    """Freeze the objects that exist once the service is built (``gc.freeze()``), so that full
    garbage collections stop scanning ~300,000 long-lived objects: ~0.2 s with the event loop
    stopped, each (``serving.gc_tuning``)."""
    gc_gen0_threshold: Annotated[int, Ge(0)] = 5000
    """Allocations that trigger a young collection (Python's default: 700); 0 keeps Python's."""
    request_key_header: str = "X-Request-Key"
    """Header whose value routes a request stickily (stable hash) during a canary."""

    @field_validator("models", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):  # a JSON list (as child processes get it) or comma-separated names
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [name.strip() for name in value.split(",") if name.strip()]
        return value


class ModelServing(BaseModel):
    """One model's serving limits: the process's settings, overridden by the registered model's
    tags ``lifecycle.serving.<field>`` (set in the MLflow UI, say)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    max_batch_size: Annotated[int, Ge(1)]
    max_batch_wait_ms: Annotated[float, Ge(0)]
    max_tensor_elements: Annotated[int, Ge(1)]

    @classmethod
    def of(cls, serving: ServingSettings, tags: Mapping[str, str]) -> ModelServing:
        """:raises ValueError: a tag that is not a valid value (its message names it)."""
        values: dict[str, object] = {name: getattr(serving, name) for name in cls.model_fields}
        values.update({
            key.removeprefix(SERVING_TAG_PREFIX): value
            for key, value in tags.items()
            if key.startswith(SERVING_TAG_PREFIX) and key.removeprefix(SERVING_TAG_PREFIX) in cls.model_fields
        })  # fmt: skip
        return cls.model_validate(values)
