"""The scale-out options of ``speechserve serve`` and what they become in Ray Serve's deployment config.

Nothing here imports Ray: the CLI validates the flags (one-line errors) before Ray is even looked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from speechserve.server.settings import ServerSettings


def parse_autoscale(text: str) -> tuple[int, int]:
    """``"MIN:MAX"`` → ``(MIN, MAX)``; ``ValueError`` with the reason on anything else."""
    low, sep, high = text.partition(":")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ValueError(f"--autoscale takes MIN:MAX replicas, e.g. 1:4 (got {text!r})")
    bounds = int(low), int(high)
    if bounds[1] < 1 or bounds[0] > bounds[1]:
        raise ValueError(f"--autoscale needs 0 ≤ MIN ≤ MAX and MAX ≥ 1 (got {text!r})")
    return bounds


@dataclass(frozen=True)
class ScaleOptions:
    """How many replicas of the app Ray Serve runs, where, and with which resources each.

    A replica is one Ray actor (one process) running the whole app: its own engines, models and queue."""

    replicas: int | None = None
    """Fixed number of replicas; with ``autoscale``, the number started with (Ray's ``initial_replicas``)."""
    autoscale: tuple[int, int] | None = None
    """``(min, max)`` replicas: Ray adds or removes replicas to keep ``target_ongoing_requests`` each."""
    target_ongoing_requests: float | None = None
    """Requests (streams and realtime sessions included) a replica should be answering at once before Ray
    adds one. None: half a batch (``max_batch / 2``), so batches fill before the cluster grows."""
    ray_address: str | None = None
    """An existing Ray cluster (``ray://head:10001``, ``auto``, ``head:6379``); None: a local Ray on this
    machine, started here and stopped on exit."""
    gpus_per_replica: float = 0.0
    """GPUs Ray reserves for each replica (fractions share a GPU); Ray sets ``CUDA_VISIBLE_DEVICES``, so
    ``--device cuda`` in a replica is its own GPU."""
    cpus_per_replica: float = 1.0
    """CPUs Ray reserves for each replica; on CPU it is also the replica's torch threads unless
    ``--cpu-threads`` says otherwise (several replicas on one machine must not each take every core)."""

    def __post_init__(self) -> None:
        if self.replicas is None and self.autoscale is None:
            raise ValueError("scale-out needs --replicas N or --autoscale MIN:MAX")
        if self.replicas is not None and self.replicas < 1:
            raise ValueError(f"--replicas must be at least 1, not {self.replicas}")
        if (
            self.autoscale
            and self.replicas is not None
            and not (self.autoscale[0] <= self.replicas <= self.autoscale[1])
        ):
            low, high = self.autoscale
            raise ValueError(f"--replicas {self.replicas} is outside --autoscale {low}:{high}")
        if self.gpus_per_replica < 0 or self.cpus_per_replica <= 0:
            raise ValueError("--gpus-per-replica must be ≥ 0 and --cpus-per-replica > 0")
        if self.target_ongoing_requests is not None and self.target_ongoing_requests <= 0:
            raise ValueError("--target-ongoing-requests must be > 0")

    def replica_settings(self, settings: ServerSettings) -> ServerSettings:
        """``settings`` as each replica runs them: on CPU, torch threads = the CPUs reserved for it."""
        if settings.cpu_threads is not None or self.gpus_per_replica > 0:
            return settings
        return settings.model_copy(update={"cpu_threads": max(1, int(self.cpus_per_replica))})

    def deployment_options(self, settings: ServerSettings) -> dict[str, Any]:
        """Keyword arguments of ``serve.deployment`` for the app served with ``settings``.

        ``max_ongoing_requests`` lets a replica hold a full batch plus its own waiting queue, so a replica
        that is full answers 429 from its engine queue (as one process does) rather than Ray holding the
        request back."""
        options: dict[str, Any] = {
            "ray_actor_options": {"num_cpus": self.cpus_per_replica, "num_gpus": self.gpus_per_replica},
            "max_ongoing_requests": settings.max_batch + settings.max_waiting,
            "health_check_period_s": 5.0,
            "graceful_shutdown_timeout_s": 30.0,
        }
        if self.autoscale is None:
            options["num_replicas"] = self.replicas
            return options
        target = self.target_ongoing_requests or max(1.0, settings.max_batch / 2)
        low, high = self.autoscale
        options["autoscaling_config"] = {
            "min_replicas": low,
            "max_replicas": high,
            "initial_replicas": self.replicas if self.replicas is not None else max(low, 1),
            "target_ongoing_requests": target,
        }
        return options
