"""Assemble the folder that is uploaded as the Hugging Face Space.

A Space installs ``requirements.txt`` before its files are copied in, and oldphoto is not on PyPI, so
the Space cannot ``pip install oldphoto``. Instead the two packages it runs (``oldphoto`` and
``oldphoto_gradio``) are copied next to ``app.py`` (the app's folder is first on ``sys.path`` when the
Space runs ``python app.py``) and ``requirements.txt`` lists only their third-party dependencies.

Usage (``make space`` runs it)::

    python hf_space/bundle.py build/space
    hf upload USER/oldphoto build/space . --repo-type space
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPACE = REPO / "hf_space"
# (package name, source folder): the same mapping as [tool.setuptools] package-dir in pyproject.toml.
PACKAGES = (("oldphoto", REPO / "core" / "oldphoto"), ("oldphoto_gradio", REPO / "gradio_app" / "oldphoto_gradio"))
SPACE_FILES = ("README.md", "app.py", "requirements.txt")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


def build(out: Path) -> Path:
    """Write the Space folder to ``out`` (emptied first; it must not be inside the sources)."""
    out = out.resolve()
    for _, src in PACKAGES:
        if out == src or src in out.parents:
            raise SystemExit(f"refusing to build inside the package sources: {out}")
    if out.exists():
        if not (out / "app.py").is_file() and any(out.iterdir()):
            raise SystemExit(f"{out} exists and is not an earlier Space build; choose an empty folder")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in SPACE_FILES:
        shutil.copy2(SPACE / name, out / name)
    for name, src in PACKAGES:
        # symlinks=False: oldphoto/weights.json is a link to the repository's weights.json.
        shutil.copytree(src, out / name, symlinks=False, ignore=SKIP)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, nargs="?", default=REPO / "build" / "space", help="output folder")
    out = build(p.parse_args(argv).out)
    print(f"Space folder ready: {out}")
    print(f"upload it with:  hf upload USER/oldphoto {out} . --repo-type space")
    return 0


if __name__ == "__main__":
    sys.exit(main())
