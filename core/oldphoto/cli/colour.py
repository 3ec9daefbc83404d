"""Colour guidance options of the restore and batch commands: ``--reference``, ``--hint``, ``--hints``.

Reference and points are per photo. ``restore`` takes one ``--reference`` image for every input and
the points of ``--hint``/``--hints`` (a JSON list); ``batch`` takes one reference for the whole folder
or a JSON map ``{"photo path relative to the folder": "reference path"}``, and for points a JSON map
``{"photo": [[x, y, "#rrggbb"], ...]}`` (photos not in a map get the automatic colour of the model).
Every problem with these files is one ``InputError`` line naming the file and the entry.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from ..errors import InputError

HINT = re.compile(r"^\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*,\s*(#[0-9a-fA-F]{6})\s*$")


def add_guidance_options(p: argparse.ArgumentParser, *, batch: bool = False) -> None:
    """--reference, --hint, --hints: the guidance of ``--colorize reference`` / ``--colorize points``."""
    g = p.add_argument_group("colour guidance (with --colorize reference / points)")
    g.add_argument(
        "--reference", type=Path, metavar="REF",
        help="a colour photo to take the colours from (same scene, people or era works best)" + (
            "; for batch also a JSON map {photo path relative to IN: reference path}" if batch else ""),
    )
    if batch:
        g.add_argument("--hints", type=Path, metavar="FILE.json",
                       help='colour points per photo: JSON map {"photo": [[x, y, "#rrggbb"], ...]}')
    else:
        g.add_argument("--hint", action="append", metavar="X,Y,#RRGGBB",
                       help="a colour point in photo pixels (repeatable), e.g. --hint 120,40,#3a6ea5")
        g.add_argument("--hints", type=Path, metavar="FILE.json",
                       help='colour points as a JSON list [[x, y, "#rrggbb"], ...] or [{"x":..,"y":..,"color":..}]')


def parse_hint(text: str, label: str = "--hint") -> tuple[float, float, str]:
    m = HINT.match(text)
    if not m:
        raise InputError(f"{label} {text!r}: write it as X,Y,#RRGGBB (photo pixels and a hex colour), "
                         "e.g. 120,40,#3a6ea5.")
    try:
        return float(m.group(1)), float(m.group(2)), m.group(3)
    except ValueError:
        raise InputError(f"{label} {text!r}: X and Y must be numbers.") from None


def _read_json(path: Path, what: str) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{what} {path}: file not found.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} {path}: cannot be read ({exc.__class__.__name__}).") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} {path}: not valid JSON ({exc.msg} at line {exc.lineno}).") from None


def points_from_json(data: object, where: str) -> list[tuple[object, object, object]]:
    """``[[x, y, "#rrggbb"], ...]`` or ``[{"x": .., "y": .., "color": ..}, ...]`` -> point tuples."""
    if not isinstance(data, list):
        raise InputError(f"{where}: expected a list of points [[x, y, \"#rrggbb\"], ...].")
    out = []
    for i, p in enumerate(data, 1):
        if isinstance(p, dict):
            missing = [k for k in ("x", "y") if k not in p] + ([] if ("color" in p or "colour" in p) else ["color"])
            if missing:
                raise InputError(f"{where}: point {i} lacks {', '.join(missing)}.")
            out.append((p["x"], p["y"], p.get("color", p.get("colour"))))
        elif isinstance(p, list) and len(p) == 3:
            out.append(tuple(p))
        else:
            raise InputError(f"{where}: point {i} must be [x, y, \"#rrggbb\"] or {{\"x\", \"y\", \"color\"}}, got "
                             f"{json.dumps(p)[:60]}.")
    return out  # positions and colours are checked against the photo by the Restorer


def load_hints_file(path: Path) -> list:
    return points_from_json(_read_json(path, "Hints file"), f"Hints file {path}")


def check_colour_args(args: argparse.Namespace) -> None:
    """Refuse inconsistent guidance options once, before any photo."""
    if args.colorize == "reference" and args.reference is None:
        raise InputError("--colorize reference needs --reference REF (a colour photo).")
    if args.reference is not None and args.colorize != "reference":
        raise InputError("--reference is only used with --colorize reference.")
    hints_given = getattr(args, "hint", None) or args.hints is not None
    if hints_given and args.colorize != "points":
        raise InputError("--hint/--hints are only used with --colorize points.")


def colour_kwargs(args: argparse.Namespace) -> dict:
    """``Restorer.restore`` guidance keywords for the restore command (the same for every input)."""
    kw: dict = {}
    if args.colorize == "reference":
        kw["reference"] = args.reference
    if args.colorize == "points":
        pts = [parse_hint(h) for h in (args.hint or [])]
        if args.hints is not None:
            pts += load_hints_file(args.hints)
        kw["hints"] = pts
    return kw


def batch_guidance(args: argparse.Namespace) -> dict | None:
    """The batch command's per-photo guidance as plain JSON data (recorded with the options, sent to
    Ray workers): ``{"reference": path | None, "references": {photo: path}, "hints": {photo: points}}``.
    Every file is read and checked here, before any photo."""
    if args.colorize == "reference":
        ref = args.reference
        if ref.suffix.lower() == ".json":
            data = _read_json(ref, "Reference map")
            if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
                raise InputError(f"Reference map {ref}: expected a JSON object {{\"photo\": \"reference path\"}}.")
            refs = {}
            for photo, r in data.items():
                p = Path(r) if Path(r).is_absolute() else ref.parent / r
                if not p.is_file():
                    raise InputError(f"Reference map {ref}: the reference of {photo!r}, {r}, is not a file.")
                refs[Path(photo).as_posix()] = str(p.resolve())
            return {"reference": None, "references": refs, "hints": {}}
        if not ref.is_file():
            raise InputError(f"--reference {ref}: file not found.")
        return {"reference": str(ref.resolve()), "references": {}, "hints": {}}
    if args.colorize == "points" and args.hints is not None:
        data = _read_json(args.hints, "Hints file")
        if not isinstance(data, dict):
            raise InputError(f"Hints file {args.hints}: expected a JSON object {{\"photo\": [[x, y, \"#rrggbb\"], "
                             "...]}} for batch.")
        hints = {Path(k).as_posix(): [list(p) for p in points_from_json(v, f"Hints file {args.hints}, {k!r}")]
                 for k, v in data.items()}
        return {"reference": None, "references": {}, "hints": hints}
    return None
