"""What the web app does with a request, without any Gradio in it: read the upload, cap its size,
turn the chosen scratch option into ``Restorer.restore`` arguments, and package the result as files.

Kept apart from the layout (``app.py``) so that every user-facing error path is a plain function
that the unit tests call directly; the app only converts :class:`OldPhotoError` into ``gr.Error``.
All restoration work is the library's: this module adds no image processing of its own beyond
the demo's size cap.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from oldphoto import imageio
from oldphoto.errors import InputError, OldPhotoError, WeightsError
from oldphoto.stages.adjust import MASK_GROW_MAX, SCRATCH_THRESHOLD
from oldphoto.stages.resize import LANCZOS, resize

from .masks import editor_to_mask, mask_preview

DEFAULT_MAX_SIDE = 1024
"""Longest side the public demo restores. Scratch mode attends over the whole latent image, so its
cost grows fast with size; a shared machine must answer everyone. ``oldphoto demo --max-side 0``
(or the CLI / Python API) restores any size."""

EDITOR_MAX_SIDE = 1024
"""Longest side of the copy shown in the brush editor; strokes are mapped back to full size."""

SCRATCH_CHOICES = (
    ("No scratches (faster)", "none"),
    ("Detect scratches automatically", "auto"),
    ("Paint the damaged areas myself", "paint"),
)

WEIGHTS_HELP = (
    "To get the weights: on a machine with internet access run `oldphoto weights download --mode all` "
    "(they are cached and used offline afterwards), or start the demo with "
    "`oldphoto demo --weights-dir DIR` where DIR holds the converted .safetensors files "
    "(see the Weights section of the README)."
)


COLOR_CHOICES = (
    ("No colour (keep the photo's tones)", "none"),
    ("Automatic (DDColor)", "auto"),
    ("From a reference photo", "reference"),
    ("With colour points", "points"),
)
"""The Colour control: ``Restorer.restore``'s ``colorize`` values; :func:`color_request` says what
each needs (a reference photo for "reference", colour points for "points")."""

DEFAULT_POINT_COLOUR = "#3a6ea5"
"""The colour picker's first colour (a faded blue: a dress, a sky)."""

POINT_RADIUS = 6
"""Radius in pixels of a point's marker on the click-to-place preview."""

COLOR_MODELS = (
    ("ModelScope: natural colours (default)", "modelscope"),
    ("Paper: the published model", "paper"),
    ("Artistic: more vivid", "artistic"),
    ("Tiny: fastest on a CPU", "tiny"),
)
"""``colorize_model`` values: the four DDColor checkpoints."""

EXISTING_COLOR_CHOICES = (
    ("Only if the photo is grey (keep existing colour)", "grey-only"),
    ("Replace the existing colour", "replace"),
)
"""What to do with a photo that already has colour: DDColor keeps only its lightness, so replacing
its colour is something the user must ask for."""

COLOR_HELP = (
    "**Colour**: *Automatic* colourises the restored photo with DDColor (Kang et al., ICCV 2023); the "
    "photo's own lightness is kept and only the colour is predicted. *ModelScope* gives natural "
    "colours, *Artistic* more vivid ones, *Tiny* is the fastest on a CPU. A photo that already has "
    "colour is left as it is unless you choose “Replace the existing colour”. *From a reference photo* "
    "takes the colours of a colour photo of the same or a similar scene (Deep Exemplar, Zhang et al., "
    "CVPR 2019): upload it below. *With colour points* uses the colours you know (SIGGRAPH17 user-guided "
    "colourisation): pick a colour, click the photo where it belongs, and repeat; without points the "
    "model guesses on its own."
)

MAX_FACES_SHOWN = 12
"""Faces shown before/after in the gallery; a crowd photo still gets every face enhanced."""


class UserError(OldPhotoError):
    """A request the app cannot run as given (no photo, nothing painted); the message says what to do."""


@dataclass
class Prepared:
    """The photo as it will be restored, and what the user must be told about it."""

    photo: Image.Image
    original_size: tuple[int, int]
    name: str
    notices: list[str] = field(default_factory=list)


def prepare_photo(src: str | Path | Image.Image | None, *, max_side: int = DEFAULT_MAX_SIDE) -> Prepared:
    """Read the upload with the library's reader and downscale it past ``max_side`` (0 = no cap)."""
    if src is None:
        raise UserError("Upload a photo first (or pick one of the examples).")
    name = Path(src).stem if isinstance(src, (str, Path)) else "photo"
    photo = imageio.load_rgb(src)
    size = photo.size
    notices: list[str] = []
    if max_side and max(size) > max_side:
        scale = max_side / max(size)
        new = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
        photo = resize(photo, new, LANCZOS)
        notices.append(
            f"Your photo is {size[0]}×{size[1]} px; this demo restores photos up to {max_side} px on the "
            f"long side, so it was downscaled to {new[0]}×{new[1]} px. For full resolution, run "
            "`oldphoto restore` on your own machine."
        )
    return Prepared(photo=photo, original_size=size, name=name, notices=notices)


def editor_preview(photo: Image.Image, max_side: int = EDITOR_MAX_SIDE) -> Image.Image:
    """The copy of the photo to paint on: small enough for any browser canvas."""
    if max(photo.size) <= max_side:
        return photo
    scale = max_side / max(photo.size)
    size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
    return resize(photo, size, LANCZOS)


ADJUST_HELP = (
    "**Strength**: how much of the restoration is kept (lower it when the photo looks too smooth or "
    "painted). **Face strength**: how much of each enhanced face is blended in (lower it when a face "
    "looks wrong). **Colour strength**: how much of the predicted colour is kept (0 gives the grey "
    "photo back; lower it when the colours look too strong). Moving these three after a restore "
    "re-blends the kept result at once, without running the networks again. **Scratch threshold**: lower finds more damage, higher spares thin lines that "
    "are not scratches (fence posts, wires); it also applies to “Start from the detected scratches”. "
    "**Mask grow**: widens the scratch mask by that many pixels when scratch edges stay visible. These "
    "two change what the networks see, so they apply at the next **Restore**. The defaults give the "
    "original method's result."
)


@dataclass
class Request:
    """Keyword arguments for ``Restorer.restore`` decided from the form."""

    scratches: str
    mask: np.ndarray | None
    hr: bool
    faces: bool
    adjust: dict[str, Any] = field(default_factory=lambda: {
        "strength": 1.0, "face_strength": 1.0, "scratch_threshold": SCRATCH_THRESHOLD, "mask_grow": 0})
    """``strength``, ``face_strength``, ``scratch_threshold``, ``mask_grow`` (the library checks them)."""
    color: dict[str, Any] = field(default_factory=dict)
    """``colorize``, ``colorize_model``, ``color_strength`` for ``Restorer.restore``; empty: no colour."""
    notices: list[str] = field(default_factory=list)
    """What the user must be told about the request (e.g. colour left out of a colour photo); the app
    adds them to the photo's notices, so that re-blends show them too."""


def parse_points(text: str | list | None) -> list[tuple[Any, Any, Any]]:
    """The points field (JSON ``[[x, y, "#rrggbb"], ...]`` or ``[{"x", "y", "color"}, ...]``, as the
    CLI's hints file) -> point tuples; empty or missing = no points. One-line :class:`UserError` for
    text that is not such a list; positions and colours are checked by the library."""
    import json

    from oldphoto.cli.colour import points_from_json

    if text is None or (isinstance(text, str) and not text.strip()):
        return []
    if isinstance(text, str):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"Colour points: not valid JSON ({exc.msg}); write them as "
                            '[[x, y, "#rrggbb"], ...] in photo pixels.') from None
    else:
        data = text
    return points_from_json(data, "Colour points")


def points_json(points: list) -> str:
    """Point tuples -> the points field's text (positions rounded to whole pixels)."""
    import json

    return json.dumps([[round(float(x)), round(float(y)), str(c)] for x, y, c in points])


def scale_points(points: list, original_size: tuple[int, int], photo_size: tuple[int, int]) -> list:
    """Points given on the uploaded photo -> the same places on the (possibly downscaled) photo restored.

    They are first checked against the upload's size, so an error names the user's own coordinates.
    """
    from oldphoto.stages.guided import check_points

    check_points(points, original_size)
    if original_size == photo_size:
        return list(points)
    sx, sy = photo_size[0] / original_size[0], photo_size[1] / original_size[1]
    return [(min(float(x) * sx, photo_size[0] - 1), min(float(y) * sy, photo_size[1] - 1), c) for x, y, c in points]


def click_to_point(index: Any, preview_size: tuple[int, int], original_size: tuple[int, int]
                   ) -> tuple[int, int] | None:
    """A click on the preview (Gradio's ``SelectData.index``: [x, y] in the preview's pixels) -> the
    pixel of the uploaded photo at full resolution; None for a click outside the photo."""
    if not isinstance(index, (list, tuple)) or len(index) != 2:
        return None
    try:
        px, py = float(index[0]), float(index[1])
    except (TypeError, ValueError):
        return None
    pw, ph = preview_size
    if not (0 <= px < pw and 0 <= py < ph):
        return None
    ow, oh = original_size
    return min(int((px + 0.5) * ow / pw), ow - 1), min(int((py + 0.5) * oh / ph), oh - 1)


def points_preview(photo: Image.Image, points: list, original_size: tuple[int, int]) -> Image.Image:
    """The click-to-place copy of the photo with each point drawn as a dot of its colour (numbered by
    order, ringed in black and white so it shows on any photo). Drawing only: no point data changes."""
    from PIL import ImageDraw

    from oldphoto.stages.guided import parse_colour

    preview = editor_preview(photo).convert("RGB")
    draw = ImageDraw.Draw(preview)
    sx, sy = preview.width / original_size[0], preview.height / original_size[1]
    r = POINT_RADIUS
    for i, (x, y, colour) in enumerate(points, 1):
        try:
            rgb, _ = parse_colour(colour, f"Colour point {i}")
        except OldPhotoError:
            continue  # the restore reports it with its message
        cx, cy = (float(x) + 0.5) * sx, (float(y) + 0.5) * sy
        draw.ellipse((cx - r - 2, cy - r - 2, cx + r + 2, cy + r + 2), fill=(0, 0, 0))
        draw.ellipse((cx - r - 1, cy - r - 1, cx + r + 1, cy + r + 1), fill=(255, 255, 255))
        draw.ellipse((cx - r + 1, cy - r + 1, cx + r - 1, cy + r - 1), fill=tuple(rgb))
        draw.text((cx + r + 3, cy - r - 3), str(i), fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
    return preview


def color_request(photo: Image.Image, colorize: str | None = "none", colorize_model: str | None = "modelscope",
                  color_strength: float = 1.0, existing_color: str | None = "grey-only", *,
                  reference: str | Path | None = None, hints: str | list | None = None,
                  original_size: tuple[int, int] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The Colour controls -> ``Restorer.restore`` keywords, and notices for the user.

    With ``existing_color="grey-only"`` a photo that already has colour (``oldphoto.stages.colorize.is_grey``
    says no) is not colourised, and the notice says how to replace its colour. Values are checked here
    only as far as the form's choices go; the library checks ranges and says which they are.
    ``reference`` (a file) is needed for "reference"; ``hints`` (:func:`parse_points`) are in the
    pixels of the uploaded photo (``original_size``) and are scaled to ``photo`` when it was downscaled.
    """
    colorize = colorize or "none"
    if colorize == "none":
        return {}, []
    known = [value for _, value in COLOR_CHOICES]
    if colorize not in known:
        raise UserError(f"Unknown colour option {colorize!r}; use one of: {', '.join(known)}.")
    models = [value for _, value in COLOR_MODELS]
    model = colorize_model or "modelscope"
    if model not in models:
        raise UserError(f"Unknown colour model {model!r}; use one of: {', '.join(models)}.")
    existing = existing_color or "grey-only"
    if existing not in ("grey-only", "replace"):
        raise UserError(f"Unknown choice for a photo that has colour {existing!r}; use grey-only or replace.")
    if existing == "grey-only":
        from oldphoto.stages.colorize import is_grey

        if not is_grey(photo):
            return {}, ["Your photo already has colour, so it was not colourised. To replace its colour "
                        "with predicted colour, choose “Replace the existing colour” and restore again."]
    out: dict[str, Any] = {"colorize": colorize, "colorize_model": model, "color_strength": color_strength}
    if colorize == "reference":
        if not reference:
            raise UserError("You chose to colour from a reference photo but none is uploaded: upload a colour "
                            "photo of the same or a similar scene under “Reference photo”.")
        out["reference"] = str(reference)
    elif colorize == "points":
        points = parse_points(hints)
        out["hints"] = scale_points(points, original_size or photo.size, photo.size)
    return out, []


def build_request(
    prepared: Prepared,
    scratches: str,
    editor: Mapping[str, Any] | None,
    *,
    hr: bool,
    faces: bool,
    strength: float = 1.0,
    face_strength: float = 1.0,
    scratch_threshold: float = SCRATCH_THRESHOLD,
    mask_grow: float = 0,
    colorize: str | None = "none",
    colorize_model: str | None = "modelscope",
    color_strength: float = 1.0,
    existing_color: str | None = "grey-only",
    reference: str | Path | None = None,
    hints: str | list | None = None,
) -> Request:
    """The form's scratch option -> ``scratches`` / ``mask`` arguments of the library, plus the
    adjustments and the colour options (:func:`color_request`)."""
    adjust = {"strength": strength, "face_strength": face_strength, "scratch_threshold": scratch_threshold,
              "mask_grow": mask_grow}
    color, notices = color_request(prepared.photo, colorize, colorize_model, color_strength, existing_color,
                                   reference=reference, hints=hints, original_size=prepared.original_size)
    req = _scratch_request(prepared, scratches, editor, hr=hr, faces=faces, adjust=adjust)
    req.color, req.notices = color, notices
    return req


def _scratch_request(prepared: Prepared, scratches: str, editor: Mapping[str, Any] | None, *, hr: bool,
                     faces: bool, adjust: dict[str, Any]) -> Request:
    if scratches == "paint":
        mask = editor_to_mask(editor, prepared.photo.size)
        if mask is None:
            raise UserError(
                "You chose to paint the damaged areas but nothing is painted yet: paint over the scratches "
                "in the editor (or choose “Detect scratches automatically”)."
            )
        return Request("none", mask, bool(hr), bool(faces), adjust)
    if scratches in ("none", "auto"):
        return Request(scratches, None, bool(hr), bool(faces), adjust)
    raise UserError(f"Unknown scratch option {scratches!r}; use one of: none, auto, paint.")


class KeptResults:
    """The last restoration of each browser session, for the strength sliders to re-blend.

    A ``RestoreResult`` keeps the intermediates (processed input, global result, enhanced faces);
    ``RestoreResult.reblend`` mixes them again without a network. Only the most recent sessions are
    kept (``max_sessions``), so a public demo's memory stays bounded.
    """

    def __init__(self, max_sessions: int = 16) -> None:
        self.max_sessions = max_sessions
        self._items: OrderedDict[str, tuple[Prepared, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, session: str, prepared: Prepared, result: Any) -> None:
        with self._lock:
            self._items[session] = (prepared, result)
            self._items.move_to_end(session)
            while len(self._items) > self.max_sessions:
                self._items.popitem(last=False)

    def get(self, session: str) -> tuple[Prepared, Any] | None:
        with self._lock:
            return self._items.get(session)

    def forget(self, session: str) -> None:
        with self._lock:
            self._items.pop(session, None)


def reblend(prepared: Prepared, result: Any, strength: float, face_strength: float,
            out_dir: str | Path | None = None, color_strength: float | None = None) -> Outputs:
    """A kept result with other strengths, packaged like a restore (the library does the mixing).

    ``color_strength`` applies only to a colourised result (a result without colour has none to scale).
    """
    options: dict[str, Any] = {"strength": strength, "face_strength": face_strength}
    if color_strength is not None and is_colorized(result):
        options["color_strength"] = color_strength
    return package_result(prepared, result.reblend(**options), out_dir)


def color_summary(result: Any) -> str:
    """E.g. "colourised (automatic, Tiny model, colour strength 0.5)" for the summary line."""
    kind = getattr(result.color, "model", "")
    if kind == "reference":
        text = "colourised (from the reference photo"
    elif kind == "points":
        text = "colourised (with colour points"
    else:
        model = {value: label.split(":")[0] for label, value in COLOR_MODELS}.get(kind, kind)
        text = f"colourised (automatic, {model} model"
    if result.controls.color_strength != 1.0:
        text += f", colour strength {result.controls.color_strength:g}"
    return text + ")"


def is_colorized(result: Any) -> bool:
    """Whether a ``RestoreResult`` was colourised (it keeps the colour prediction for re-blends)."""
    return getattr(result, "color", None) is not None


def user_message(err: BaseException) -> str:
    """The text shown to the user for a failure: the library's message, plus how to fix weights."""
    if isinstance(err, WeightsError):
        msg = f"The model weights are not available. {err}"
        if "oldphoto weights download" not in msg or "--weights-dir" not in msg:
            msg += f" {WEIGHTS_HELP}"  # the resolver's own advice is enough when it gives it
        return msg
    if isinstance(err, OldPhotoError):
        return str(err)
    return (
        f"Restoration failed unexpectedly ({err.__class__.__name__}: {err}). The details are in the "
        "server log; please report it with the photo if it keeps happening."
    )


class RestorerHolder:
    """One shared ``Restorer``, made on first use so the page loads even when weights are missing."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._restorer: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        with self._lock:
            if self._restorer is None:
                self._restorer = self._factory()
            return self._restorer


def preload_networks(restorer: Any, colorize_model: str = "modelscope") -> list[str]:
    """Load every mode's networks, the default DDColor model and the reference / colour-point models
    now; return the messages of the modes whose weights are missing.

    A Space preloads at start-up so the first visitor does not wait for loading, and so that on
    ZeroGPU the networks live in the main process (each GPU call runs in a short-lived worker that
    would otherwise load them again). Missing weights are reported, not raised: the page must come up
    and explain them to visitors.
    """
    problems = []
    for scratches, hr in ((False, False), (True, False), (True, True)):
        try:
            restorer.preload(scratches=scratches, hr=hr, faces=True)
        except OldPhotoError as exc:
            problems.append(str(exc))
    for colorize in ("auto", "reference", "points"):  # the other DDColor models load when first chosen
        try:
            restorer.preload(faces=False, colorize=colorize, colorize_model=colorize_model)
        except OldPhotoError as exc:
            problems.append(str(exc))
    return problems


@dataclass
class Outputs:
    """Files and images the page shows for one restoration."""

    before: Image.Image
    after: Image.Image
    download: Path
    mask: Image.Image | None
    faces: list[tuple[np.ndarray, str]]
    summary: str


class ResultStore:
    """Folder for the downloadable PNGs, one sub-folder per request, pruned by age.

    Gradio copies returned files into its own cache, so ours are only needed briefly; without
    pruning a public demo would fill its disk with full-resolution results.
    """

    def __init__(self, root: str | Path | None = None, max_age_s: float = 3600.0) -> None:
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="oldphoto-web-"))
        self.max_age_s = max_age_s

    def new_folder(self) -> Path:
        self.prune()
        return Path(tempfile.mkdtemp(dir=self.root))

    def image_file(self, img: Image.Image) -> str:
        """A PNG of ``img`` named by its content and written once (temporary name, then rename).

        For images the page may get more than once (the editor's background on every new photo,
        painting switched on, detection): Gradio rewrites its cached copy of a returned PIL image in
        place each time the same pixels come again (``processing_utils.save_pil_to_cache``), which
        truncates the file under a browser that is still fetching it ("Too little data for declared
        Content-Length", and the editor never finishes loading). A returned path is copied into
        Gradio's cache only when absent, so nothing is rewritten under a reader.
        """
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        data = buf.getvalue()
        folder = self.root / "editor"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
        if not path.exists():
            tmp = folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}.part"
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return str(path)

    def prune(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for sub in self.root.iterdir() if self.root.exists() else []:
            try:
                if sub.is_dir() and now - sub.stat().st_mtime > self.max_age_s:
                    shutil.rmtree(sub, ignore_errors=True)
            except FileNotFoundError:  # pruned by a concurrent request
                pass


def package_result(prepared: Prepared, result: Any, out_dir: str | Path | None = None) -> Outputs:
    """Write the full-resolution PNG for download and collect what the accordion shows."""
    folder = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="oldphoto-web-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prepared.name}_restored.png"
    result.image.save(path, format="PNG")
    faces: list[tuple[np.ndarray, str]] = []
    for i, face in enumerate(result.faces[:MAX_FACES_SHOWN], 1):
        faces.append((np.asarray(face.aligned), f"Face {i}: before"))
        faces.append((np.asarray(face.enhanced), f"Face {i}: after"))
    w, h = result.image.size
    parts = [f"Restored {w}×{h} px"]
    if result.mask_source != "none" and result.mask is not None:
        share = float(np.mean(result.mask)) * 100
        parts.append(f"scratch mask: {result.mask_source}, {share:.1f}% of the photo")
    parts.append(f"{len(result.faces)} face(s) enhanced" if result.faces else "no faces enhanced")
    if is_colorized(result):
        parts.append(color_summary(result))
    if result.timings:
        parts.append(f"{sum(result.timings.values()):.1f} s")
    summary = " · ".join(parts) + "."
    notes = [n for n in getattr(result, "notes", []) if n]
    if notes:
        summary += " " + " ".join(notes)
    if prepared.notices:
        summary = "\n\n".join([*(f"⚠️ {n}" for n in prepared.notices), summary])
    return Outputs(
        before=prepared.photo,
        after=result.image,
        download=path,
        mask=mask_preview(result.mask) if result.mask is not None else None,
        faces=faces,
        summary=summary,
    )


def check_reference(src: str | Path | None) -> None:
    """Raise the library's one-line :class:`InputError` now if a reference upload cannot be used
    (unreadable, tiny), as ``Restorer.restore`` would."""
    if src is None:
        return
    from oldphoto.stages.guided import check_reference as check

    try:
        ref = imageio.load_rgb(src)
    except InputError as exc:
        raise InputError(f"Reference photo: {exc}") from None
    check(np.asarray(ref))


def check_photo(src: str | Path | None) -> None:
    """Raise :class:`InputError` now if an upload is not a usable image (used right after upload)."""
    if src is not None:
        imageio.load_rgb(src)


__all__ = [
    "DEFAULT_MAX_SIDE",
    "ADJUST_HELP",
    "COLOR_CHOICES",
    "COLOR_HELP",
    "COLOR_MODELS",
    "DEFAULT_POINT_COLOUR",
    "EXISTING_COLOR_CHOICES",
    "InputError",
    "KeptResults",
    "MASK_GROW_MAX",
    "SCRATCH_THRESHOLD",
    "Outputs",
    "Prepared",
    "Request",
    "RestorerHolder",
    "SCRATCH_CHOICES",
    "UserError",
    "build_request",
    "check_reference",
    "click_to_point",
    "color_request",
    "editor_preview",
    "package_result",
    "parse_points",
    "points_json",
    "points_preview",
    "prepare_photo",
    "reblend",
    "user_message",
]
