"""Which photos a batch run restores: the tree walk, the output names and the resume decisions.

Pure decisions over plain data (file listings and manifest records), so that both engines make the
same ones and tests can check them without running a network.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..cli.photo_loop import IMAGE_SUFFIXES, output_name
from ..errors import InputError
from . import files


@dataclass(frozen=True)
class Job:
    """One photo: where it is, what it is (size, mtime) and where its PNG goes."""

    input: str
    """Relative to IN, ``/``-separated (as in the manifest)."""
    size: int
    mtime_ns: int
    output: str
    """Relative to OUT, ``/``-separated."""
    src: str
    dst: str


@dataclass
class Plan:
    todo: list[Job]
    skipped: list[dict] = field(default_factory=list)
    """The ``skipped`` records this run appends (one per photo it leaves alone)."""
    failed_before: int = 0
    """Of the skipped photos, those whose last attempt failed (left alone without ``--retry-errors``)."""


def check_roots(in_root: str, out_root: str) -> None:
    """IN must be a folder, and OUT may not overlap it: the input tree is never written to."""
    if not files.is_url(in_root) and not os.path.isdir(files._local(in_root)):
        raise InputError(f"{in_root}: not a folder (batch takes a folder; use `oldphoto restore` for files).")
    if files.nested(out_root, in_root):
        raise InputError(f"{out_root}: the output folder may not be inside the input folder {in_root}.")
    if files.nested(in_root, out_root):
        raise InputError(f"{in_root}: the input folder may not be inside the output folder {out_root}.")


def find_jobs(in_root: str, out_root: str) -> list[Job]:
    """Every photo under IN (by suffix, as ``restore``), sorted, with its mirrored output path.

    Names follow ``restore``: ``x.jpg`` -> ``x.png``; a clash within a folder (``x.jpg`` and ``x.png``)
    gives ``x_2.png`` to the later name in sorted order, so reruns give the same names.
    """
    entries = sorted(files.walk(in_root, IMAGE_SUFFIXES), key=lambda e: e.rel)
    taken: dict[str, set[str]] = {}
    jobs = []
    for e in entries:
        rel = PurePosixPath(e.rel)
        folder = str(rel.parent) if str(rel.parent) != "." else ""
        name = output_name(rel, taken.setdefault(folder, set()))  # type: ignore[arg-type]
        out_rel = f"{folder}/{name}" if folder else name
        jobs.append(Job(e.rel, e.size, e.mtime_ns, out_rel, files.join(in_root, e.rel), files.join(out_root, out_rel)))
    return jobs


def canonical(obj: object) -> object:
    """``obj`` as it reads back from the manifest (tuples become lists, keys strings), for comparisons."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def record(job: Job, options: dict, weights: dict, status: str, message: str, seconds: float, host: str) -> dict:
    return {
        "input": job.input,
        "size": job.size,
        "mtime_ns": job.mtime_ns,
        "output": job.output,
        "options": canonical(options),
        "weights": canonical(weights),
        "status": status,
        "message": message,
        "seconds": round(seconds, 3),
        "host": host,
    }


def plan(
    jobs: list[Job],
    state: dict[str, dict],
    *,
    options: dict,
    weights: dict,
    force: bool = False,
    retry_errors: bool = False,
) -> Plan:
    """Split ``jobs`` into those to run and those an earlier run settled.

    A photo is settled when its latest record has the same input size and mtime, output path,
    options and weights identity, and either succeeded (and its PNG is still there) or failed
    (retried only with ``retry_errors``). ``force`` runs everything.
    """
    opts, wts = canonical(options), canonical(weights)
    out = Plan(todo=[])
    for job in jobs:
        prev = state.get(job.input)
        same = (
            prev is not None
            and not force
            and prev.get("size") == job.size
            and prev.get("mtime_ns") == job.mtime_ns
            and prev.get("output") == job.output
            and prev.get("options") == opts
            and prev.get("weights") == wts
        )
        if same and prev["status"] == "ok" and files.exists(job.dst):
            out.skipped.append(record(job, options, weights, "skipped", "done in an earlier run", 0.0, ""))
        elif same and prev["status"] == "error" and not retry_errors:
            msg = f"failed in an earlier run ({prev.get('message', '')}); --retry-errors retries it"
            out.skipped.append(record(job, options, weights, "skipped", msg, 0.0, ""))
            out.failed_before += 1
        else:
            out.todo.append(job)
    return out
