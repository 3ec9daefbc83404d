"""``oldphoto batch --engine ray`` on a real two-node Ray cluster started here on 127.0.0.1.

The head and the worker node (1 CPU each) are ``ray start`` processes, each in its own process
group so that the fixture can stop exactly what it started, also when a test fails. Token
authentication is on, with a token made for this cluster, as on a real one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from oldphoto.batch import manifest

from .batch_helpers import ARGS, cli_env, comparable, pngs, records, wait_for_lines

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds Ray's processes in /proc")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, command line) of the live processes."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if fields[0] != "Z":
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                found[int(d.name)] = (int(fields[1]), int(fields[2]), cmd)
        except (OSError, ValueError):
            continue
    return found


def _started_by(pgids: list[int]) -> dict[int, str]:
    """The processes of these process groups and all their descendants (Ray's workers start their own
    sessions, so the group alone misses them): pid -> command line."""
    procs = _processes()
    mine = {pid for pid, (_pp, pg, _c) in procs.items() if pg in pgids}
    grew = True
    while grew:
        more = {pid for pid, (pp, _pg, _c) in procs.items() if pp in mine and pid not in mine}
        mine |= more
        grew = bool(more)
    return {pid: procs[pid][2] for pid in mine}


def _stop(pgids: list[int]) -> None:
    """SIGTERM, then SIGKILL, to exactly the processes the fixture started (by pid)."""
    seen = _started_by(pgids)
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
        alive = {pid: cmd for pid, (_pp, _pg, cmd) in _processes().items() if seen.get(pid) == cmd}
        for pid in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not any(seen.get(pid) == cmd for pid, (_pp, _pg, cmd) in _processes().items()):
                return
            time.sleep(0.2)


@dataclass
class Cluster:
    address: str
    env: dict[str, str]
    worker_pgid: int


@pytest.fixture(scope="module")
def ray_cluster():
    pytest.importorskip("ray", reason="the Ray engine needs the 'ray' extra (pip install 'oldphoto[ray]')")
    ray_bin = str(Path(sys.executable).with_name("ray"))
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    env = dict(cli_env(), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16), RAY_USAGE_STATS_ENABLED="0")
    port = _free_port()
    node = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
            f"--dashboard-agent-listen-port={_free_port()}", f"--metrics-export-port={_free_port()}"]
    pgids: list[int] = []
    try:
        for extra in (["--head", f"--port={port}", f"--temp-dir={temp}", "--include-dashboard=false"],
                      [f"--address=127.0.0.1:{port}"]):
            p = subprocess.Popen([ray_bin, "start", *extra, *node], env=env, start_new_session=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            pgids.append(p.pid)  # the daemons it starts stay in its process group
            out, _ = p.communicate(timeout=120)
            assert p.returncode == 0, out[-3000:]
        yield Cluster(f"127.0.0.1:{port}", env, pgids[1])
    finally:
        _stop(pgids)
        shutil.rmtree(temp, ignore_errors=True)


def _start(cluster: Cluster, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "oldphoto.cli", "batch", *args, "--engine", "ray",
                             "--ray-address", cluster.address], env=cluster.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _actor_on_worker_node(cluster: Cluster, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid, cmd in _started_by([cluster.worker_pgid]).items():
            if cmd.startswith("ray::MapWorker") or "RestoreActor" in cmd:
                return pid
        time.sleep(0.1)
    raise AssertionError(f"no batch actor on the worker node: {sorted(_started_by([cluster.worker_pgid]).values())}")


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
