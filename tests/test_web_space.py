"""The Hugging Face Space folder (hf_space/): front matter valid and consistent with weights.json and
the package, and its app.py importable (it builds the real demo without loading any weights)."""

from __future__ import annotations

import importlib.metadata
import json
import re
import runpy
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

SPACE = REPO / "hf_space"
PLACEHOLDER_REVISION = "0" * 40


def front_matter() -> dict:
    text = (SPACE / "README.md").read_text(encoding="utf-8")
    m = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert m, "hf_space/README.md must start with a --- YAML front matter block ---"
    return yaml.safe_load(m.group(1))


def preloads() -> dict[str, tuple[set[str], str | None]]:
    """``preload_from_hub`` lines ``repo file1,file2 [revision]`` -> {repo: (files, revision)}."""
    out = {}
    for line in front_matter().get("preload_from_hub") or []:
        parts = line.split()
        assert 1 <= len(parts) <= 3, f"bad preload_from_hub entry: {line!r}"
        files = set(parts[1].split(",")) if len(parts) > 1 else set()
        out[parts[0]] = (files, parts[2] if len(parts) > 2 else None)
    return out


def test_front_matter_has_what_a_space_needs():
    fm = front_matter()
    for key in ("title", "sdk", "sdk_version", "app_file", "python_version", "models", "suggested_hardware",
                "preload_from_hub"):
        assert fm.get(key), f"front matter lacks {key}"
    assert fm["sdk"] == "gradio"
    assert (SPACE / fm["app_file"]).is_file()
    assert re.fullmatch(r"3\.\d+", str(fm["python_version"]))
    assert fm["suggested_hardware"] in {"cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "l4x1", "a10g-small",
                                       "a10g-large", "a100-large", "zero-a10g"}


def test_sdk_version_is_a_gradio_the_package_accepts():
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    version = str(front_matter()["sdk_version"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), "sdk_version must be an exact release"
    requires = [Requirement(r) for r in importlib.metadata.requires("oldphoto") or []]
    spec = next(r.specifier for r in requires if r.name == "gradio")
    assert version in SpecifierSet(str(spec)), f"sdk_version {version} outside the app extra's gradio{spec}"


def requirement_lines() -> list[str]:
    return [ln.strip() for ln in (SPACE / "requirements.txt").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]


def test_requirements_are_the_packages_dependencies():
    """oldphoto is not on PyPI: the Space installs its dependencies, and the bundle brings the code."""
    from packaging.requirements import Requirement

    declared = {str(Requirement(r)) for r in importlib.metadata.requires("oldphoto") or [] if "extra ==" not in r}
    listed = {str(Requirement(r)) for r in requirement_lines()}
    assert listed == declared
    assert not any(Requirement(r).name in ("oldphoto", "gradio") for r in requirement_lines())


def test_bundle_is_a_space_that_runs_its_own_copy_of_the_packages(tmp_path):
    """The uploaded folder must work without oldphoto installed: the app imports the bundled copies
    (with their package data) and builds the demo."""
    import subprocess
    import sys

    out = tmp_path / "space"
    ns = runpy.run_path(str(SPACE / "bundle.py"), run_name="bundle")
    assert ns["main"]([str(out)]) == 0
    top = {p.name for p in out.iterdir()}
    assert top == {"README.md", "app.py", "requirements.txt", "oldphoto", "oldphoto_gradio"}
    assert not list(out.rglob("__pycache__"))
    weights = out / "oldphoto" / "weights.json"
    assert weights.is_file() and not weights.is_symlink()
    assert json.loads(weights.read_text()) == json.loads((REPO / "weights.json").read_text())
    assert list((out / "oldphoto" / "manifests").glob("*.json"))
    assert list((out / "oldphoto_gradio" / "examples").glob("*.png"))
    # What the Space does: `python app.py` puts the app's folder first on sys.path.
    probe = (
        "import runpy, sys; sys.path.insert(0, '.');"
        "ns = runpy.run_path('app.py', run_name='space_app');"
        "import oldphoto, oldphoto_gradio, gradio as gr;"
        "assert isinstance(ns['demo'], gr.Blocks);"
        "from oldphoto import weights;"
        "print(oldphoto.__file__); print(oldphoto_gradio.__file__); print(weights.__file__)"
    )
    r = subprocess.run([sys.executable, "-c", probe], cwd=out, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    files = [Path(line).resolve() for line in r.stdout.split()]
    assert len(files) == 3 and all(out.resolve() in f.parents for f in files), r.stdout
    # A second build replaces the first; a folder that is not a build is left alone.
    assert ns["main"]([str(out)]) == 0
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(SystemExit):
        ns["build"](other)
    assert (other / "keep.txt").read_text() == "x"


def test_weights_are_listed_and_preloaded_as_weights_json_pins_them():
    """Components with a real pinned revision are preloaded from their repo at that revision; while a
    repo is unpublished (placeholder revision) preloading it would break the Space build, so its
    files come from the pinned upstream mirror instead, which the resolver converts."""
    weights = json.loads((REPO / "weights.json").read_text())
    comps = weights["components"]
    fm, pre = front_matter(), preloads()
    for name, c in comps.items():
        ours = c["sources"][0]  # schema 3: the project's safetensors repo comes first
        assert ours["path"].endswith(".safetensors"), name
        assert ours["hub"] in fm["models"], f"{name}: {ours['hub']} missing from models"
        if ours["revision"] != PLACEHOLDER_REVISION:
            files, rev = pre.get(ours["hub"], (set(), None))
            assert ours["path"] in files and rev == ours["revision"], f"{name}: not preloaded at its revision"
        else:
            assert ours["hub"] not in pre, f"{ours['hub']} is unpublished; preloading it fails the build"
            pinned = [s for s in c["sources"][1:] if s.get("hub") and s.get("revision")]
            if pinned:  # the first pinned pickle copy is preloaded at its pin, so the Space converts offline
                files, rev = pre.get(pinned[0]["hub"], (set(), None))
                assert pinned[0]["hub"] in fm["models"]
                assert pinned[0]["path"] in files and rev == pinned[0]["revision"], name


def test_space_app_imports_and_builds_the_demo():
    import gradio as gr

    ns = runpy.run_path(str(SPACE / "app.py"), run_name="space_app")  # not __main__: no server
    demo = ns["demo"]
    assert isinstance(demo, gr.Blocks)
    names = {d.api_name for d in demo.fns.values()}
    assert "restore" in names
