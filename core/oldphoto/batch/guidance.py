"""Per-photo colour guidance of a batch (a reference photo or colour points), from the plain data
``oldphoto.cli.colour.batch_guidance`` builds once for the whole run."""

from __future__ import annotations

from ..errors import InputError


def for_photo(guidance: dict | None, colorize: str | None, rel: str) -> dict:
    """``Restorer.restore`` keywords for the photo at ``rel`` (relative to the batch folder, ``/``-separated)."""
    if not guidance:
        return {}
    if colorize == "reference":
        ref = guidance["references"].get(rel, guidance.get("reference"))
        if ref is None:
            raise InputError("not in the reference map, and no single --reference was given.")
        return {"reference": ref}
    if colorize == "points":
        pts = guidance["hints"].get(rel)
        return {"hints": [tuple(p) for p in pts]} if pts is not None else {}
    return {}
