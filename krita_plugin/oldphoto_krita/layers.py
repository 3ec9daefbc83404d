"""Reading the user's layer and writing the result, on Krita's Python API (``Document``, ``Node``).

Why apart from the GUI code: this is the part that decides which pixels the networks see and where
the result goes, and it must be testable both in a real Krita (``kritarunner``) and against a small
fake of the API. The user's layer is only ever read: every write goes to new nodes.

Colour: the networks take 8-bit sRGB. A layer in another colour space (16-bit or float, linear
light, grey, CMYK, Lab) is converted by Krita's own colour engine on a clone of the document (the
user's document is not touched); the result layer is written as 8-bit sRGB, converted back by Krita
into the layer's colour space, and given the original's alpha bytes at their full depth.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import pixels

RESULT_NAME = "Restored"
MASK_LAYER_NAME = "Scratch mask"
POINTS_LAYER_NAMES = ("Colour points", "Color points")
"""A transparent paint layer of this name holds the colour points (as in the GIMP plug-in): each painted
dot becomes a point at its centre with its mean colour (the worker's ``oldphoto.stages.points_layer``)."""
LABEL = "Restore Old Photo"


class PluginError(Exception):
    """A failure whose message is for the user (shown in a message box)."""


@dataclass
class Source:
    """What the worker gets: the rectangle of the layer to restore as 8-bit sRGB, and its mask."""

    node: object
    rect: tuple[int, int, int, int]
    """``(x, y, width, height)`` in canvas pixels."""
    rgb: bytes
    alpha: bytes
    """8-bit alpha of the rectangle (what the result gets when the layer is 8-bit sRGB)."""
    mask: bytes | None
    """The selection as a damage mask (0 / 255 per pixel of ``rect``), when asked for."""


def paint_layer(doc) -> object:
    """The active node, checked to be a paint layer we can restore; PluginError says why not."""
    if doc is None:
        raise PluginError(f"{LABEL} needs an open document: open a photo first.")
    node = doc.activeNode()
    if node is None:
        raise PluginError(f"{LABEL} works on a paint layer; select one in the Layers docker.")
    return check_layer(node)


def check_layer(node) -> object:
    """``node`` if it is a paint layer in a colour space we can read; PluginError says why not."""
    kind = node.type()
    if kind != "paintlayer":
        what = kind.replace("layer", " layer").replace("mask", " mask").strip()
        raise PluginError(f"{LABEL} works on a paint layer, and '{node.name()}' is a {what}. Select a paint "
                          "layer (or convert this one: right-click > Convert > to Paint Layer).")
    model, depth = node.colorModel(), node.colorDepth()
    if model not in pixels.MODELS or depth not in pixels.DEPTH_BYTES:
        raise PluginError(f"{LABEL} works on RGB and greyscale layers; '{node.name()}' is {model}/{depth}. "
                          "Convert it first with Image > Convert Image Color Space (RGB/Alpha).")
    return node


def check_colour_fits(doc, node) -> None:
    """PluginError when colour cannot show: the result layer takes the layer's colour space and the
    canvas shows the image's, so a greyscale layer or image would silently turn the colour grey again
    (GIMP's plug-in converts the image to RGB; here the user does, undoably, in Krita)."""
    if node.colorModel() != "RGBA" or doc.colorModel() != "RGBA":
        what = f"the layer '{node.name()}'" if node.colorModel() != "RGBA" else "the image"
        raise PluginError(f"Colour needs RGB, and {what} is greyscale: convert it first with Image > Convert "
                          "Image Color Space (RGB/Alpha), or set Colour to 'No colour'.")


def region(doc, node, selection, use_selection_as_mask: bool) -> tuple[int, int, int, int]:
    """The layer's pixels on the canvas; with a selection that is not the damage mask, only its bounds."""
    b = node.bounds()
    layer_rect = (b.x(), b.y(), b.width(), b.height())
    if layer_rect[2] <= 0 or layer_rect[3] <= 0:
        raise PluginError(f"The layer '{node.name()}' is empty; select the layer that holds the photo.")
    rect = pixels.intersect(layer_rect, (0, 0, doc.width(), doc.height()))
    if rect is None:
        raise PluginError(f"The layer '{node.name()}' lies outside the canvas; move it onto the canvas.")
    if selection is not None and not use_selection_as_mask:
        sel = (selection.x(), selection.y(), selection.width(), selection.height())
        rect = pixels.intersect(rect, sel)
        if rect is None:
            raise PluginError(f"The selection does not cover any part of the layer '{node.name()}'; "
                              "select part of it, or Select > Deselect to restore the whole layer.")
    return rect


def read_source(doc, node, use_selection_as_mask: bool) -> Source:
    """The pixels and damage mask to send; PluginError for what the user must change first."""
    selection = doc.selection()
    if selection is not None and (selection.width() <= 0 or selection.height() <= 0):
        selection = None
    if use_selection_as_mask and selection is None:
        raise PluginError("'Use selection as damage mask' needs a selection: select the scratches first "
                          "(for example with the Freehand Selection tool or a painted Global Selection Mask).")
    x, y, w, h = rect = region(doc, node, selection, use_selection_as_mask)
    mask = None
    if use_selection_as_mask:
        mask = pixels.binary_mask(bytes(selection.pixelData(x, y, w, h)))
        if pixels.mask_is_empty(mask):
            raise PluginError("The selection does not cover any part of the layer; select the damaged areas "
                              "of this layer and run again.")
    bgra = _read_srgb8(doc, node, rect)
    return Source(node=node, rect=rect, rgb=pixels.bgra_to_rgb(bgra, w, h), alpha=pixels.alpha_u8(bgra), mask=mask)


def find_points_layer(doc) -> object | None:
    """The layer named "Colour points" (or "Color points"), top-level layers first, then inside groups."""
    queue = list(doc.rootNode().childNodes())
    while queue:
        node = queue.pop(0)
        if node.name() in POINTS_LAYER_NAMES:
            return node
        queue.extend(node.childNodes())
    return None


def read_points_layer(doc, source: Source) -> bytes:
    """The "Colour points" layer over the source's rectangle as 8-bit sRGB ``R G B A`` (what the
    worker reads its dots from); PluginError when it is missing, is the photo's layer, or has no dot there."""
    layer = find_points_layer(doc)
    if layer is None:
        raise PluginError("'With colour points' needs a transparent paint layer named 'Colour points' on which "
                          "you paint a small dot of each known colour where it belongs.")
    if layer.uniqueId() == source.node.uniqueId():
        raise PluginError("'With colour points' colours the photo's layer: select the photo's layer, not the "
                          f"'{layer.name()}' layer.")
    if layer.type() != "paintlayer" or layer.colorModel() not in pixels.MODELS \
            or layer.colorDepth() not in pixels.DEPTH_BYTES:
        raise PluginError(f"The '{layer.name()}' layer must be an RGB or greyscale paint layer with dots painted "
                          "on it.")
    bgra = _read_srgb8(doc, layer, source.rect)
    if pixels.mask_is_empty(pixels.binary_mask(pixels.alpha_u8(bgra))):
        raise PluginError(f"The '{layer.name()}' layer has no painted dot over the photo: paint small opaque dots "
                          "of the known colours on it, over the photo's layer.")
    return pixels.bgra_to_rgba(bgra)


def read_reference_document(ref) -> tuple[bytes, int, int]:
    """Another open document's whole image (its projection: what Krita shows) as 8-bit sRGB ``R G B``
    and its size; a document in another colour space is converted by Krita on a clone (16-bit and
    float through 32-bit float, as :func:`_hop_through_float` explains)."""
    w, h = ref.width(), ref.height()
    model, depth, profile = ref.colorModel(), ref.colorDepth(), ref.colorProfile()
    if model not in pixels.MODELS or depth not in pixels.DEPTH_BYTES:
        raise PluginError(f"The reference document is {model}/{depth}; use an RGB or greyscale one (Image > "
                          "Convert Image Color Space).")
    if pixels.is_network_format(model, depth, profile):
        bgra = bytes(ref.pixelData(0, 0, w, h))
    else:
        copy = ref.clone()
        try:
            _hop_through_float(copy)
            copy.setColorSpace("RGBA", "U8", pixels.SRGB_PROFILE)
            copy.waitForDone()
            copy.refreshProjection()
            copy.waitForDone()
            bgra = bytes(copy.pixelData(0, 0, w, h))
        finally:
            copy.close()
    if w <= 0 or h <= 0 or len(bgra) != w * h * 4:
        raise PluginError("The reference document could not be read; save it as a file and choose the file.")
    return pixels.bgra_to_rgb(bgra, w, h), w, h


def _read_srgb8(doc, node, rect) -> bytes:
    """The rectangle as 8-bit sRGB BGRA: directly, or from a clone converted by Krita's colour engine."""
    x, y, w, h = rect
    if pixels.is_network_format(node.colorModel(), node.colorDepth(), node.colorProfile()):
        return bytes(node.pixelData(x, y, w, h))
    path = _node_path(node)
    copy = doc.clone()
    try:
        twin = copy.rootNode()
        for i in path:
            twin = twin.childNodes()[i]
        _hop_through_float(twin)
        twin.setColorSpace("RGBA", "U8", pixels.SRGB_PROFILE)
        return bytes(twin.pixelData(x, y, w, h))
    finally:
        copy.close()


def _hop_through_float(node) -> None:
    """Convert ``node`` (a layer, or a whole document: same calls) to 32-bit float in its own model and
    profile, before a conversion to 8-bit sRGB.

    Why: Krita 5.1 converting 16-bit linear grey straight to or from 8-bit loses up to 10 levels in
    the shadows (measured: 4 -> 2); through float of the same profile the round trip is exact, and
    changing only the depth within one profile is lossless.
    """
    if node.colorDepth() != "F32":
        node.setColorSpace(node.colorModel(), "F32", node.colorProfile())


def _node_path(node) -> list[int]:
    """Child indices from the root to ``node`` (the same node in a clone of the document)."""
    path = []
    while True:
        parent = node.parentNode()
        if parent is None:
            break
        ident = node.uniqueId()
        path.append(next(i for i, n in enumerate(parent.childNodes()) if n.uniqueId() == ident))
        node = parent
    return path[::-1]


def write_result(doc, source: Source, rgb: bytes, mask: bytes | None = None, *, repairs_only: bool = False) -> object:
    """New paint layer "Restored" right above the source layer, in its colour space and with its alpha.

    ``repairs_only``: the layer shows only the pixels of the damage mask (GIMP's "layer mask from the
    damage mask"; Krita 5's Python API cannot fill a transparency mask).
    """
    node = source.node
    x, y, w, h = source.rect
    layer = doc.createNode(RESULT_NAME, "paintlayer")
    node.parentNode().addChildNode(layer, node)
    model, depth, profile = node.colorModel(), node.colorDepth(), node.colorProfile()
    layer.setColorSpace("RGBA", "U8", pixels.SRGB_PROFILE)  # a new layer has the image's, not the source's
    layer.setPixelData(pixels.rgb_to_bgra(rgb, source.alpha, w, h), x, y, w, h)
    channels, size = pixels.pixel_size(model, depth)
    if not pixels.is_network_format(model, depth, profile):
        if depth != "F32":
            layer.setColorSpace(model, "F32", profile)
        layer.setColorSpace(model, depth, profile)
        color = bytes(layer.pixelData(x, y, w, h))
        layer.setPixelData(pixels.splice_alpha(color, bytes(node.pixelData(x, y, w, h)), channels, size), x, y, w, h)
    if repairs_only and mask is not None:
        data = bytes(layer.pixelData(x, y, w, h))
        layer.setPixelData(pixels.keep_alpha_where(data, mask, channels, size), x, y, w, h)
    return layer


def write_mask_layer(doc, source: Source, mask: bytes, above) -> object:
    """The damage mask as the paint layer "Scratch mask": opaque white where damaged, transparent
    elsewhere (Select > Select Opaque turns it back into a selection for another run)."""
    x, y, w, h = source.rect
    layer = doc.createNode(MASK_LAYER_NAME, "paintlayer")
    above.parentNode().addChildNode(layer, above)
    layer.setColorSpace("RGBA", "U8", pixels.SRGB_PROFILE)
    layer.setPixelData(pixels.rgb_to_bgra(b"\xff" * (3 * w * h), mask, w, h), x, y, w, h)
    return layer
