"""Shared builders for the weights tests (no tests here; the name keeps it among the weights files).

The checkpoints are real ``torch.save`` files with the official tensor names and shapes (seeded
values), wrapped the way the official training code saved them, so conversion and download run
on the same kind of bytes as with the real files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from oldphoto.seeded import seeded_state_dict
from oldphoto.weights import component_spec, registry
from oldphoto.weights.convert import prepare_state, write_safetensors

REPO = Path(__file__).resolve().parents[1]
ENV_VARS = (
    "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_TOKEN",
    "OLDPHOTO_WEIGHTS_DIR", "OLDPHOTO_CACHE", "OLDPHOTO_WEIGHTS_JSON", "TRANSFORMERS_OFFLINE",
)


def clean_env(monkeypatch, home: Path) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


def safetensors_file(component: str, out_dir: Path) -> Path:
    """The seeded weights as the converter writes them (what the published repo would hold)."""
    path = out_dir / f"{component}.safetensors"
    if not path.exists():
        write_safetensors(component, prepare_state(component, seeded_state_dict(component), "seeded"), out_dir)
    return path


def official_pickle(component: str, path: Path, *, wrap: str = "plain") -> Path:
    """A seeded checkpoint saved like the official code: ``plain``, ``model_state`` (detection:
    with optimizer state and epoch beside it) or ``module`` (DataParallel ``module.`` prefix)."""
    state = seeded_state_dict(component)
    if wrap == "model_state":
        obj: object = {"model_state": state, "optimizer_state": {"lr": torch.tensor(1e-4)}, "epoch": 10}
    elif wrap == "module":
        obj = {f"module.{k}": v for k, v in state.items()}
    else:
        obj = state
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


def official_layout_path(component: str) -> str:
    return component_spec(component).upstream.path


def registry_copy(tmp: Path, **overrides: dict) -> Path:
    """A copy of the package's weights.json with per-component fields replaced (e.g. a sha256)."""
    data = json.loads(Path(registry().source).read_text(encoding="utf-8"))
    for name, fields in overrides.items():
        data["components"][name].update(fields)
    path = tmp / "weights.test.json"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def hermetic_registry(tmp: Path) -> Path:
    """The package's weights.json with every release URL on a closed local port: tests that only
    run a fake Hub never reach the real release hosts, even on a machine with internet access."""
    data = json.loads(Path(registry().source).read_text(encoding="utf-8"))
    for info in data["archives"].values():
        info["urls"] = ["http://127.0.0.1:9/" + u.split("://", 1)[1].split("/", 1)[1] for u in info["urls"]]
    path = tmp / "weights.hermetic.json"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def cache_files(root: Path) -> list[str]:
    """Regular files (not lock files) under a cache folder, relative, for 'nothing left behind'."""
    if not root.exists():
        return []
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*")
        if (p.is_file() or p.is_symlink()) and ".locks" not in p.parts and p.name != "CACHEDIR.TAG"
    )


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m oldphoto.cli weights`` in a fresh process, so env vars are read as a user's shell sets them."""
    full = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    full.update(env)
    full.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return subprocess.run([sys.executable, "-m", "oldphoto.cli", "weights", *args], env=full, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
