"""Run inside ``kritarunner`` (Krita's Python API, no GUI): the plug-in's layer code on real documents.

``kritarunner -s krita_cases -f main OUT.json`` with the installed plug-in's pykrita folder and this
folder on PYTHONPATH. Every case runs in the one Krita start (about 1.5 s) and reports what it saw as
JSON; the pytest side (test_krita_real.py) asserts on it. Nothing here decides pass or fail.
"""

from __future__ import annotations

import json
import sys
import traceback

W, H = 24, 16
"""Canvas size; the photo layer is smaller and offset."""
LAYER = (5, 3, 12, 8)
SPACES = [("RGBA", "U8"), ("RGBA", "U16"), ("RGBA", "F16"), ("RGBA", "F32"), ("GRAYA", "U8"), ("GRAYA", "U16"),
          ("CMYKA", "U8"), ("LABA", "U16")]


def pattern(w: int, h: int, grey: bool) -> tuple[bytes, bytes]:
    """An 8-bit RGB pattern and alpha (never 0, so the layer's bounds are its rectangle)."""
    rgb = bytearray()
    alpha = bytearray()
    for y in range(h):
        for x in range(w):
            r, g, b = (x * 21 + y * 7) % 256, (y * 29 + 40) % 256, (x * y * 5 + 90) % 256
            if grey:
                r = g = b
            rgb += bytes((r, g, b))
            alpha.append(40 + (x * 17 + y * 11) % 216)
    return bytes(rgb), bytes(alpha)


def fill_srgb8(layer, rect, rgb: bytes, alpha: bytes, model: str, depth: str, profile: str) -> None:
    from oldphoto_krita import pixels

    x, y, w, h = rect
    layer.setColorSpace("RGBA", "U8", pixels.SRGB_PROFILE)
    layer.setPixelData(pixels.rgb_to_bgra(rgb, alpha, w, h), x, y, w, h)
    layer.setColorSpace(model, depth, profile)


def read_srgb8(doc, node, rect) -> bytes:
    from oldphoto_krita import layers

    return layers._read_srgb8(doc, node, rect)


def max_diff(a: bytes, b: bytes) -> int:
    return max((abs(p - q) for p, q in zip(a, b)), default=0) if len(a) == len(b) else 999


def space_case(app, model: str, depth: str) -> dict:
    from oldphoto_krita import layers, pixels

    doc = app.createDocument(W, H, f"case-{model}-{depth}", model, depth, "", 72.0)
    profile = doc.colorProfile()
    photo = doc.createNode("photo", "paintlayer")
    doc.rootNode().addChildNode(photo, None)
    grey = model == "GRAYA"
    x, y, w, h = LAYER
    rgb, alpha = pattern(LAYER[2], LAYER[3], grey)
    fill_srgb8(photo, LAYER, rgb, alpha, model, depth, profile)
    before = bytes(photo.pixelData(0, 0, W, H))
    try:
        node = layers.check_layer(photo)
    except layers.PluginError as exc:
        doc.close()
        return {"model": model, "depth": depth, "refused": str(exc)}
    src = layers.read_source(doc, node, False)
    out = {"model": model, "depth": depth, "profile": profile, "rect": list(src.rect),
           "rgb_diff": max_diff(src.rgb, rgb), "alpha_diff": max_diff(src.alpha, alpha)}
    # the worker's stand-in: inverted colours (a grey image stays grey)
    result = bytes(255 - v for v in src.rgb)
    mask = bytes(255 if (i % 5) == 0 else 0 for i in range(LAYER[2] * LAYER[3]))
    new = layers.write_result(doc, src, result)
    names = [n.name() for n in doc.rootNode().childNodes()]
    out["order"] = names
    out["new_space"] = [new.colorModel(), new.colorDepth(), new.colorProfile()]
    b = new.bounds()
    out["new_bounds"] = [b.x(), b.y(), b.width(), b.height()]
    out["result_diff"] = max_diff(pixels.bgra_to_rgb(read_srgb8(doc, new, LAYER), w, h), result)
    channels, size = pixels.pixel_size(model, depth)
    n_new, n_src = bytes(new.pixelData(x, y, w, h)), bytes(photo.pixelData(x, y, w, h))
    bpp = channels * size
    a0 = (channels - 1) * size
    out["alpha_bytes_equal"] = all(n_new[k::bpp] == n_src[k::bpp] for k in range(a0, bpp))
    out["original_unchanged"] = bytes(photo.pixelData(0, 0, W, H)) == before
    only = layers.write_result(doc, src, result, mask, repairs_only=True)
    n_only = bytes(only.pixelData(x, y, w, h))
    # alpha kept (bytes equal to the original's) where the mask is set, zero elsewhere
    out["repairs_only_alpha"] = all(
        n_only[i * bpp + a0:(i + 1) * bpp] == (n_src[i * bpp + a0:(i + 1) * bpp] if mask[i] else bytes(bpp - a0))
        for i in range(w * h))
    doc.removeNode(only) if hasattr(doc, "removeNode") else only.remove()
    layers.write_mask_layer(doc, src, mask, new)
    out["order_with_mask"] = [n.name() for n in doc.rootNode().childNodes()]
    scratch = doc.rootNode().childNodes()[-1]
    sm = bytes(scratch.pixelData(x, y, w, h))
    out["mask_layer_alpha_equal"] = sm[3::4] == mask and set(sm[0::4]) <= {255}
    doc.close()
    return out


def selection_cases(app) -> dict:
    from krita import Selection

    from oldphoto_krita import layers

    doc = app.createDocument(W, H, "selection", "RGBA", "U8", "", 72.0)
    photo = doc.createNode("photo", "paintlayer")
    doc.rootNode().addChildNode(photo, None)
    rgb, alpha = pattern(LAYER[2], LAYER[3], False)
    fill_srgb8(photo, LAYER, rgb, alpha, "RGBA", "U8", doc.colorProfile())
    doc.setActiveNode(photo)
    out: dict = {}
    try:
        layers.read_source(doc, photo, True)
    except layers.PluginError as exc:
        out["no_selection"] = str(exc)
    sel = Selection()
    sel.select(0, 0, 8, 6, 255)  # overlaps the layer's top-left corner (5..8, 3..6)
    doc.setSelection(sel)
    src = layers.read_source(doc, photo, False)
    out["bounds_rect"] = list(src.rect)
    src = layers.read_source(doc, photo, True)
    out["mask_rect"] = list(src.rect)
    out["mask_rows"] = [src.mask[r * LAYER[2]:(r + 1) * LAYER[2]].hex() for r in range(LAYER[3])]
    far = Selection()
    far.select(20, 13, 3, 2, 255)  # off the layer
    doc.setSelection(far)
    for use_mask in (False, True):
        try:
            layers.read_source(doc, photo, use_mask)
        except layers.PluginError as exc:
            out[f"off_layer_{use_mask}"] = str(exc)
    doc.close()
    return out


def bad_layer_cases(app) -> dict:
    from oldphoto_krita import layers

    doc = app.createDocument(W, H, "bad", "RGBA", "U8", "", 72.0)
    out = {}
    group = doc.createGroupLayer("A group")
    doc.rootNode().addChildNode(group, None)
    for name, node in (("group", group),):
        try:
            layers.check_layer(node)
        except layers.PluginError as exc:
            out[name] = str(exc)
    empty = doc.createNode("Empty", "paintlayer")
    doc.rootNode().addChildNode(empty, None)
    try:
        layers.read_source(doc, empty, False)
    except layers.PluginError as exc:
        out["empty"] = str(exc)
    doc.close()
    return out


def guided_cases(app) -> dict:
    """Colour guidance: another open document as the reference photo (8-bit, 16-bit, 16-bit grey: its
    projection as 8-bit sRGB) and a "Colour points" layer read over the photo's area (8- and 16-bit)."""
    from oldphoto_krita import layers, pixels

    out: dict = {"reference": {}, "points": {}}
    for model, depth in (("RGBA", "U8"), ("RGBA", "U16"), ("GRAYA", "U16")):
        ref = app.createDocument(W, H, f"ref-{model}-{depth}", model, depth, "", 72.0)
        node = ref.createNode("colour", "paintlayer")
        ref.rootNode().addChildNode(node, None)
        rgb, _alpha = pattern(W, H, model == "GRAYA")
        fill_srgb8(node, (0, 0, W, H), rgb, b"\xff" * (W * H), model, depth, ref.colorProfile())
        ref.refreshProjection()
        ref.waitForDone()
        got, w, h = layers.read_reference_document(ref)
        out["reference"][f"{model}/{depth}"] = {"size": [w, h], "rgb_diff": max_diff(got, rgb)}
        ref.close()
    for depth in ("U8", "U16"):
        doc = app.createDocument(W, H, f"points-{depth}", "RGBA", depth, "", 72.0)
        photo = doc.createNode("photo", "paintlayer")
        doc.rootNode().addChildNode(photo, None)
        rgb, alpha = pattern(LAYER[2], LAYER[3], True)
        fill_srgb8(photo, LAYER, rgb, alpha, "RGBA", depth, doc.colorProfile())
        dots = doc.createNode("Colour points", "paintlayer")
        doc.rootNode().addChildNode(dots, photo)
        dot = pixels.rgb_to_bgra(bytes((200, 30, 60)) * 4, b"\xff" * 4, 2, 2)
        far = pixels.rgb_to_bgra(bytes((0, 0, 255)) * 4, b"\xff" * 4, 2, 2)
        dots.setColorSpace("RGBA", "U8", pixels.SRGB_PROFILE)
        dots.setPixelData(dot, 7, 4, 2, 2)  # inside the photo: (2, 1) in its rectangle
        dots.setPixelData(far, 0, 0, 2, 2)  # outside it
        dots.setColorSpace("RGBA", depth, doc.colorProfile())
        others = [d for d in app.documents() if d != doc]
        case = {"others_exclude_doc": all(d != doc for d in others) and len(others) == len(app.documents()) - 1}
        src = layers.read_source(doc, photo, False)
        rgba = layers.read_points_layer(doc, src)
        case["size"] = len(rgba)
        case["painted"] = [i for i in range(LAYER[2] * LAYER[3]) if rgba[4 * i + 3]]
        case["dot"] = list(rgba[4 * (1 * LAYER[2] + 2):][:4])
        try:
            layers.read_points_layer(doc, layers.read_source(doc, dots, False))
        except layers.PluginError as exc:
            case["selected"] = str(exc)
        out["points"][depth] = case
        doc.close()
    return out


def main(args) -> None:
    from krita import Krita

    app = Krita.instance()
    report: dict = {"spaces": {}, "errors": []}
    for model, depth in SPACES:
        try:
            report["spaces"][f"{model}/{depth}"] = space_case(app, model, depth)
        except Exception:
            report["errors"].append(f"{model}/{depth}: {traceback.format_exc()}")
    for name, case in (("selection", selection_cases), ("bad", bad_layer_cases), ("guided", guided_cases)):
        try:
            report[name] = case(app)
        except Exception:
            report["errors"].append(f"{name}: {traceback.format_exc()}")
    with open(args[0], "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    sys.stdout.flush()
