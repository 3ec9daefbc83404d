"""The Ray engine: the same batch job as a Ray Data pipeline, from a laptop to a GPU cluster.

A dataset of the jobs (one block per photo, so that a lost worker costs one photo, not a batch);
``map_batches`` with :class:`RestoreActor`, a class UDF holding one :class:`Restorer` per actor so
the networks load once per actor; ``compute=ray.data.ActorPoolStrategy`` (the ``concurrency=``
argument is deprecated since Ray 2.51); one GPU per actor when the cluster has GPUs, else
``cpus_per_actor`` CPUs. Actors write the PNGs themselves with the atomic rename of
:mod:`.files` and return only the manifest record, which the driver appends (:mod:`.runner`).

Fault tolerance is Ray's: Ray Data restarts a dead actor (``max_restarts=-1``) and retries its
in-flight tasks (``max_task_retries=-1``); a retried photo is rewritten with the same bytes
under the same name, and its record reaches the driver once, from the attempt that finished.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict

from ..errors import OldPhotoError
from .plan import Job
from .work import restore_job, weights_identity


class RestoreActor:
    """One per Ray actor: builds the Restorer once, then restores the photos Ray Data hands it."""

    def __init__(self, make_restorer: Callable[[], object], restore_kwargs: dict, options: dict, weights: dict):
        import socket

        from ..memory import keep_freed_memory_for_reuse

        keep_freed_memory_for_reuse()
        self.restorer = make_restorer()
        self.restore_kwargs, self.options, self.weights = restore_kwargs, options, weights
        mine = weights_identity(self.restorer, restore_kwargs)
        self.mismatch = None
        if mine != weights:  # the manifest must not claim weights this node did not use
            differ = sorted(c for c in weights if mine.get(c) != weights[c])
            self.mismatch = (
                f"the weights on {socket.gethostname()} differ from the driver's ({', '.join(differ)}); "
                "give every node the same files (--weights-dir on a shared path, or the same Hub revision)"
            )

    def __call__(self, batch: dict) -> dict:
        out = []
        for raw in batch["job"]:
            job = Job(**json.loads(raw))
            if self.mismatch:
                from .plan import record

                rec = record(job, self.options, self.weights, "error", f"{job.input}: {self.mismatch}", 0.0, "")
            else:
                rec = restore_job(self.restorer, job, self.restore_kwargs, self.options, self.weights)
            out.append(json.dumps(rec))
        return {"record": out}


def records(
    jobs: list[Job],
    *,
    make_restorer: Callable[[], object],
    restore_kwargs: dict,
    options: dict,
    weights: dict,
    address: str | None = None,
    actors: int | None = None,
    cpus_per_actor: float = 1.0,
) -> Iterator[dict]:
    """Run ``jobs`` on a Ray cluster (``address``, else ``$RAY_ADDRESS``, else a local Ray) and
    yield their records as they finish. The driver disconnects at the end, interrupted or not."""
    import ray

    init_kw: dict = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is None and not os.environ.get("RAY_ADDRESS"):
        init_kw["include_dashboard"] = False  # a Ray started for this job only
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its per-dataset INFO lines would break the bar
    ray.init(address=address, **init_kw)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the batch command draws its own bar over photos
        ctx.print_on_execution_start = False
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        if gpus:
            remote: dict = {"num_gpus": 1}
            n = actors or gpus
        else:
            remote = {"num_cpus": cpus_per_actor}
            n = actors or max(1, int(resources.get("CPU", 1) // cpus_per_actor))
        n = max(1, min(n, len(jobs)))
        ds = ray.data.from_items([{"job": json.dumps(asdict(j))} for j in jobs], override_num_blocks=len(jobs))
        ds = ds.map_batches(
            RestoreActor,
            fn_constructor_kwargs={
                "make_restorer": make_restorer,
                "restore_kwargs": restore_kwargs,
                "options": options,
                "weights": weights,
            },
            batch_size=1,
            # min_size=1: the job goes on with fewer actors if a node is lost for good
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=n, initial_size=n, max_tasks_in_flight_per_actor=2),
            **remote,
        )
        try:
            for row in ds.iter_rows():
                yield json.loads(row["record"])
        except (ray.exceptions.RayError, ray.data.exceptions.UserCodeException) as exc:
            # photos never fail this way (restore_job records them); this is the cluster or the install
            last = [ln for ln in str(exc).strip().splitlines() if ln.strip()][-1:] or [type(exc).__name__]
            raise OldPhotoError(
                f"the Ray job failed: {last[0].strip()} (is oldphoto installed, with its weights, on every node?). "
                "The photos finished so far are in the manifest; rerun to resume."
            ) from None
    finally:
        ray.shutdown()
