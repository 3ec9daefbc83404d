"""The Hugging Face Space folder (hf_space/): front matter valid and consistent with weights.json and
the package, and its app.py importable (it builds the real demo without loading any weights)."""

from __future__ import annotations

import importlib.metadata
import json
import re
import runpy

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


def test_requirements_install_this_version_of_the_package():
    import oldphoto

    lines = [ln.strip() for ln in (SPACE / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines == [f"oldphoto[app]=={oldphoto.__version__}"]


def test_weights_are_listed_and_preloaded_as_weights_json_pins_them():
    """Components with a real pinned revision are preloaded from their repo at that revision; while a
    repo is unpublished (placeholder revision) preloading it would break the Space build, so its
    files come from the pinned upstream mirror instead, which the resolver converts."""
    weights = json.loads((REPO / "weights.json").read_text())
    comps = weights["components"]
    if any(c.get("repo_id") is None for c in comps.values()):
        pytest.skip("weights.json does not name the weights repos yet")
    fm, pre = front_matter(), preloads()
    mirror = weights.get("upstream", {}).get("mirror")
    for name, c in comps.items():
        assert c["repo_id"] in fm["models"], f"{name}: {c['repo_id']} missing from models"
        if c["revision"] != PLACEHOLDER_REVISION:
            files, rev = pre.get(c["repo_id"], (set(), None))
            assert c["filename"] in files and rev == c["revision"], f"{name}: not preloaded at its revision"
        else:
            assert c["repo_id"] not in pre, f"{c['repo_id']} is unpublished; preloading it fails the build"
            if mirror and c["upstream"].get("in_mirror"):
                assert mirror["repo_id"] in fm["models"]
                files, rev = pre.get(mirror["repo_id"], (set(), None))
                assert c["upstream"]["path"] in files, f"{name}: mirror file not preloaded"
                assert rev == mirror["revision"]


def test_space_app_imports_and_builds_the_demo():
    import gradio as gr

    ns = runpy.run_path(str(SPACE / "app.py"), run_name="space_app")  # not __main__: no server
    demo = ns["demo"]
    assert isinstance(demo, gr.Blocks)
    names = {d.api_name for d in demo.fns.values()}
    assert "restore" in names
