"""A small archive for the batch tests: 30 photos in nested folders, 3 of them broken."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
GOOD = [
    "a.png", "x.jpg", "x.png", "scan 01.png", "b.jpeg",
    "1950/p1.png", "1950/p2.jpg", "1950/p3.png", "1950/p4.png", "1950/p5.png", "1950/p6.png", "1950/p7.png",
    "1950/beach/q1.png", "1950/beach/q2.png", "1950/beach/q3.jpg", "1950/beach/q4.png", "1950/beach/q5.png",
    "1950/beach/q6.png", "1950/beach/q7.png", "1950/beach/q8.png",
    "1960/r1.png", "1960/r2.png", "1960/r3.png",
    "1960/deep/er/s1.png", "1960/deep/er/s2.png", "1960/deep/er/s3.png", "1960/deep/er/s4.png",
]
BROKEN = ["1950/garbage.png", "1960/truncated.jpg", "1950/beach/empty.png"]
ARGS = ["--no-faces", "-q", "--device", "cpu"]  # quality mode: the networks of the tests' interest, kept cheap


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run in-process restorations at 1 torch thread, as the CLI subprocesses (OMP_NUM_THREADS=1) and
    the 1-CPU Ray actors do: results are bit-identical only at equal thread counts."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def make_tree(root: Path) -> None:
    """27 readable photos of 32-64 px, 3 broken files, plus files a batch must leave alone."""
    rng = np.random.default_rng(17)
    for rel in GOOD:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        h, w = (int(v) for v in rng.integers(32, 65, size=2))
        base = np.linspace(40, 200, w)[None, :, None] + rng.normal(0, 25, (h, w, 3))
        Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(p)
    (root / BROKEN[0]).write_bytes(b"\x89PNG\r\n\x1a\n not really")
    data = (root / "x.jpg").read_bytes()
    (root / BROKEN[1]).write_bytes(data[: len(data) // 3])
    (root / BROKEN[2]).write_bytes(b"")
    (root / "notes.txt").write_text("not a photo")
    (root / "1950" / ".hidden.png").write_bytes((root / "a.png").read_bytes())


def expected_outputs() -> set[str]:
    names = set()
    for rel in GOOD:
        folder, _, name = rel.rpartition("/")
        out = name.rsplit(".", 1)[0] + ".png"
        out = "x_2.png" if rel == "x.png" else out  # x.jpg sorts first and keeps x.png
        names.add(f"{folder}/{out}" if folder else out)
    return names


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` with its bytes and mtime (for "the input is never modified")."""
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def pngs(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.png")}


def records(out: Path) -> list[dict]:
    from oldphoto.batch import manifest

    return manifest.read(out / manifest.NAME)


def comparable(recs: list[dict]) -> list[dict]:
    """Records without what may differ between runs and engines (timings, host names), sorted."""
    return sorted(({k: v for k, v in r.items() if k not in ("seconds", "host")} for r in recs),
                  key=lambda r: r["input"])


def cli_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    paths = [str(REPO / "core"), str(REPO / "gradio_app"), str(REPO / "gimp_plugin")]
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return env


def start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "oldphoto.cli", "batch", *args], env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_lines(proc: subprocess.Popen, manifest_path: Path, n: int, timeout: float = 240) -> int:
    """Poll until the manifest has ``n`` complete lines (or the process ends); returns the count."""
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        if manifest_path.exists():
            count = manifest_path.read_bytes().count(b"\n")
            if count >= n:
                return count
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"batch ended (rc {proc.returncode}) before {n} lines: {out}\n{err}")
        time.sleep(0.05)
    raise AssertionError(f"only {count} manifest lines after {timeout} s")


def decoded_ok(path: Path) -> bool:
    with Image.open(path) as im:
        im.load()
    return True


def manifest_json_lines(out: Path) -> list[str]:
    return [json.dumps(r, sort_keys=True) for r in records(out)]


# -- a real Ray cluster on 127.0.0.1 (tests/test_batch_ray.py, benchmarks/bench_batch.py) ----------------


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


def started_by(pgids: list[int]) -> dict[int, str]:
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


def stop_processes(pgids: list[int]) -> None:
    """SIGTERM, then SIGKILL, to exactly the processes the fixture started (by pid)."""
    seen = started_by(pgids)
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


class RayCluster:
    """``ray start --head`` plus one ``ray start --address`` per further node, on 127.0.0.1, with
    ephemeral ports, a short temp dir and token authentication (a token made for this cluster).

    Each ``ray start`` runs in its own process group; Ray's workers start sessions of their own, so
    :meth:`stop` signals the groups' processes and all their descendants, by pid (never ``ray stop``,
    which would stop every Ray on the machine).
    """

    def __init__(self, cpus: list[int]) -> None:
        import secrets
        import tempfile

        ray_bin = str(Path(sys.executable).with_name("ray"))
        self.temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: socket paths must fit in 107 bytes
        self.env = dict(cli_env(), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16),
                        RAY_USAGE_STATS_ENABLED="0")
        port = _free_port()
        self.address = f"127.0.0.1:{port}"
        self.pgids: list[int] = []
        try:
            for i, n in enumerate(cpus):
                role = (["--head", f"--port={port}", f"--temp-dir={self.temp}", "--include-dashboard=false"] if i == 0
                        else [f"--address={self.address}"])
                p = subprocess.Popen(
                    [ray_bin, "start", *role, f"--num-cpus={n}", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
                     "--object-store-memory=100000000",  # the records are tiny; spare the shared machine's RAM
                     f"--dashboard-agent-listen-port={_free_port()}", f"--metrics-export-port={_free_port()}"],
                    env=self.env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                self.pgids.append(p.pid)  # the daemons it starts stay in its process group
                out, _ = p.communicate(timeout=120)
                if p.returncode != 0:
                    raise RuntimeError(f"ray start failed: {out[-3000:]}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        import shutil

        stop_processes(self.pgids)
        shutil.rmtree(self.temp, ignore_errors=True)
