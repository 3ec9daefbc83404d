"""The Gradio page: layout and event wiring only. Requests go through :mod:`.service`, restoration
through :class:`oldphoto.Restorer`; library errors become ``gr.Error`` pop-ups with the library's
own message, never a traceback.

The public API endpoint is ``/restore`` (see the README for a ``gradio_client`` call).
"""

from __future__ import annotations

import html
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from . import service
from .gpu import gpu_seconds, on_gpu
from .masks import mask_to_layer

log = logging.getLogger("oldphoto_gradio")

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
API_NAME = "restore"
QUEUE_MAX_SIZE = 16
"""Requests waiting beyond this are turned away with Gradio's "queue is full" message, so a busy
demo answers quickly instead of piling up work that would time out anyway."""

INTRO = """\
# oldphoto: bring old photos back to life
Upload a scanned old photo and press **Restore**. The networks are those of *Bringing Old Photos Back
to Life* (Wan et al., CVPR 2020): global restoration in latent space, optional scratch repair (detected
or painted by you) and face enhancement; black-and-white photos can be colourised automatically with
DDColor (Kang et al., ICCV 2023), from a reference colour photo, or from colour points you place. Drag
the slider to compare before and after.
"""

CSS = """
#result img { image-rendering: auto; }
footer { display: none !important; }
"""


def photo_input(**kwargs: Any) -> gr.Image:
    """A ``gr.Image`` upload that passes the uploaded file on untouched.

    ``gr.Image`` decodes uploads with Pillow before our code runs, so a broken file would end in a
    generic "Error"; here the library's reader sees the original bytes (EXIF, 16-bit) and its
    :class:`~oldphoto.errors.InputError` message reaches the user. The hook is replaced on the
    instance rather than in a subclass because Gradio writes a ``.pyi`` stub beside the source of
    every component subclass.
    """
    image = gr.Image(type="filepath", **kwargs)

    def preprocess(payload: Any) -> str | None:
        return None if payload is None else str(payload.path)

    image.preprocess = preprocess  # type: ignore[method-assign]
    return image


def _error(exc: BaseException) -> gr.Error:
    """The pop-up for a failure; it stays until closed, since the message says what to do."""
    if not isinstance(exc, service.OldPhotoError):
        log.exception("unexpected failure", exc_info=exc)
    # The pop-up renders HTML: escape markup, but not quotes, which API clients would see as entities.
    return gr.Error(html.escape(service.user_message(exc), quote=False), duration=None, print_exception=False)


def _shown_name(msg: str, path: str | None) -> str:
    """Replace the server's temporary upload path in a message by the file's own name."""
    return msg.replace(path, Path(path).name) if path else msg


def build_app(
    restorer_factory: Callable[[], Any] | None = None,
    *,
    weights_dir: str | os.PathLike | None = None,
    device: str = "auto",
    max_side: int = service.DEFAULT_MAX_SIDE,
    examples: bool = True,
    preload: bool = False,
) -> gr.Blocks:
    """The demo as a ``gr.Blocks`` with its queue configured; start it with :func:`launch`.

    ``restorer_factory`` makes the shared ``Restorer`` on first use (default:
    ``Restorer(device=device, weights_dir=weights_dir)``); nothing loads until someone restores, so
    the page comes up even when the weights are missing. ``max_side`` caps the photo size (0 = none).
    ``preload`` loads all networks now (the Space does; missing weights are only logged).
    """
    if restorer_factory is None:

        def restorer_factory() -> Any:
            from oldphoto import Restorer

            return Restorer(device=device, weights_dir=weights_dir)

    holder = service.RestorerHolder(restorer_factory)
    results = service.ResultStore()
    kept = service.KeptResults()  # each session's last result, for the strength sliders

    # Cancel: one Event per browser session for its running job. Gradio's own cancel only stops the
    # page from waiting; the Event makes the Restorer stop at its next layer (oldphoto.progress). On
    # ZeroGPU the job runs in another process, where only Gradio's cancel applies.
    running: dict[str, threading.Event] = {}

    def session_key(request: gr.Request | None) -> str:
        return getattr(request, "session_hash", None) or ""

    def cancel_job(request: gr.Request) -> None:
        ev = running.get(session_key(request))
        if ev is not None:
            ev.set()
            gr.Info("Cancelled.")

    def reporter(progress: Any) -> Callable[[float, str], None]:
        """oldphoto's progress(fraction, message) -> Gradio's tracker."""
        def report(fraction: float, message: str) -> None:
            if progress is not None:
                progress(fraction, desc=message)

        return report

    def gpu_restore(photo: Image.Image, mask: np.ndarray | None, scratches: str, hr: bool, faces: bool,
                    progress: Any = None, cancel: threading.Event | None = None,
                    adjust: dict[str, Any] | None = None, color: dict[str, Any] | None = None) -> Any:
        return holder.get().restore(photo, scratches=scratches, mask=mask, hr=hr, faces=faces,
                                    progress=reporter(progress), cancel=cancel, **(adjust or {}), **(color or {}))

    def gpu_detect(photo: Image.Image, progress: Any = None, scratch_threshold: float = service.SCRATCH_THRESHOLD
                   ) -> np.ndarray:
        return holder.get().detect_scratches(photo, progress=reporter(progress), scratch_threshold=scratch_threshold)

    run_on_gpu = on_gpu(gpu_restore)  # imports `spaces` (when present) before the Restorer touches CUDA
    detect_on_gpu = on_gpu(gpu_detect, duration=lambda photo, *_, **__: gpu_seconds(photo, faces=False))
    if preload:
        for problem in service.preload_networks(holder.get()):
            log.warning("weights not available at start-up: %s", problem)

    def check_photo(photo: str | None) -> str:
        """New upload: read it now, so a bad file gets its message at once, and tell about downscaling."""
        if photo is None:
            return ""
        try:
            prepared = service.prepare_photo(photo, max_side=max_side)
        except service.OldPhotoError as exc:
            raise _error(service.InputError(_shown_name(str(exc), photo))) from exc
        return " ".join(f"⚠️ {n}" for n in prepared.notices)

    def check_reference(ref: str | None) -> None:
        """New reference upload: read it now, so a bad file gets the library's message at once."""
        if ref is None:
            return
        try:
            service.check_reference(ref)
        except service.OldPhotoError as exc:
            raise _error(service.InputError(_shown_name(str(exc), ref))) from exc

    def fill_editor(photo: str | None, scratches: str) -> Any:
        """Put the photo into the brush editor when painting is chosen.

        The editor only draws a value it receives while visible, so this runs after the editor is
        shown (and again on each new photo while painting); a new photo starts a fresh drawing.
        """
        if scratches != "paint":
            return gr.skip()
        if photo is None:
            return None
        try:
            prepared = service.prepare_photo(photo, max_side=max_side)
        except service.OldPhotoError:
            return None  # check_photo reports it
        preview = results.image_file(service.editor_preview(prepared.photo))
        return {"background": preview, "layers": [], "composite": preview}

    def show_editor(scratches: str) -> Any:
        return gr.update(visible=scratches == "paint")

    def detect_into_editor(photo: str | None, scratch_threshold: float = service.SCRATCH_THRESHOLD,
                           progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
        """Run detection and hand its mask to the brush editor for correction."""
        try:
            prepared = service.prepare_photo(photo, max_side=max_side)
            mask = detect_on_gpu(prepared.photo, progress, scratch_threshold)  # only the U-Net
        except Exception as exc:
            raise _error(exc) from exc
        preview = service.editor_preview(prepared.photo)
        layer = mask_to_layer(mask, preview.size)
        composite = Image.alpha_composite(preview.convert("RGBA"), Image.fromarray(layer, "RGBA"))
        return {"background": results.image_file(preview), "layers": [layer], "composite": results.image_file(composite)}

    def restore(
        photo: str | None,
        scratches: str = "none",
        painted: dict | None = None,
        faces: bool = True,
        hr: bool = False,
        strength: float = 1.0,
        face_strength: float = 1.0,
        scratch_threshold: float = service.SCRATCH_THRESHOLD,
        mask_grow: float = 0,
        colorize: str = "none",
        colorize_model: str = "modelscope",
        color_strength: float = 1.0,
        existing_color: str = "grey-only",
        reference: str | None = None,
        hints: str = "",
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio injects the tracker here
        request: gr.Request = None,  # type: ignore[assignment]  # injected by Gradio (session for Cancel)
    ) -> tuple[Any, ...]:
        """Restore an old photo.

        Args:
            photo: the photo to restore (any image format Pillow reads).
            scratches: "none", "auto" (detect scratches) or "paint" (use the layers of `painted`).
            painted: image-editor value whose layers mark damage (alpha or white = damage); only for "paint".
            faces: enhance detected faces.
            hr: high-resolution mode (patch-attention scratch model, 512 px faces).
            strength: 0..1, share of the global restoration kept (1 = full, the default).
            face_strength: 0..1, how much of each enhanced face is blended in (default 1).
            scratch_threshold: 0..1, detection probability from which a pixel is a scratch (default 0.4).
            mask_grow: 0..64, pixels by which the scratch mask is widened (default 0).
            colorize: "none" (default), "auto" (colourise the result with DDColor), "reference" (colours
                of the `reference` photo, Deep Exemplar) or "points" (the colours of `hints`, SIGGRAPH17).
            colorize_model: "modelscope" (default), "paper", "artistic" or "tiny" (fastest).
            color_strength: 0..1, share of the predicted colour kept (1 = full, the default; 0 = grey).
            existing_color: "grey-only" (default: a photo that already has colour is not colourised, and
                the summary says so) or "replace" (its colour is replaced by the predicted one).
            reference: a colour photo of the same or a similar scene; only for colorize="reference".
            hints: colour points as JSON text '[[x, y, "#rrggbb"], ...]' in pixels of the uploaded photo;
                only for colorize="points" (none: the model's own automatic colour).

        Returns:
            (before, after) images, the full-resolution PNG, a summary, the scratch mask used, face crops.
        """
        try:
            prepared = service.prepare_photo(photo, max_side=max_side)
            req = service.build_request(prepared, scratches, painted, hr=hr, faces=faces, strength=strength,
                                        face_strength=face_strength, scratch_threshold=scratch_threshold,
                                        mask_grow=mask_grow, colorize=colorize, colorize_model=colorize_model,
                                        color_strength=color_strength, existing_color=existing_color,
                                        reference=reference if colorize == "reference" else None,
                                        hints=hints if colorize == "points" else None)
            prepared.notices.extend(req.notices)  # shown in the summary, also after a re-blend
            for notice in prepared.notices:
                gr.Warning(notice)
            cancel = running[session_key(request)] = threading.Event()
            try:
                result = run_on_gpu(prepared.photo, req.mask, req.scratches, req.hr, req.faces, progress, cancel,
                                    req.adjust, req.color)
            finally:
                if running.get(session_key(request)) is cancel:
                    del running[session_key(request)]
            out = service.package_result(prepared, result, results.new_folder())
            kept.put(session_key(request), prepared, result)
        except Exception as exc:
            if isinstance(exc, service.InputError) and (photo or reference):
                exc = service.InputError(_shown_name(_shown_name(str(exc), photo), reference))
            raise _error(exc) from exc
        return (
            (out.before, out.after),
            str(out.download),
            out.summary,
            out.mask,
            out.faces,
        )

    def points_image(photo: str | None, hints: str) -> Any:
        """The click-to-place copy of the photo with the current points drawn (None without a photo)."""
        if photo is None:
            return None
        try:
            prepared = service.prepare_photo(photo, max_side=max_side)
            points = service.parse_points(hints)
        except service.OldPhotoError:
            return None  # check_photo / restore report it
        return results.image_file(service.points_preview(prepared.photo, points, prepared.original_size))

    def add_point(photo: str | None, hints: str, colour: str, evt: gr.SelectData) -> tuple[Any, str]:
        """A click on the preview: a point of the picked colour at that place of the full-size photo."""
        if photo is None:
            return gr.skip(), hints
        try:
            prepared = service.prepare_photo(photo, max_side=max_side)
            points = service.parse_points(hints)
            preview = service.editor_preview(prepared.photo)
            at = service.click_to_point(evt.index, preview.size, prepared.original_size)
            if at is None:
                return gr.skip(), hints
            service.scale_points([(at[0], at[1], colour)], prepared.original_size, prepared.original_size)
        except Exception as exc:
            raise _error(exc) from exc
        points.append((at[0], at[1], colour.lower()))
        text = service.points_json(points)
        return points_image(photo, text), text

    def remove_last_point(photo: str | None, hints: str) -> tuple[Any, str]:
        try:
            points = service.parse_points(hints)[:-1]
        except service.OldPhotoError:
            points = []
        text = service.points_json(points)
        return points_image(photo, text), text

    def new_points_photo(photo: str | None, colorize: str) -> tuple[Any, str]:
        """A new photo starts without points; the preview is drawn while colour points are chosen."""
        return (points_image(photo, "[]") if colorize == "points" else None), "[]"

    def readjust(strength: float, face_strength: float, color_strength: float = 1.0,
                 request: gr.Request = None) -> tuple[Any, ...]:  # type: ignore[assignment]
        """Strength sliders moved: re-blend this session's last result (no network runs, no GPU)."""
        item = kept.get(session_key(request))
        if item is None:
            return gr.skip(), gr.skip(), gr.skip()  # nothing restored yet: the values apply to the next Restore
        prepared, result = item
        t = time.perf_counter()
        try:
            out = service.reblend(prepared, result, strength, face_strength, results.new_folder(),
                                  color_strength=color_strength)
        except Exception as exc:
            raise _error(exc) from exc
        log.info("re-blended with strength %g, face strength %g, colour strength %g in %.2f s (no network)",
                 strength, face_strength, color_strength, time.perf_counter() - t)
        return (out.before, out.after), str(out.download), out.summary

    def forget(request: gr.Request = None) -> None:  # type: ignore[assignment]
        kept.forget(session_key(request))

    # delete_cache: uploads and results in Gradio's cache are removed after an hour, as ours are.
    with gr.Blocks(title="oldphoto: bring old photos back to life", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                photo = photo_input(label="Old photo", sources=["upload", "clipboard"], format="png",
                                    height=380, elem_id="photo")
                photo_notice = gr.Markdown(elem_id="photo-notice")
                scratches = gr.Radio(list(service.SCRATCH_CHOICES), value="none", label="Scratches and tears",
                                     elem_id="scratches")
                with gr.Group(visible=False, elem_id="paint-group") as paint_group:
                    gr.Markdown("Paint over scratches, tears and spots with the brush; the eraser removes "
                                "paint. Strokes apply to the photo at full resolution.", padding=True)
                    editor = gr.ImageEditor(
                        label="Paint the damage",
                        type="numpy", image_mode="RGBA", format="png", sources=[], transforms=[],
                        layers=False, interactive=True, height=420, elem_id="editor",
                        brush=gr.Brush(colors=["#ff0040"], default_color="#ff0040", color_mode="fixed"),
                    )
                    detect_btn = gr.Button("Start from the detected scratches", size="sm",
                                           elem_id="detect-btn")
                with gr.Row():
                    faces = gr.Checkbox(value=True, label="Enhance faces", elem_id="faces")
                    hr = gr.Checkbox(value=False, label="High-resolution mode (HR)", elem_id="hr")
                with gr.Group(elem_id="colour-group"):
                    colorize = gr.Radio(list(service.COLOR_CHOICES), value="none", label="Colour",
                                        elem_id="colorize")
                    with gr.Group(visible=False, elem_id="colour-options") as colour_options:
                        colorize_model = gr.Dropdown(list(service.COLOR_MODELS), value="modelscope",
                                                     label="Colour model (automatic)", elem_id="colorize-model")
                        existing_color = gr.Radio(list(service.EXISTING_COLOR_CHOICES), value="grey-only",
                                                  label="If the photo already has colour", elem_id="existing-color")
                        gr.Markdown(service.COLOR_HELP, padding=True)
                    with gr.Group(visible=False, elem_id="reference-group") as reference_group:
                        reference = photo_input(label="Reference photo (in colour)", sources=["upload", "clipboard"],
                                                format="png", height=240, elem_id="reference")
                    with gr.Group(visible=False, elem_id="points-group") as points_group:
                        gr.Markdown("Pick a colour, then click the photo where it belongs; each click places a "
                                    "point of that colour. Points apply to the photo at full resolution.",
                                    padding=True)
                        point_colour = gr.ColorPicker(value=service.DEFAULT_POINT_COLOUR, label="Point colour",
                                                      elem_id="point-colour")
                        points_img = gr.Image(label="Click to place a colour point", type="filepath", format="png",
                                              interactive=False, height=380, elem_id="points-image",
                                              buttons=[])
                        with gr.Row():
                            undo_point = gr.Button("Remove the last point", size="sm", elem_id="undo-point")
                            clear_points = gr.Button("Clear the points", size="sm", elem_id="clear-points")
                        hints = gr.Textbox(value="[]", label='Colour points (x, y, colour) in photo pixels',
                                           lines=1, max_lines=4, elem_id="hints")
                with gr.Accordion("Adjust", open=False, elem_id="adjust"):
                    gr.Markdown(service.ADJUST_HELP, padding=True)
                    strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Strength", elem_id="strength")
                    face_strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Face strength",
                                              elem_id="face-strength")
                    color_strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Colour strength",
                                               elem_id="color-strength")
                    scratch_threshold = gr.Slider(0, 1, value=service.SCRATCH_THRESHOLD, step=0.05,
                                                  label="Scratch threshold", elem_id="scratch-threshold")
                    mask_grow = gr.Slider(0, service.MASK_GROW_MAX, value=0, step=1, label="Mask grow (pixels)",
                                          elem_id="mask-grow")
                with gr.Row():
                    restore_btn = gr.Button("Restore", variant="primary", elem_id="restore-btn", scale=3)
                    cancel_btn = gr.Button("Cancel", variant="secondary", elem_id="cancel-btn", scale=1)
            with gr.Column(scale=1):
                slider = gr.ImageSlider(label="Before / after", type="pil", format="png", interactive=False,
                                        elem_id="result", max_height=520)
                download = gr.DownloadButton("Download the restored photo (PNG, full resolution)",
                                             visible=False, elem_id="download")
                summary = gr.Markdown(elem_id="summary")
                with gr.Accordion("Intermediate results", open=False, elem_id="intermediates"):
                    mask_img = gr.Image(label="Scratch mask used (white = damage)", format="png",
                                        interactive=False, elem_id="mask")
                    faces_gallery = gr.Gallery(label="Faces: before / after", columns=4, format="png",
                                               interactive=False, elem_id="faces-gallery")
        if examples:
            files = sorted(EXAMPLES_DIR.glob("*.png"))
            if files:
                gr.Examples([[str(f), "auto", True, False] for f in files],
                            inputs=[photo, scratches, faces, hr], visible_columns=[0, 1],
                            label="Examples (public-domain images, artificially aged)")

        # A file that cannot be read is reported (check_photo raises) and then removed from the form.
        photo.change(check_photo, inputs=photo, outputs=photo_notice, api_visibility="private").failure(
            lambda: None, outputs=photo, api_visibility="private"
        )
        photo.change(fill_editor, inputs=[photo, scratches], outputs=editor, api_visibility="private")
        photo.change(forget, api_visibility="private", queue=False)
        scratches.change(show_editor, inputs=scratches, outputs=paint_group, api_visibility="private").then(
            fill_editor, inputs=[photo, scratches], outputs=editor, api_visibility="private"
        )
        colorize.change(
            lambda choice: (gr.update(visible=choice != "none"), gr.update(visible=choice == "auto"),
                            gr.update(visible=choice == "reference"), gr.update(visible=choice == "points")),
            inputs=colorize, outputs=[colour_options, colorize_model, reference_group, points_group],
            api_visibility="private", queue=False,
        ).then(lambda photo, choice, text: points_image(photo, text) if choice == "points" else gr.skip(),
               inputs=[photo, colorize, hints], outputs=points_img, api_visibility="private")
        photo.change(new_points_photo, inputs=[photo, colorize], outputs=[points_img, hints], api_visibility="private")
        points_img.select(add_point, inputs=[photo, hints, point_colour], outputs=[points_img, hints],
                          api_visibility="private", concurrency_id="points", concurrency_limit=4)
        undo_point.click(remove_last_point, inputs=[photo, hints], outputs=[points_img, hints],
                         api_visibility="private", concurrency_id="points")
        clear_points.click(lambda photo: (points_image(photo, "[]"), "[]"), inputs=photo, outputs=[points_img, hints],
                           api_visibility="private", concurrency_id="points")
        hints.blur(points_image, inputs=[photo, hints], outputs=points_img, api_visibility="private")
        reference.change(check_reference, inputs=reference, api_visibility="private").failure(
            lambda: None, outputs=reference, api_visibility="private"
        )
        detect_btn.click(detect_into_editor, inputs=[photo, scratch_threshold], outputs=editor, api_visibility="private",
                         concurrency_id="restore", concurrency_limit=1)
        restore_job = restore_btn.click(
            restore,
            inputs=[photo, scratches, editor, faces, hr, strength, face_strength, scratch_threshold, mask_grow,
                    colorize, colorize_model, color_strength, existing_color, reference, hints],
            outputs=[slider, download, summary, mask_img, faces_gallery],
            api_name=API_NAME,
            concurrency_id="restore",
            concurrency_limit=1,
        )
        restore_job.success(lambda: gr.update(visible=True), outputs=download, api_visibility="private")
        for control in (strength, face_strength, color_strength):
            control.release(readjust, inputs=[strength, face_strength, color_strength],
                            outputs=[slider, download, summary],
                            api_visibility="private", concurrency_id="adjust", concurrency_limit=4)
        cancel_btn.click(cancel_job, api_visibility="private", cancels=[restore_job], queue=False)
    demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=1)
    return demo


def launch(demo: gr.Blocks, *, host: str | None = "127.0.0.1", port: int | None = 7860, **kwargs: Any) -> Any:
    """Start the server with the page's look and limits (``host``/``port`` None: Gradio's env defaults).

    The server process keeps freed layer memory during a job and gives it back after each photo
    (``oldphoto.memory.keep_freed_memory_for_reuse``): a third less time per restoration on the CPU.
    """
    from oldphoto.memory import keep_freed_memory_for_reuse

    keep_freed_memory_for_reuse(trim_after_jobs=True)
    options: dict[str, Any] = dict(
        server_name=host,
        server_port=port,
        theme=gr.themes.Soft(),
        css=CSS,
        ssr_mode=False,
        max_file_size="50mb",
        allowed_paths=[str(EXAMPLES_DIR)],
        show_error=False,
    )
    options.update(kwargs)
    return demo.launch(**options)
