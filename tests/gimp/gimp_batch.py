"""Runs INSIDE a real GIMP 3 (``gimp-console --batch-interpreter=python-fu-eval``), driven by
tests/gimp/test_gimp_real.py. It calls the installed "Restore Old Photo" procedure the way a script
would and writes what it saw to ``$OLDPHOTO_T/out/`` (``report.json`` plus raw pixel dumps), so the
host test, which has numpy and torch, can check the pixels against ``Restorer.restore``.

``OLDPHOTO_CASES=main``: four images (8-bit with an offset layer on a larger canvas, 16-bit linear
with a selection as damage mask, 32-bit float, grayscale), a 3x500 layer that is too small, the controls
(detected scratches with a layer mask and the "Scratch mask" channel; "Detect scratches only"), then two
runs with last values. Before those two: colour on a grey photo: Restore with "Colourise" (a colour
"Restored" layer), Restore with the colour in a Color-mode layer ("Restored" + "Colour"), the
"Colourise Old Photo" filter into a layer and into a Color-mode layer over the original, the filter on
a grayscale image (converted to RGB), and the filter refusing a colour photo with "only if grey".
``OLDPHOTO_CASES=fail``: one run that must fail (the worker cannot be found).
``OLDPHOTO_CASES=ui``: one INTERACTIVE run (GUI GIMP on Xvfb, gimp_ui.sh presses OK in the dialog).
Only GIMP's Python (stdlib + gi) is available here.
"""

import json
import os

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

T = os.environ["OLDPHOTO_T"]
OUT = os.path.join(T, "out")
os.makedirs(OUT, exist_ok=True)
PROC = "plug-in-restore-old-photo"
COLORIZE = "plug-in-colorize-old-photo"
report = {"cases": {}}


def save_report():
    with open(os.path.join(OUT, "report.json"), "w") as f:
        json.dump(report, f, indent=1)


def dump(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def pixels(drawable, fmt):
    rect = Gegl.Rectangle.new(0, 0, drawable.get_width(), drawable.get_height())
    return drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.CLAMP)


def native(img):
    kind = img.get_precision().value_nick.split("-")[0]
    return "R'G'B'A " + kind


def call(img, layer, run_mode=Gimp.RunMode.NONINTERACTIVE, props=None, proc_name=PROC, **options):
    proc = pdb.lookup_procedure(proc_name)
    cfg = proc.create_config()
    cfg.set_property("run-mode", run_mode)
    cfg.set_property("image", img)
    cfg.set_core_object_array("drawables", [layer])
    for key, value in {**options, **(props or {})}.items():
        cfg.set_property(key, value)
        assert cfg.get_property(key) == value, f"option {key}={value!r} was not accepted"
    res = proc.run(cfg)
    status = res.index(0)
    message = res.index(1) if res.length() > 1 else None
    return status.value_nick, message


def run_case(name, img, layer, run_mode=Gimp.RunMode.NONINTERACTIVE, props=None, proc_name=PROC, **options):
    before_native = pixels(layer, native(img))
    dump(name + "-input.rgba", pixels(layer, "R'G'B'A u8"))
    n_before = len(img.get_layers())
    c_before = len(img.get_channels())
    old_ids = {lay.get_id() for lay in img.get_layers()}
    status, message = call(img, layer, run_mode, props, proc_name, **options)
    layers = img.get_layers()
    channels = img.get_channels()
    case = {
        "status": status,
        "message": message,
        "precision": img.get_precision().value_nick,
        "layers": [lay.get_name() for lay in layers],
        "layers_added": len(layers) - n_before,
        "original_size": [layer.get_width(), layer.get_height()],
        "original_offsets": list(layer.get_offsets()[1:]),
        "original_unchanged": pixels(layer, native(img)) == before_native,
        "channels": [c.get_name() for c in channels],
        "channels_added": len(channels) - c_before,
        "canvas_size": [img.get_width(), img.get_height()],
        "base_type": img.get_base_type().value_nick,
        # every layer added, top first, with its blend mode; its pixels go to <case>-layer-<name>.rgba
        "new_layers": [{"name": lay.get_name(), "mode": lay.get_mode().value_nick,
                        "position": img.get_item_position(lay)}
                       for lay in layers if lay.get_id() not in old_ids],
        "original_position": img.get_item_position(layer),
    }
    for lay in layers:
        if lay.get_id() not in old_ids:
            dump(f"{name}-layer-{lay.get_name()}.rgba", pixels(lay, "R'G'B'A u8"))
    for channel in channels:
        if channel.get_name() == "Scratch mask":
            dump(name + "-channel.y", pixels(channel, "Y u8"))
    if status == "success" and len(layers) > n_before:
        restored = layers[img.get_item_position(layer) - 1]
        case.update(
            restored_name=restored.get_name(),
            restored_above=img.get_item_position(restored) == img.get_item_position(layer) - 1,
            restored_size=[restored.get_width(), restored.get_height()],
            restored_offsets=list(restored.get_offsets()[1:]),
            restored_has_alpha=restored.has_alpha(),
            alpha_exact=pixels(restored, native(img))[3::4] == before_native[3::4]
            if native(img).endswith("u8")
            else alpha_bytes(pixels(restored, native(img)), img) == alpha_bytes(before_native, img),
        )
        dump(name + "-restored.rgba", pixels(restored, "R'G'B'A u8"))
        mask = restored.get_mask()
        case["restored_has_mask"] = mask is not None
        if mask is not None:
            dump(name + "-layermask.y", pixels(mask, "Y u8"))
    report["cases"][name] = case
    save_report()
    return case


def alpha_bytes(data, img):
    size = {"u8": 1, "u16": 2, "u32": 4, "half": 2, "float": 4, "double": 8}[native(img).split()[1]]
    bpp = 4 * size
    return b"".join(data[k::bpp] for k in range(3 * size, bpp))


pdb = Gimp.get_pdb()
assert pdb.procedure_exists(PROC), "the plug-in is not registered (install layout or shebang?)"
proc_info = pdb.lookup_procedure(PROC)
report["menu_paths"] = list(proc_info.get_menu_paths())
report["menu_label"] = proc_info.get_menu_label()
report["arguments"] = [a.get_name() for a in proc_info.get_arguments()]
if pdb.procedure_exists(COLORIZE):
    colorize_info = pdb.lookup_procedure(COLORIZE)
    report["colorize_procedure"] = {"menu_paths": list(colorize_info.get_menu_paths()),
                                    "menu_label": colorize_info.get_menu_label(),
                                    "arguments": [a.get_name() for a in colorize_info.get_arguments()]}
mode = os.environ.get("OLDPHOTO_CASES", "main")

img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(os.path.join(T, "in.png")))
layer = img.get_layers()[0]

if mode == "main":
    # 8-bit: a layer smaller than the canvas, at an offset
    w, h = layer.get_width(), layer.get_height()
    img.resize(w + 40, h + 30, 0, 0)
    layer.set_offsets(17, 9)
    img16, img32, imgl, imgg = img.duplicate(), img.duplicate(), img.duplicate(), img.duplicate()
    imgm, imgd, imgv = img.duplicate(), img.duplicate(), img.duplicate()
    run_case("u8", img, layer, scratches="none", faces=False, hr=False)

    # 16-bit linear light, the selection (in image coordinates) as the damage mask
    img16.convert_precision(Gimp.Precision.U16_LINEAR)
    img16.select_rectangle(Gimp.ChannelOps.REPLACE, 17 + 10, 9 + 20, 30, 12)
    dump("u16-selection.y", pixels(img16.get_selection(), "Y u8"))
    report["selection_size"] = [img16.get_width(), img16.get_height()]
    run_case("u16", img16, img16.get_layers()[0], scratches="selection", faces=False, hr=False)

    # 32-bit float
    img32.convert_precision(Gimp.Precision.FLOAT_NON_LINEAR)
    run_case("f32", img32, img32.get_layers()[0], scratches="none", faces=False, hr=False)

    # grayscale (the networks get R=G=B; the result is stored as gray)
    imgg.convert_grayscale()
    run_case("gray", imgg, imgg.get_layers()[0], scratches="none", faces=False, hr=False)
    report["cases"]["gray"]["base_type"] = imgg.get_base_type().value_nick

    # a layer too small to restore: the plug-in must pass on oldphoto's message and add nothing
    timg = Gimp.Image.new(3, 500, Gimp.ImageBaseType.RGB)
    tlayer = Gimp.Layer.new(timg, "tiny", 3, 500, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    timg.insert_layer(tlayer, None, 0)
    run_case("tiny", timg, tlayer, scratches="none", faces=False, hr=False)

    # the controls: detected scratches at half strength, the mask grown by 1 px, the result with a
    # layer mask from the damage mask, and that mask also saved as the "Scratch mask" channel
    run_case("masked", imgm, imgm.get_layers()[0], scratches="detect", faces=False, hr=False,
             props={"strength": 0.5, "mask-grow": 1, "output": "layer-mask", "mask-channel": True})
    # "Detect scratches only": a channel and no layer
    run_case("detect", imgd, imgd.get_layers()[0], scratches="none", faces=False, hr=False,
             props={"output": "detect-only", "scratch-threshold": 0.3})

    # colour, on a grey photo (grey.png: the photo's lightness, same alpha ramp), with the tiny model
    def grey_image():
        g = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(os.path.join(T, "grey.png")))
        return g, g.get_layers()[0]

    tiny = {"colorize-model": "tiny"}
    run_case("colour", *grey_image(), scratches="none", faces=False, hr=False, props={**tiny, "colorize": "auto"})
    run_case("colour_layers", *grey_image(), scratches="none", faces=False, hr=False,
             props={**tiny, "colorize": "auto", "color-layer": True})
    run_case("colourise", *grey_image(), proc_name=COLORIZE, props=tiny)
    run_case("colourise_layer", *grey_image(), proc_name=COLORIZE, props={**tiny, "color-layer": True})
    gimg, glayer = grey_image()
    gimg.convert_grayscale()
    run_case("colourise_gray", gimg, glayer, proc_name=COLORIZE, props=tiny)
    # a colour photo with "only colourise a grey layer" (the default): refused, nothing added
    cimg = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(os.path.join(T, "colour.png")))
    run_case("colourise_colour", cimg, cimg.get_layers()[0], proc_name=COLORIZE, props=tiny)

    # colour points: a transparent layer "Colour points" with two painted 3x3 dots over the grey photo
    pimg, player = grey_image()
    pw, ph = player.get_width(), player.get_height()
    dots = Gimp.Layer.new(pimg, "Colour points", pw, ph, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    pimg.insert_layer(dots, None, 0)
    dots.fill(Gimp.FillType.TRANSPARENT)
    for (dx, dy), rgb in (((pw // 5, ph // 5), (200, 40, 30)), ((3 * pw // 5, 3 * ph // 5), (30, 60, 210))):
        dots.get_buffer().set(Gegl.Rectangle.new(dx - 1, dy - 1, 3, 3), "R'G'B'A u8", bytes([*rgb, 255]) * 9)
    dots.get_buffer().flush()
    dump("points-dots.rgba", pixels(dots, "R'G'B'A u8"))
    run_case("points", pimg, player, proc_name=COLORIZE, props={"colorize": "points"})
    # Restore coloured after another open image (the colour photo), the colour in a Color mode layer
    rimg, rlayer = grey_image()
    refimg = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(os.path.join(T, "in.png")))
    run_case("reference", rimg, rlayer, scratches="none", faces=False, hr=False,
             props={"colorize": "reference", "reference-image": refimg, "color-layer": True})
    # "With colour points" without a "Colour points" layer: refused with what to do, nothing added
    run_case("points_missing", *grey_image(), proc_name=COLORIZE, props={"colorize": "points"})

    # every new value comes back from the saved settings (what the dialog's OK saves)
    remembered = os.path.join(Gimp.directory(), "plug-in-settings", f"GimpProcedureConfigRun-{PROC}.last")
    os.makedirs(os.path.dirname(remembered), exist_ok=True)
    with open(remembered, "w") as f:
        f.write('# settings\n\n(scratches "none")\n(faces no)\n(hr no)\n(strength 0.25)\n(face-strength 0.5)\n'
                '(scratch-threshold 0.3)\n(mask-grow 2)\n(output "layer")\n(mask-channel no)\n\n# end of settings\n')
    run_case("remembered", imgv, imgv.get_layers()[0], run_mode=Gimp.RunMode.WITH_LAST_VALS)

    # Last values: GIMP saves them only after an interactive run (the dialog's OK), which needs a
    # display. Save a config the way that OK does, then run WITH_LAST_VALS: the plug-in must get
    # scratches=selection back and, without a selection, refuse with its message.
    # The plug-in process saves them under its config's GType name (measured in GIMP 3.0.4).
    settings = os.path.join(Gimp.directory(), "plug-in-settings", f"GimpProcedureConfigRun-{PROC}.last")
    os.makedirs(os.path.dirname(settings), exist_ok=True)
    with open(settings, "w") as f:  # GimpConfig's serialization, as gimp_procedure_config_save_last writes it
        f.write('# settings\n\n(scratches "selection")\n(faces no)\n(hr no)\n\n# end of settings\n')
    status, message = call(imgl, imgl.get_layers()[0], run_mode=Gimp.RunMode.WITH_LAST_VALS)
    report["cases"]["last_values"] = {"status": status, "message": message, "file": settings}
    save_report()
elif mode == "ui":
    run_case("ui", img, layer, run_mode=Gimp.RunMode.INTERACTIVE)
else:
    run_case("fail", img, layer, scratches="none", faces=False, hr=False)
    case = report["cases"]["fail"]
    if case["status"] != "success":
        raise RuntimeError("plug-in failed: {}: {}".format(case["status"], case["message"]))
