#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters > Enhance > "Restore Old Photo..." (oldphoto, Wan et al. CVPR 2020) and
"Colourise Old Photo..." (DDColor, Kang et al. ICCV 2023).

GIMP's Python has no torch, so this file only moves pixels: it reads the active layer as 8-bit sRGB,
sends it to an oldphoto worker (the bridge client ``oldphoto_bridge/``, shared with the Krita
plug-in and installed next to this file together with
the worker's config, see ``oldphoto gimp install``), and puts the answer into a new layer
"Restored" above the original (optionally with a layer mask from the damage mask), and/or the
damage mask into a channel "Scratch mask", all in one undo group. The original layer is never written.
Colour (an option of Restore, or the Colourise filter alone) comes back from the worker the same way;
with "Put the colour in a 'Color' mode layer" it becomes a layer "Colour" in GIMP's LCh Color mode
above the layer whose lightness it keeps, so the user can paint the colour away. A grayscale image
is converted to RGB first (in the same undo group; the layer's values are kept), since a grayscale
image cannot hold colour.

Install with ``oldphoto gimp install``: GIMP only loads ``plug-ins/<name>/<name>.py`` when the file
is executable, and the bridge and pixel helpers must sit beside it.
"""

from __future__ import annotations

import os
import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oldphoto_bridge as bridge  # noqa: E402
import oldphoto_pixels as pixels  # noqa: E402

PROCEDURE = "plug-in-restore-old-photo"
LABEL = "Restore Old Photo"
HELP = (
    "Restores a damaged old photo with the networks of 'Bringing Old Photos Back to Life' "
    "(Wan et al., CVPR 2020): global restoration of grain, blur and fading, optional scratch "
    "repair and face enhancement. The result goes into a new layer 'Restored' above the active "
    "layer; the original layer is kept unchanged.\n\n"
    "Scratches: 'None' for photos without scratches or tears; 'Detect' finds scratches "
    "automatically; 'Use selection as damage mask' repairs exactly the selected areas (select the "
    "scratches first). HR uses the high-resolution scratch model and 512 px faces (slower).\n\n"
    "Strength: how much of the restoration is kept (lower it when the result looks too smooth). Face "
    "strength: how much of each enhanced face is blended in (lower it when a face looks wrong). "
    "Scratch threshold: lower finds more damage, higher spares thin lines that are not scratches. "
    "Mask grow: widens the damage mask by that many pixels when scratch edges stay visible.\n\n"
    "Output: 'New layer', or 'New layer with a layer mask from the damage mask' (paint the mask black "
    "to take a repair back), or 'Detect scratches only' (no layer: the detected mask becomes the "
    "channel 'Scratch mask'). 'Add the damage mask as a channel' also saves the mask used as the "
    "channel 'Scratch mask': edit it, then Select > From Channel and run again with 'Use selection "
    "as damage mask'.\n\n"
    "The computation runs in the oldphoto worker (the Python environment where oldphoto is "
    "installed); run `oldphoto gimp install` there to (re)connect this plug-in."
)
COLORIZE_PROCEDURE = "plug-in-colorize-old-photo"
COLORIZE_LABEL = "Colourise Old Photo"
COLOR_HELP = (
    "Colour comes from DDColor (Kang et al., ICCV 2023): the layer's lightness is kept and its colour "
    "predicted. Models: 'ModelScope' natural colours (default), 'Paper' the published model, "
    "'Artistic' more vivid, 'Tiny' the fastest on a CPU. Colour strength: how much of the predicted "
    "colour is kept (0 = grey). A layer that already has colour is left alone unless 'If the layer "
    "has colour' is 'Replace the existing colour'. 'Put the colour in a Color mode layer' adds the "
    "colour as a layer 'Colour' in LCh Color mode above the layer whose lightness it keeps (the "
    "original, or 'Restored'): erase or mask it to take colour away. A grayscale image is converted to "
    "RGB first (Undo takes it back). 'From a reference photo' carries over the colours of a colour photo "
    "of the same or a similar scene (Deep Exemplar): choose it as 'Reference photo file', or open it in GIMP "
    "and choose it as 'Reference image'. 'With colour points': add a transparent layer named 'Colour "
    "points' and paint a small dot of each known colour where it belongs; each separate dot becomes one "
    "point at its centre with its average colour (SIGGRAPH17 user-guided colourisation)."
)
COLORIZE_HELP = (
    "Colourises a black-and-white photo without repairing it. The result goes into a new layer "
    "'Colourised' above the active layer; the original layer is kept unchanged.\n\n" + COLOR_HELP + "\n\n"
    "The computation runs in the oldphoto worker; run `oldphoto gimp install` there to (re)connect this plug-in."
)
HELP = HELP.replace("\n\nThe computation", f"\n\nColourise: also colourise the result. {COLOR_HELP}\n\nThe computation")
COLOR_LAYER_NAME = "Colour"
SCRATCHES = {"none": "none", "detect": "auto", "selection": "mask"}
"""Dialog choice -> bridge ``scratches`` value."""
CHANNEL_NAME = "Scratch mask"
OUTPUTS = ("layer", "layer-mask", "detect-only")


class PluginError(Exception):
    """A failure whose message is for the user (shown in GIMP's error console)."""


def _return(procedure, status, message: str | None = None):
    err = GLib.Error(message) if message else GLib.Error()
    return procedure.new_return_values(status, err)


def run(procedure, run_mode, image, drawables, config, data):
    """Every path ends in a PDB status with a message; no exception may escape into GIMP. GIMP shows
    the message of an error status itself (an error dialog in the UI, stderr in batch mode)."""
    colorize_only = procedure.get_name() == COLORIZE_PROCEDURE
    label = COLORIZE_LABEL if colorize_only else LABEL
    try:
        if run_mode == Gimp.RunMode.INTERACTIVE and not _dialog(procedure, config):
            return _return(procedure, Gimp.PDBStatusType.CANCEL)
        (colorize_layer if colorize_only else restore_layer)(image, drawables, config)
    except PluginError as exc:
        return _return(procedure, Gimp.PDBStatusType.CALLING_ERROR, str(exc))
    except bridge.WorkerCancelled:
        return _return(procedure, Gimp.PDBStatusType.CANCEL)
    except bridge.OldPhotoError as exc:  # worker missing, weights missing, out of memory, ...
        return _return(procedure, Gimp.PDBStatusType.EXECUTION_ERROR, f"{label}: {exc}")
    except Exception as exc:  # a bug: still a message, never a traceback dialog
        return _return(procedure, Gimp.PDBStatusType.EXECUTION_ERROR,
                       f"{label} failed unexpectedly ({type(exc).__name__}: {exc}). Please report this.")
    finally:
        Gimp.progress_end()
    return _return(procedure, Gimp.PDBStatusType.SUCCESS)


def _dialog(procedure, config) -> bool:
    """The options dialog (the pattern of GIMP 3's own Python plug-ins, e.g. foggify.py). GIMP saves
    the config after a successful interactive run and loads it for the next one and for Repeat."""
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi

    GimpUi.init(procedure.get_name())
    title = COLORIZE_LABEL if procedure.get_name() == COLORIZE_PROCEDURE else LABEL
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config, title=f"{title}…")
    dialog.fill(None)
    ok = dialog.run()
    dialog.destroy()
    return bool(ok)


def _source_layer(drawables, label: str):
    if len(drawables) != 1:
        raise PluginError(f"{label} works on one layer at a time; select exactly one layer.")
    src = drawables[0]
    if not src.is_layer():
        raise PluginError(f"{label} works on a layer; select a layer (not a channel or a layer mask).")
    return src


COLOR_FIELDS = ("colorize", "colorize_model", "color_strength", "existing_color")
"""The bridge options the Colourise filter has controls for."""

POINTS_LAYER_NAMES = ("Colour points", "Color points")
"""A transparent layer of this name holds the colour points: each painted dot becomes a point at its
centre with its mean colour (the worker's ``oldphoto.stages.points_layer``)."""


def restore_options(config, names=None) -> bridge.RestoreOptions:
    """The dialog's controls as the bridge's options: every field comes from the procedure argument
    of the same name (``_`` written ``-``), so a control added to the protocol cannot be forgotten.
    ``names``: only these fields (the Colourise filter has the colour controls only)."""
    names = bridge.RestoreOptions.names() if names is None else names
    values = {name: config.get_property(name.replace("_", "-")) for name in names}
    if "scratches" in values:
        values["scratches"] = SCRATCHES.get(values["scratches"], "none")
    return bridge.RestoreOptions.from_values(values)


def _read_layer(src):
    """The layer's pixels as 8-bit sRGB without alpha (what the worker takes), and its geometry."""
    w, h = src.get_width(), src.get_height()
    _, ox, oy = src.get_offsets()
    rect = Gegl.Rectangle.new(0, 0, w, h)
    rgba = src.get_buffer().get(rect, 1.0, pixels.READ_RGBA, Gegl.AbyssPolicy.CLAMP)
    return pixels.rgba_to_rgb(rgba, w, h), w, h, (ox, oy), rect


def _guidance(image, src, config, options, label: str) -> dict:
    """The reference photo (another open image's pixels, or a file's bytes for the worker to decode)
    and the "Colour points" layer (RGBA over ``src``'s area) that ``options.colorize`` needs, as
    ``WorkerClient`` keywords. GIMP only reads pixels here; the worker finds the points."""
    if options.colorize == "reference":
        ref_file = config.get_property("reference-file")
        ref_image = config.get_property("reference-image")
        if ref_file is not None and ref_file.get_path():
            try:
                with open(ref_file.get_path(), "rb") as f:
                    return {"reference": f.read()}
            except OSError as exc:
                raise PluginError(f"{label}: the reference file {ref_file.get_path()} cannot be read "
                                  f"({exc.strerror or exc}).") from None
        if ref_image is not None:
            layers = ref_image.get_selected_layers() or ref_image.get_layers()
            if not layers:
                raise PluginError(f"{label}: the reference image has no layer.")
            rgb, w, h, _offsets, _rect = _read_layer(layers[0])
            return {"reference": rgb, "reference_size": (w, h)}
        raise PluginError(f"{label}: 'From a reference photo' needs a reference: choose another open image "
                          "under 'Reference image' or a file under 'Reference photo file'.")
    if options.colorize == "points":
        layer = next((l for l in image.get_layers() if l.get_name() in POINTS_LAYER_NAMES), None)
        if layer is None:
            raise PluginError(f"{label}: 'With colour points' needs a transparent layer named 'Colour points' "
                              "on which you paint a dot of each colour where it belongs.")
        if layer == src:
            raise PluginError(f"{label}: select the photo's layer, not the 'Colour points' layer.")
        w, h = src.get_width(), src.get_height()
        _, sx, sy = src.get_offsets()
        _, px, py = layer.get_offsets()
        rect = Gegl.Rectangle.new(sx - px, sy - py, w, h)  # the photo's area, in the points layer's pixels
        rgba = layer.get_buffer().get(rect, 1.0, pixels.READ_RGBA, Gegl.AbyssPolicy.NONE)
        return {"points_layer": bytes(rgba)}
    return {}


def _reporters(label: str):
    def status(message: str) -> None:
        Gimp.progress_set_text(f"{label}: {message}")

    def progress(fraction: float, message: str) -> None:
        Gimp.progress_update(0.05 + 0.9 * max(0.0, min(1.0, fraction)))
        if message:
            status(message)

    return status, progress


def _worker_config():
    here = os.path.dirname(os.path.abspath(__file__))
    return bridge.WorkerConfig.load(os.path.join(here, bridge.CONFIG_NAME))  # fail before any work


def _ensure_rgb(image) -> None:
    """A grayscale image cannot hold colour: convert it to RGB (undoable; the layers' values are kept)."""
    if image.get_base_type() == Gimp.ImageBaseType.GRAY:
        image.convert_rgb()


def _write_color(image, src, out_rgb: bytes, base_rgb: bytes | None, rect, color_layer: bool, name: str):
    """The colour result: a normal layer ``name``, or with ``color_layer`` a layer "Colour" in LCh Color
    mode over ``src`` (or over a new layer ``name`` holding ``base_rgb``, the uncoloured result).
    Returns the new layer directly above ``src``."""
    _ensure_rgb(image)
    if not color_layer:
        return _write_result(image, src, out_rgb, rect, name)
    under = _write_result(image, src, base_rgb, rect, name) if base_rgb is not None else src
    colour = _write_result(image, under, out_rgb, rect, COLOR_LAYER_NAME)
    colour.set_mode(Gimp.LayerMode.LCH_COLOR)
    return colour if under is src else under


def colorize_layer(image, drawables, config) -> None:
    """Colourise Old Photo: the active layer's colour predicted, into a new layer above it."""
    src = _source_layer(drawables, COLORIZE_LABEL)
    options = restore_options(config, COLOR_FIELDS)
    color_layer = bool(config.get_property("color-layer"))
    worker_config = _worker_config()
    Gimp.progress_init(f"{COLORIZE_LABEL}: reading the layer")
    rgb, w, h, _offsets, rect = _read_layer(src)
    guidance = _guidance(image, src, config, options, COLORIZE_LABEL)
    status, progress = _reporters(COLORIZE_LABEL)
    status("connecting to the oldphoto worker")
    with bridge.WorkerClient.connect(worker_config, status=status) as client:
        out_rgb, _info = client.colorize(rgb, w, h, options, progress=progress, **guidance)
    status("writing the result")
    image.undo_group_start()
    try:
        _write_color(image, src, out_rgb, None, rect, color_layer, "Colourised")
    finally:
        image.undo_group_end()
    Gimp.progress_update(1.0)
    Gimp.displays_flush()


def restore_layer(image, drawables, config) -> None:
    src = _source_layer(drawables, LABEL)
    options = restore_options(config)
    scratches = options.scratches
    output = config.get_property("output")
    output = output if output in OUTPUTS else "layer"
    want_channel = bool(config.get_property("mask-channel")) or output == "detect-only"
    color_layer = options.colorize != "none" and bool(config.get_property("color-layer"))
    if scratches == "none" and output != "detect-only" and (output == "layer-mask" or want_channel):
        what = ("'New layer with a layer mask from the damage mask'" if output == "layer-mask"
                else "'Add the damage mask as a channel'")
        raise PluginError(f"{what} needs a damage mask: set Scratches to 'Detect automatically' or "
                          "'Use selection as damage mask'.")

    worker_config = _worker_config()
    Gimp.progress_init(f"{LABEL}: reading the layer")
    rgb, w, h, (ox, oy), rect = _read_layer(src)
    mask = _selection_mask(image, (ox, oy), (w, h)) if scratches == "mask" and output != "detect-only" else None
    guidance = _guidance(image, src, config, options, LABEL) if output != "detect-only" else {}
    status, progress = _reporters(LABEL)
    status("connecting to the oldphoto worker")
    out_rgb = used_mask = None
    info: dict = {}
    with bridge.WorkerClient.connect(worker_config, status=status) as client:
        if output == "detect-only":
            used_mask = client.detect(rgb, w, h, options, progress=progress)
        else:
            out_rgb, info = client.restore(rgb, w, h, options, mask=mask, want_base=color_layer,
                                           want_mask=want_channel or output == "layer-mask", progress=progress,
                                           **guidance)
            used_mask = info.get("mask_pixels")
    status("writing the result")
    image.undo_group_start()  # layer, layer mask and channel: one step in Edit > Undo
    try:
        if out_rgb is not None and info.get("colorized"):
            dst = _write_color(image, src, out_rgb, info.get("base_pixels"), rect, color_layer, "Restored")
            if output == "layer-mask" and used_mask is not None:
                _add_layer_mask(dst, used_mask, rect)
        elif out_rgb is not None:
            dst = _write_result(image, src, out_rgb, rect)
            if output == "layer-mask" and used_mask is not None:
                _add_layer_mask(dst, used_mask, rect)
        if want_channel and used_mask is not None:
            _add_channel(image, used_mask, (ox, oy), (w, h))
    finally:
        image.undo_group_end()
    if info.get("color_kept"):
        Gimp.message(f"{LABEL}: the layer already has colour, so the result was not colourised; set 'If the "
                     "layer has colour' to 'Replace the existing colour' to colourise it.")
    Gimp.progress_update(1.0)
    Gimp.displays_flush()


def _add_layer_mask(layer, mask: bytes, rect) -> None:
    """A layer mask from the damage mask: white (the repair shows) where damage was repaired."""
    lm = layer.create_mask(Gimp.AddMaskType.BLACK)
    layer.add_mask(lm)
    buf = lm.get_buffer()
    buf.set(rect, pixels.SELECTION, mask)
    buf.flush()
    lm.update(0, 0, rect.width, rect.height)


def _add_channel(image, mask: bytes, offsets: tuple[int, int], size: tuple[int, int]) -> None:
    """The damage mask as the image-sized channel "Scratch mask" (white = damage), on top of the channels."""
    iw, ih = image.get_width(), image.get_height()
    color = Gegl.Color.new("red")
    channel = Gimp.Channel.new(image, CHANNEL_NAME, iw, ih, 50.0, color)
    image.insert_channel(channel, None, 0)
    buf = channel.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, iw, ih), pixels.SELECTION, pixels.image_mask_from_layer_mask(mask, (iw, ih),
                                                                                                 offsets, size))
    buf.flush()
    channel.update(0, 0, iw, ih)


def _selection_mask(image, offsets: tuple[int, int], size: tuple[int, int]) -> bytes:
    if Gimp.Selection.is_empty(image):
        raise PluginError("'Use selection as damage mask' needs a selection: select the scratches first "
                          "(for example with the Free Select or Paintbrush in Quick Mask), then run again.")
    iw, ih = image.get_width(), image.get_height()
    sel = image.get_selection().get_buffer().get(Gegl.Rectangle.new(0, 0, iw, ih), 1.0, pixels.SELECTION,
                                                 Gegl.AbyssPolicy.NONE)
    mask = pixels.layer_mask_from_selection(sel, (iw, ih), offsets, size)
    if pixels.mask_is_empty(mask):
        raise PluginError("The selection does not cover any part of the active layer; select the damaged "
                          "areas of this layer and run again.")
    return mask


def _write_result(image, src, rgb: bytes, rect, name: str = "Restored"):
    """New layer ``name`` above ``src`` (returned): same size, offsets and alpha, in the image's precision.

    The restored color is written as 8-bit sRGB (babl converts it to the image's precision and
    linear/perceptual encoding), then read back in the native component type so that the alpha
    bytes of the original can be copied in unchanged.
    """
    w, h = src.get_width(), src.get_height()
    has_alpha = src.has_alpha()
    base = image.get_base_type()
    if base == Gimp.ImageBaseType.GRAY:
        layer_type = Gimp.ImageType.GRAYA_IMAGE if has_alpha else Gimp.ImageType.GRAY_IMAGE
    else:
        layer_type = Gimp.ImageType.RGBA_IMAGE if has_alpha else Gimp.ImageType.RGB_IMAGE
    dst = Gimp.Layer.new(image, name, w, h, layer_type, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(dst, src.get_parent(), image.get_item_position(src))
    _, ox, oy = src.get_offsets()
    dst.set_offsets(ox, oy)
    buf = dst.get_buffer()
    if has_alpha:
        buf.set(rect, pixels.READ_RGBA, pixels.rgb_to_opaque_rgba(rgb, w, h))
        native = pixels.native_rgba_format(image.get_precision().value_nick)
        _, bpc = pixels.component_type(image.get_precision().value_nick)
        color = buf.get(rect, 1.0, native, Gegl.AbyssPolicy.CLAMP)
        alpha = src.get_buffer().get(rect, 1.0, native, Gegl.AbyssPolicy.CLAMP)
        buf.set(rect, native, pixels.splice_alpha(color, alpha, bpc))
    else:
        buf.set(rect, pixels.NETWORK_RGB, rgb)
    buf.flush()
    dst.update(0, 0, w, h)
    return dst


class RestoreOldPhoto(Gimp.PlugIn):
    def do_set_i18n(self, name):
        return False

    def do_query_procedures(self):
        return [PROCEDURE, COLORIZE_PROCEDURE]

    def do_create_procedure(self, name):
        Gegl.init(None)
        p = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        if name == COLORIZE_PROCEDURE:
            p.set_image_types("RGB*, GRAY*")
            p.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
            p.set_menu_label(f"{COLORIZE_LABEL}…")
            p.add_menu_path("<Image>/Filters/Enhance")
            p.set_documentation("Colourise a black-and-white photo into a new layer (oldphoto, DDColor)",
                                COLORIZE_HELP, name)
            p.set_attribution("oldphoto contributors", "oldphoto contributors (MIT)", "2025")
            method = Gimp.Choice.new()
            method.add("auto", 0, "Automatic (DDColor)", "Predict the colour with DDColor")
            _add_guided_choices(method, 1)
            p.add_choice_argument("colorize", "Colo_urise", "Where the colour comes from", method, "auto",
                                  GObject.ParamFlags.READWRITE)
            _add_color_arguments(p)
            return p
        p.set_image_types("RGB*, GRAY*")
        p.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        p.set_menu_label(f"{LABEL}…")
        p.add_menu_path("<Image>/Filters/Enhance")
        p.set_documentation("Restore a damaged old photo into a new layer (oldphoto)", HELP, name)
        p.set_attribution("oldphoto contributors", "oldphoto contributors (MIT)", "2025")
        choice = Gimp.Choice.new()
        choice.add("none", 0, "None", "The photo has no scratches or tears")
        choice.add("detect", 1, "Detect automatically", "Find scratches with the detection network")
        choice.add("selection", 2, "Use selection as damage mask", "Repair exactly the selected areas")
        p.add_choice_argument("scratches", "Scr_atches", "How to find scratches and tears", choice, "none",
                              GObject.ParamFlags.READWRITE)
        p.add_boolean_argument("faces", "Enhance _faces", "Detect faces and enhance them", True,
                               GObject.ParamFlags.READWRITE)
        p.add_boolean_argument("hr", "_HR (high resolution)",
                               "High-resolution scratch model and 512 px faces (slower)", False,
                               GObject.ParamFlags.READWRITE)
        # the controls of Restorer.restore; the defaults give the official result
        p.add_double_argument("strength", "Stren_gth", "How much of the restoration is kept (0 = the original)",
                              0.0, 1.0, 1.0, GObject.ParamFlags.READWRITE)
        p.add_double_argument("face-strength", "Face stre_ngth", "How much of each enhanced face is blended in",
                              0.0, 1.0, 1.0, GObject.ParamFlags.READWRITE)
        p.add_double_argument("scratch-threshold", "Scratch _threshold",
                              "Detection probability from which a pixel is a scratch (lower finds more)",
                              0.0, 1.0, bridge.SCRATCH_THRESHOLD, GObject.ParamFlags.READWRITE)
        p.add_int_argument("mask-grow", "Mas_k grow (pixels)", "Widen the damage mask by this many pixels",
                           0, 64, 0, GObject.ParamFlags.READWRITE)
        out = Gimp.Choice.new()
        out.add("layer", 0, "New layer", "The result in a new layer 'Restored'")
        out.add("layer-mask", 1, "New layer with a layer mask from the damage mask",
                "Only the repaired damage shows; paint the mask black to take a repair back")
        out.add("detect-only", 2, "Detect scratches only",
                "No layer: the detected damage mask becomes the channel 'Scratch mask'")
        p.add_choice_argument("output", "Out_put", "What the filter adds to the image", out, "layer",
                              GObject.ParamFlags.READWRITE)
        p.add_boolean_argument("mask-channel", "Add the _damage mask as a channel",
                               "Save the damage mask used as the channel 'Scratch mask' (edit it, then Select > "
                               "From Channel and run with 'Use selection as damage mask')", False,
                               GObject.ParamFlags.READWRITE)
        colorize = Gimp.Choice.new()
        colorize.add("none", 0, "No colour", "Keep the photo's tones")
        colorize.add("auto", 1, "Automatic (DDColor)", "Colourise the result with DDColor (the last stage)")
        _add_guided_choices(colorize, 2)
        p.add_choice_argument("colorize", "Colo_urise", "Colour the result", colorize, "none",
                              GObject.ParamFlags.READWRITE)
        _add_color_arguments(p)
        return p


def _add_guided_choices(choice, first: int) -> None:
    choice.add("reference", first, "From a reference photo",
               "Carry over the colours of a colour photo of the same or a similar scene (Deep Exemplar)")
    choice.add("points", first + 1, "With colour points",
               "The colours of the dots painted on a layer named 'Colour points' (SIGGRAPH17)")


def _add_color_arguments(p) -> None:
    """The colour controls, shared by both procedures (``Restorer``'s colour keywords, same defaults)."""
    models = Gimp.Choice.new()
    models.add("modelscope", 0, "ModelScope (natural colours)", "DDColor trained on ImageNet (the default)")
    models.add("paper", 1, "Paper", "The published DDColor model")
    models.add("artistic", 2, "Artistic (more vivid)", "DDColor trained on more, more colourful photos")
    models.add("tiny", 3, "Tiny (fastest)", "The small DDColor: fastest on a CPU")
    p.add_choice_argument("colorize-model", "Colour _model", "Which DDColor model predicts the colour", models,
                          "modelscope", GObject.ParamFlags.READWRITE)
    p.add_double_argument("color-strength", "Colour str_ength", "How much of the predicted colour is kept (0 = grey)",
                          0.0, 1.0, 1.0, GObject.ParamFlags.READWRITE)
    existing = Gimp.Choice.new()
    existing.add("grey-only", 0, "Only colourise a grey layer", "A layer that already has colour is left alone")
    existing.add("replace", 1, "Replace the existing colour", "Predict new colour from the layer's lightness")
    p.add_choice_argument("existing-color", "_If the layer has colour", "What to do with a layer that has colour",
                          existing, "grey-only", GObject.ParamFlags.READWRITE)
    p.add_image_argument("reference-image", "Refe_rence image",
                         "For 'From a reference photo': another open image in colour (its selected layer)", True,
                         GObject.ParamFlags.READWRITE)
    p.add_file_argument("reference-file", "Reference photo file (_browse)",
                        "For 'From a reference photo': a colour photo file (used instead of the reference image)",
                        Gimp.FileChooserAction.OPEN, True, None, GObject.ParamFlags.READWRITE)
    p.add_boolean_argument("color-layer", "Put the colour in a Color mode la_yer",
                           "Add the colour as a layer 'Colour' in LCh Color mode over the layer whose lightness it "
                           "keeps, so that it can be painted away", False, GObject.ParamFlags.READWRITE)


if __name__ == "__main__":
    Gimp.main(RestoreOldPhoto.__gtype__, sys.argv)
