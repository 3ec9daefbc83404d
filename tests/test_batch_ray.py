"""``oldphoto batch --engine ray`` on a real two-node Ray cluster started here on 127.0.0.1.

The head and the worker node (1 CPU each) are ``ray start`` processes
(:class:`tests.batch_helpers.RayCluster`); the fixture stops exactly what it started, also when a
test fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from oldphoto.batch import manifest

from .batch_helpers import ARGS, RayCluster, comparable, pngs, records, started_by, wait_for_lines

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds Ray's processes in /proc")


@pytest.fixture(scope="module")
def ray_cluster():
    pytest.importorskip("ray", reason="the Ray engine needs the 'ray' extra (pip install 'oldphoto[ray]')")
    cluster = RayCluster(cpus=[1, 1])
    try:
        yield cluster
    finally:
        cluster.stop()


def _start(cluster: RayCluster, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "oldphoto.cli", "batch", *args, "--engine", "ray",
                             "--ray-address", cluster.address], env=cluster.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _actor_on_worker_node(cluster: RayCluster, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid, cmd in started_by([cluster.pgids[1]]).items():
            if cmd.startswith("ray::MapWorker") or "RestoreActor" in cmd:
                return pid
        time.sleep(0.1)
    raise AssertionError(f"no batch actor on the worker node: {sorted(started_by([cluster.pgids[1]]).values())}")


def _finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def test_same_outputs_as_local_with_a_worker_killed(tmp_path, ray_cluster, batch_tree, batch_reference,
                                                    seeded_weights_dir):
    """An actor process on the worker node is killed mid-job: Ray restarts it and retries its photos,
    and the job ends with the local engine's PNG bytes and manifest, nothing missing or doubled."""
    out = tmp_path / "out"
    proc = _start(ray_cluster, str(batch_tree), str(out), "--weights-dir", str(seeded_weights_dir), *ARGS)
    try:
        wait_for_lines(proc, out / manifest.NAME, 4)
        victim = _actor_on_worker_node(ray_cluster)
        done_at_kill = len(records(out))
        os.kill(victim, signal.SIGKILL)
    finally:
        rc, stdout, stderr = _finish(proc)
    assert done_at_kill < 30, "the kill came after the job"
    assert rc == 1, stderr
    assert stdout.strip().splitlines()[-1] == "27 restored, 0 skipped, 3 failed"  # after Ray's retry notices
    assert pngs(out) == pngs(batch_reference)
    recs = records(out)
    assert len(recs) == 30 and len({r["input"] for r in recs}) == 30
    assert comparable(recs) == comparable(manifest.latest_state(records(batch_reference)).values())
    assert not list(out.rglob("*.part"))


def test_driver_interrupt_then_rerun_resumes(tmp_path, ray_cluster, batch_tree, batch_reference,
                                             seeded_weights_dir):
    out = tmp_path / "out"
    args = [str(batch_tree), str(out), "--weights-dir", str(seeded_weights_dir), *ARGS]
    proc = _start(ray_cluster, *args)
    try:
        wait_for_lines(proc, out / manifest.NAME, 6)
        proc.send_signal(signal.SIGINT)
    finally:
        rc, stdout, stderr = _finish(proc, 120)
    first = records(out)
    assert rc == 130 and "interrupted" in stderr, (rc, stderr[-2000:])
    assert 6 <= len(first) < 30
    rc, stdout, stderr = _finish(_start(ray_cluster, *args))
    assert rc == 1, stderr
    restored = int(stdout.strip().splitlines()[-1].split()[0])
    assert restored == 27 - sum(r["status"] == "ok" for r in first)
    assert pngs(out) == pngs(batch_reference)
    settled = [r for r in records(out) if r["status"] != "skipped"]
    assert len(settled) == 30 and len({r["input"] for r in settled}) == 30
    assert comparable(settled) == comparable(manifest.latest_state(records(batch_reference)).values())
