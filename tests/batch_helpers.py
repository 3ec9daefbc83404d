"""A small archive for the batch tests: 30 photos in nested folders, 3 of them broken."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
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
