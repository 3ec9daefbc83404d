#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters > Enhance > "Restore Old Photo..." (oldphoto, Wan et al. CVPR 2020).

GIMP's Python has no torch, so this file only moves pixels: it reads the active layer as 8-bit sRGB,
sends it to an oldphoto worker (``oldphoto_bridge.py``, installed next to this file together with
the worker's config, see ``oldphoto gimp install``), and puts the answer into a new layer
"Restored" above the original, in one undo group. The original layer is never written.

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
    "The computation runs in the oldphoto worker (the Python environment where oldphoto is "
    "installed); run `oldphoto gimp install` there to (re)connect this plug-in."
)
SCRATCHES = {"none": "none", "detect": "auto", "selection": "mask"}
"""Dialog choice -> bridge ``scratches`` value."""


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
    scratches = SCRATCHES.get(config.get_property("scratches"), "none")
    faces = bool(config.get_property("faces"))
    hr = bool(config.get_property("hr"))

    here = os.path.dirname(os.path.abspath(__file__))
    worker_config = bridge.WorkerConfig.load(os.path.join(here, bridge.CONFIG_NAME))  # fail before any work
    w, h = src.get_width(), src.get_height()
    _, ox, oy = src.get_offsets()
    rect = Gegl.Rectangle.new(0, 0, w, h)
    mask = _selection_mask(image, (ox, oy), (w, h)) if scratches == "mask" else None

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
    with bridge.WorkerClient.connect(worker_config, status=status) as client:
        out_rgb, _info = client.restore(rgb, w, h, scratches=scratches, mask=mask, hr=hr, faces=faces,
                                        progress=progress)
    status("writing the Restored layer")
    _write_result(image, src, out_rgb, rect)
    Gimp.progress_update(1.0)
    Gimp.displays_flush()


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


def _write_result(image, src, rgb: bytes, rect) -> None:
    """New layer "Restored" above ``src``: same size, offsets and alpha, in the image's precision.

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
    image.undo_group_start()
    try:
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
    finally:
        image.undo_group_end()


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
        return p


if __name__ == "__main__":
    Gimp.main(RestoreOldPhoto.__gtype__, sys.argv)
