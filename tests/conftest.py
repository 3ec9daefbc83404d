"""Shared fixtures. Reference data lives in ``../shared/reference`` beside the repository
(override with ``OLDPHOTO_REFERENCE``); tests that need it skip with a clear reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get("OLDPHOTO_REFERENCE", REPO.parent / "shared" / "reference"))


def require_reference(*parts: str) -> Path:
    path = REFERENCE.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data not found at {path} (set OLDPHOTO_REFERENCE or place shared/ beside the repo)")
    return path


@pytest.fixture(scope="session")
def reference() -> Path:
    return require_reference()


@pytest.fixture(scope="session")
def seeded_weights_dir(tmp_path_factory) -> Path:
    """A folder of ``<component>.safetensors`` with the reference's seeded weights (seed 36 / 1234)."""
    from oldphoto.seeded import write_seeded_weights

    out = tmp_path_factory.mktemp("seeded_weights")
    write_seeded_weights(out)
    return out


def _seeded_beside(seeded_weights_dir: Path, tmp_path_factory, name: str, components: list[str]) -> Path:
    """A new folder with ``seeded_weights_dir``'s files linked (not copied) plus seeded ``components``.

    Never write into ``seeded_weights_dir`` itself: other tests rely on what it lacks (e.g. a missing
    colour model is reported), and a session fixture must look the same whatever ran before."""
    from oldphoto.seeded import write_seeded_weights

    out = tmp_path_factory.mktemp(name)
    for f in seeded_weights_dir.iterdir():
        (out / f.name).symlink_to(f)
    write_seeded_weights(out, components)
    return out


@pytest.fixture(scope="session")
def color_weights_dir(seeded_color_weights_dir) -> Path:
    """``seeded_weights_dir`` plus seeded DDColor-T (``ddcolor_paper_tiny``, scheme ddcolor-seeded-v1, seed 36)."""
    return seeded_color_weights_dir


GUIDED_COMPONENTS = ["exemplar_vgg19", "exemplar_nonlocal", "exemplar_colornet", "siggraph17"]


@pytest.fixture(scope="session")
def guided_weights_dir(seeded_weights_dir, tmp_path_factory) -> Path:
    """``seeded_weights_dir`` plus the seeded Deep Exemplar and SIGGRAPH17 files."""
    return _seeded_beside(seeded_weights_dir, tmp_path_factory, "seeded_guided_weights", GUIDED_COMPONENTS)


@pytest.fixture(scope="session")
def batch_tree(tmp_path_factory) -> Path:
    """The batch tests' archive (tests/batch_helpers.py); read-only for the tests."""
    from .batch_helpers import make_tree

    root = tmp_path_factory.mktemp("batch") / "archive"
    make_tree(root)
    return root


@pytest.fixture(scope="session")
def batch_reference(batch_tree, seeded_weights_dir, tmp_path_factory) -> Path:
    """OUT of one complete, uninterrupted local run over ``batch_tree``: what every other run must give."""
    from oldphoto.cli import main

    from .batch_helpers import ARGS, one_torch_thread

    out = tmp_path_factory.mktemp("batch_ref") / "out"
    with one_torch_thread():
        assert main(["batch", str(batch_tree), str(out), "--weights-dir", str(seeded_weights_dir), *ARGS]) == 1
    return out


def pytest_configure(config) -> None:
    """Per-machine decisions (oldphoto.cpu.decided_once) in a folder of this run, shared with the
    processes the tests start (workers, CLI), instead of the user's ~/.cache."""
    import tempfile

    from oldphoto.cpu import CACHE_ENV

    os.environ.setdefault(CACHE_ENV, tempfile.mkdtemp(prefix="oldphoto-cpu-"))


def pytest_report_header(config) -> list[str]:
    """The machine at the top of every test report (oldphoto.cpu): a failure says which CPU it came from."""
    from oldphoto.cpu import cpu_facts

    return cpu_facts().describe()


@pytest.fixture(scope="session")
def seeded_color_weights_dir(seeded_weights_dir, tmp_path_factory) -> Path:
    """``seeded_weights_dir`` (linked, not copied) plus the seeded tiny DDColor (``ddcolor_paper_tiny``,
    220 MB, a few seconds): what colour tests of the surfaces need, with ``colorize_model="tiny"``."""
    return _seeded_beside(seeded_weights_dir, tmp_path_factory, "seeded_color_weights", ["ddcolor_paper_tiny"])


@pytest.fixture(scope="session")
def seeded_guided_weights_dir(seeded_color_weights_dir, tmp_path_factory) -> Path:
    """``seeded_color_weights_dir`` plus seeded Deep Exemplar and SIGGRAPH17 weights: what the surfaces'
    tests of every colour mode need (the tiny DDColor, a reference photo, colour points)."""
    return _seeded_beside(seeded_color_weights_dir, tmp_path_factory, "seeded_surface_weights", GUIDED_COMPONENTS)
