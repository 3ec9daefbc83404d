#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters > Enhance > "Restore Old Photo..." (oldphoto, Wan et al. CVPR 2020).

GIMP's Python has no torch, so this file only moves pixels: it reads the active layer as 8-bit sRGB,
sends it to an oldphoto worker (the bridge client ``oldphoto_bridge/``, shared with the Krita
plug-in and installed next to this file together with
the worker's config, see ``oldphoto gimp install``), and puts the answer into a new layer
"Restored" above the original (optionally with a layer mask from the damage mask), and/or the
damage mask into a channel "Scratch mask", all in one undo group. The original layer is never written.

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
    try:
        if run_mode == Gimp.RunMode.INTERACTIVE and not _dialog(procedure, config):
            return _return(procedure, Gimp.PDBStatusType.CANCEL)
        restore_layer(image, drawables, config)
    except PluginError as exc:
        return _return(procedure, Gimp.PDBStatusType.CALLING_ERROR, str(exc))
    except bridge.WorkerCancelled:
        return _return(procedure, Gimp.PDBStatusType.CANCEL)
    except bridge.OldPhotoError as exc:  # worker missing, weights missing, out of memory, ...
        return _return(procedure, Gimp.PDBStatusType.EXECUTION_ERROR, f"{LABEL}: {exc}")
    except Exception as exc:  # a bug: still a message, never a traceback dialog
        return _return(procedure, Gimp.PDBStatusType.EXECUTION_ERROR,
                       f"{LABEL} failed unexpectedly ({type(exc).__name__}: {exc}). Please report this.")
    finally:
        Gimp.progress_end()
    return _return(procedure, Gimp.PDBStatusType.SUCCESS)


def _dialog(procedure, config) -> bool:
    """The options dialog (the pattern of GIMP 3's own Python plug-ins, e.g. foggify.py). GIMP saves
    the config after a successful interactive run and loads it for the next one and for Repeat."""
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi

    GimpUi.init(PROCEDURE)
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config, title=f"{LABEL}…")
    dialog.fill(None)
    ok = dialog.run()
    dialog.destroy()
    return bool(ok)


def restore_layer(image, drawables, config) -> None:
    if len(drawables) != 1:
        raise PluginError(f"{LABEL} works on one layer at a time; select exactly one layer.")
    src = drawables[0]
    if not src.is_layer():
        raise PluginError(f"{LABEL} works on a layer; select a layer (not a channel or a layer mask).")
    options = restore_options(config)
    scratches = options.scratches
    output = config.get_property("output")
    output = output if output in OUTPUTS else "layer"
    want_channel = bool(config.get_property("mask-channel")) or output == "detect-only"
    if scratches == "none" and output != "detect-only" and (output == "layer-mask" or want_channel):
        what = ("'New layer with a layer mask from the damage mask'" if output == "layer-mask"
                else "'Add the damage mask as a channel'")
        raise PluginError(f"{what} needs a damage mask: set Scratches to 'Detect automatically' or "
                          "'Use selection as damage mask'.")

    here = os.path.dirname(os.path.abspath(__file__))
    worker_config = bridge.WorkerConfig.load(os.path.join(here, bridge.CONFIG_NAME))  # fail before any work
    w, h = src.get_width(), src.get_height()
    _, ox, oy = src.get_offsets()
    rect = Gegl.Rectangle.new(0, 0, w, h)
    mask = _selection_mask(image, (ox, oy), (w, h)) if scratches == "mask" and output != "detect-only" else None

    Gimp.progress_init(f"{LABEL}: reading the layer")
    rgba = src.get_buffer().get(rect, 1.0, pixels.READ_RGBA, Gegl.AbyssPolicy.CLAMP)
    rgb = pixels.rgba_to_rgb(rgba, w, h)

    def status(message: str) -> None:
        Gimp.progress_set_text(f"{LABEL}: {message}")

    def progress(fraction: float, message: str) -> None:
        Gimp.progress_update(0.05 + 0.9 * max(0.0, min(1.0, fraction)))
        if message:
            status(message)

    status("connecting to the oldphoto worker")
    out_rgb = used_mask = None
    with bridge.WorkerClient.connect(worker_config, status=status) as client:
        if output == "detect-only":
            used_mask = client.detect(rgb, w, h, options, progress=progress)
        else:
            out_rgb, info = client.restore(rgb, w, h, options, mask=mask,
                                           want_mask=want_channel or output == "layer-mask", progress=progress)
            used_mask = info.get("mask_pixels")
    status("writing the result")
    image.undo_group_start()  # layer, layer mask and channel: one step in Edit > Undo
    try:
        if out_rgb is not None:
            dst = _write_result(image, src, out_rgb, rect)
            if output == "layer-mask" and used_mask is not None:
                _add_layer_mask(dst, used_mask, rect)
        if want_channel and used_mask is not None:
            _add_channel(image, used_mask, (ox, oy), (w, h))
    finally:
        image.undo_group_end()
    Gimp.progress_update(1.0)
    Gimp.displays_flush()


def restore_options(config) -> bridge.RestoreOptions:
    """The dialog's controls as the bridge's options: every field comes from the procedure argument
    of the same name (``_`` written ``-``), so a control added to the protocol cannot be forgotten."""
    values = {name: config.get_property(name.replace("_", "-")) for name in bridge.RestoreOptions.names()}
    values["scratches"] = SCRATCHES.get(values["scratches"], "none")
    return bridge.RestoreOptions.from_values(values)


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


def _write_result(image, src, rgb: bytes, rect):
    """New layer "Restored" above ``src`` (returned): same size, offsets and alpha, in the image's precision.

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
    dst = Gimp.Layer.new(image, "Restored", w, h, layer_type, 100.0, Gimp.LayerMode.NORMAL)
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
        return [PROCEDURE]

    def do_create_procedure(self, name):
        Gegl.init(None)
        p = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
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
        return p


if __name__ == "__main__":
    Gimp.main(RestoreOldPhoto.__gtype__, sys.argv)
