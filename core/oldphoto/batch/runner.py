"""One batch run, whatever the engine: plan, record every photo in the manifest, count, report.

An engine is a function from the jobs to run to their records, yielded as photos finish (in any
order); everything else (the skip decisions, the manifest, the progress bar, the summary) is
here, which is why the engines cannot disagree on them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TextIO

from ..errors import InputError
from . import files, manifest
from .plan import Job, check_roots, find_jobs, plan

Engine = Callable[[list[Job]], Iterator[dict]]


@dataclass
class Summary:
    restored: int = 0
    skipped: int = 0
    failed: int = 0
    failed_before: int = 0
    """Skipped photos whose last attempt failed: the job is not complete while there are any."""
    interrupted: bool = False

    def line(self) -> str:
        s = f"{self.restored} restored, {self.skipped} skipped, {self.failed} failed"
        if self.failed_before:
            s += f" ({self.failed_before} of the skipped failed in an earlier run; --retry-errors retries them)"
        return s

    @property
    def ok(self) -> bool:
        return not (self.failed or self.failed_before or self.interrupted)


def run(
    in_root: str,
    out_root: str,
    *,
    engine: Engine,
    options: dict,
    weights: dict,
    manifest_path: str,
    force: bool = False,
    retry_errors: bool = False,
    quiet: bool = False,
    err: TextIO | None = None,
) -> Summary:
    """Run the batch job; a KeyboardInterrupt ends it cleanly (``Summary.interrupted``), resumable."""
    from tqdm import tqdm

    err = err or sys.stderr
    check_roots(in_root, out_root)
    jobs = find_jobs(in_root, out_root)
    if not jobs:
        raise InputError(f"{in_root}: no image files found (looked for {', '.join(sorted(files_suffixes()))}).")
    files.remove_stale_parts(out_root)  # temporary files of a killed run
    state = manifest.latest_state(manifest.read(manifest_path))
    todo = plan(jobs, state, options=options, weights=weights, force=force, retry_errors=retry_errors)
    summary = Summary(skipped=len(todo.skipped), failed_before=todo.failed_before)
    with manifest.Writer(manifest_path) as writer:
        writer.append(*todo.skipped)
        bar = tqdm(total=len(jobs), initial=len(todo.skipped), unit="photo", disable=quiet, file=err,
                   dynamic_ncols=True, smoothing=0.1)
        try:
            if todo.todo:
                for rec in engine(todo.todo):
                    writer.append(rec)
                    if rec["status"] == "ok":
                        summary.restored += 1
                    else:
                        summary.failed += 1
                        bar.write(f"error: {rec['message']}", file=err)
                    bar.update(1)
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            bar.close()
    return summary


def files_suffixes() -> set[str]:
    from ..cli.photo_loop import IMAGE_SUFFIXES

    return IMAGE_SUFFIXES
