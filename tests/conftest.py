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
