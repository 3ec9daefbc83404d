"""The local engine: the photos one after another in this process, with one :class:`Restorer`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .plan import Job
from .work import restore_job


def records(
    jobs: list[Job], *, make_restorer: Callable[[], object], restore_kwargs: dict, options: dict, weights: dict
) -> Iterator[dict]:
    from ..memory import keep_freed_memory_for_reuse

    keep_freed_memory_for_reuse()  # one process, photo after photo: reuse freed layer outputs
    restorer = make_restorer()
    for job in jobs:
        yield restore_job(restorer, job, restore_kwargs, options, weights)
