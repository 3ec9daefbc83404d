"""The Krita plug-in's logic outside Krita, against a small fake of Krita's document API, and
``oldphoto krita install | uninstall | path | zip``. The real Krita runs in tests/krita/.

Jobs talk to a real bridge worker (the serving code of ``oldphoto worker`` on a UNIX socket in a
thread) whose Restorer is a stand-in that inverts the picture: these tests are about the plug-in
moving pixels, options, progress, cancel and messages, not about the networks.
"""

from __future__ import annotations

import ast
import json
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oldphoto import bridge
from oldphoto.bridge import worker as bridge_worker
from oldphoto.cli import krita as krita_cli
from oldphoto.cli import main
from oldphoto.errors import Cancelled, InputError
from oldphoto.pipeline import _check_guidance
from oldphoto_krita import controller, layers, pixels
from oldphoto_krita.job import Job

PLUGIN = Path(__file__).resolve().parents[1] / "krita_plugin" / "oldphoto_krita"

# -- a fake of Krita's API (Document, Node, Selection): 8-bit sRGB paint layers on a canvas ------


class Rect:
    def __init__(self, x, y, w, h):
        self._r = (x, y, w, h)

    def x(self):
        return self._r[0]

    def y(self):
        return self._r[1]

    def width(self):
        return self._r[2]

    def height(self):
        return self._r[3]


class FakeNode:
    """A node whose pixels live in a dict {(x, y): BGRA bytes}; only written pixels exist (Krita's
    layers are unbounded, ``bounds()`` is the extent of the content)."""

    def __init__(self, name, kind="paintlayer", space=("RGBA", "U8", pixels.SRGB_PROFILE)):
        self._name, self._type, self.space = name, kind, list(space)
        self.px: dict[tuple[int, int], bytes] = {}
        self.children: list[FakeNode] = []
        self.parent: FakeNode | None = None
        self.writes = 0

    def name(self):
        return self._name

    def type(self):
        return self._type

    def colorModel(self):
        return self.space[0]

    def colorDepth(self):
        return self.space[1]

    def colorProfile(self):
        return self.space[2]

    def setColorSpace(self, model, depth, profile):
        assert (model, depth, profile) == ("RGBA", "U8", pixels.SRGB_PROFILE), "the fake is 8-bit sRGB only"
        self.space = [model, depth, profile]
        return True

    def parentNode(self):
        return self.parent

    def childNodes(self):
        return list(self.children)

    def addChildNode(self, child, above):
        child.parent = self
        self.children.insert(self.children.index(above) + 1 if above is not None else len(self.children), child)
        return True

    def uniqueId(self):
        return id(self)

    def bounds(self):
        if not self.px:
            return Rect(0, 0, 0, 0)
        xs = [p[0] for p in self.px]
        ys = [p[1] for p in self.px]
        return Rect(min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1)

    def pixelData(self, x, y, w, h):
        return b"".join(self.px.get((x + i, y + j), bytes(4)) for j in range(h) for i in range(w))

    def setPixelData(self, data, x, y, w, h):
        assert len(data) == w * h * 4
        self.writes += 1
        for j in range(h):
            for i in range(w):
                k = 4 * (j * w + i)
                self.px[(x + i, y + j)] = bytes(data[k:k + 4])
        return True


class FakeSelection:
    def __init__(self, x, y, w, h, value=255):
        self.rect = (x, y, w, h)
        self.value = value

    def x(self):
        return self.rect[0]

    def y(self):
        return self.rect[1]

    def width(self):
        return self.rect[2]

    def height(self):
        return self.rect[3]

    def pixelData(self, x, y, w, h):
        sx, sy, sw, sh = self.rect
        return bytes(self.value if sx <= x + i < sx + sw and sy <= y + j < sy + sh else 0
                     for j in range(h) for i in range(w))


class FakeDoc:
    def __init__(self, w=20, h=14):
        self.w, self.h = w, h
        self.root = FakeNode("root", "grouplayer")
        self.active: FakeNode | None = None
        self.sel: FakeSelection | None = None
        self.refreshed = 0

    def width(self):
        return self.w

    def height(self):
        return self.h

    def rootNode(self):
        return self.root

    def activeNode(self):
        return self.active

    def selection(self):
        return self.sel

    def createNode(self, name, kind):
        return FakeNode(name, kind)

    def refreshProjection(self):
        self.refreshed += 1

    def colorModel(self):
        return "RGBA"

    def colorDepth(self):
        return "U8"

    def colorProfile(self):
        return pixels.SRGB_PROFILE

    def pixelData(self, x, y, w, h):
        """The projection: each pixel of the topmost layer that has it (enough for opaque layers)."""
        out = []
        for j in range(h):
            for i in range(w):
                have = [n.px[(x + i, y + j)] for n in self.root.children if (x + i, y + j) in n.px]
                out.append(have[-1] if have else bytes(4))
        return b"".join(out)


def doc_with_photo(rect=(3, 2, 10, 8)) -> tuple[FakeDoc, FakeNode, bytes]:
    doc = FakeDoc()
    photo = FakeNode("photo")
    doc.root.addChildNode(photo, None)
    x, y, w, h = rect
    rng = np.random.default_rng(25)
    bgra = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    bgra[..., 3] = rng.integers(1, 256, (h, w))
    photo.setPixelData(bgra.tobytes(), x, y, w, h)
    doc.active = photo
    return doc, photo, bgra.tobytes()


def plan(**values) -> controller.Plan:
    return controller.make_plan(values)


def add_points_layer(doc, dots, name="Colour points") -> FakeNode:
    """A transparent layer above the photo with opaque 2x2 dots ``[(x, y, (r, g, b)), ...]`` (canvas pixels)."""
    layer = FakeNode(name)
    doc.root.addChildNode(layer, None)
    for x, y, (r, g, b) in dots:
        layer.setPixelData(bytes([b, g, r, 255]) * 4, x, y, 2, 2)
    return layer


def reference_doc(w=20, h=16) -> tuple[FakeDoc, np.ndarray]:
    """Another open document in colour, and its image as RGB."""
    ref = FakeDoc(w, h)
    node = FakeNode("Background")
    ref.root.addChildNode(node, None)
    rgb = np.random.default_rng(7).integers(0, 256, (h, w, 3), dtype=np.uint8)
    bgra = np.concatenate([rgb[..., ::-1], np.full((h, w, 1), 255, np.uint8)], axis=-1)
    node.setPixelData(bgra.tobytes(), 0, 0, w, h)
    return ref, rgb


# -- plan and options ---------------------------------------------------------------------------


def test_every_protocol_option_has_a_dialog_control():
    tree = ast.parse((PLUGIN / "dialog.py").read_text())
    controls = next(n.value for n in tree.body if isinstance(n, ast.AnnAssign) and n.target.id == "CONTROLS")
    assert {k.value for k in controls.keys} == set(bridge.RestoreOptions.names())


def test_plan_from_dialog_values():
    p = plan(scratches="auto", faces=False, hr=True, strength=0.5, face_strength=0.25, scratch_threshold=0.3,
             mask_grow=4.0, output="repairs-only", mask_layer=True, python="/py")
    assert p.options == bridge.RestoreOptions(scratches="auto", faces=False, hr=True, strength=0.5,
                                              face_strength=0.25, scratch_threshold=0.3, mask_grow=4)
    assert (p.output, p.mask_layer, p.python) == ("repairs-only", True, "/py")
    assert plan(output="detect-only").mask_layer, "detect only always adds the Scratch mask layer"


@pytest.mark.parametrize("values", [{"output": "repairs-only"}, {"mask_layer": True}])
def test_a_mask_output_needs_a_damage_mask(values):
    with pytest.raises(layers.PluginError, match="needs a damage mask: set Scratches"):
        plan(scratches="none", **values)


# -- reading the layer ----------------------------------------------------------------------------


def test_reads_the_layers_own_rectangle_as_rgb():
    doc, photo, bgra = doc_with_photo()
    src = controller.prepare(doc, plan())
    assert src.rect == (3, 2, 10, 8) and src.node is photo and src.mask is None
    want = np.frombuffer(bgra, np.uint8).reshape(8, 10, 4)
    assert src.rgb == want[..., [2, 1, 0]].tobytes() and src.alpha == want[..., 3].tobytes()


def test_a_selection_limits_the_area_unless_it_is_the_damage_mask():
    doc, _photo, _ = doc_with_photo()
    doc.sel = FakeSelection(0, 0, 6, 5)
    assert controller.prepare(doc, plan()).rect == (3, 2, 3, 3)
    src = controller.prepare(doc, plan(scratches="mask"))
    assert src.rect == (3, 2, 10, 8)
    mask = np.frombuffer(src.mask, np.uint8).reshape(8, 10)
    assert (mask[:3, :3] == 255).all() and mask.sum() == 9 * 255


def test_feathered_selection_is_damage_from_half_selected():
    doc, _photo, _ = doc_with_photo()
    doc.sel = FakeSelection(3, 2, 2, 2, value=127)
    with pytest.raises(layers.PluginError, match="does not cover any part"):
        controller.prepare(doc, plan(scratches="mask"))
    doc.sel.value = 128
    assert controller.prepare(doc, plan(scratches="mask")).mask.count(b"\xff") == 4


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: setattr(d, "active", None), "select one in the Layers docker"),
        (lambda d: setattr(d, "active", FakeNode("Text", "vectorlayer")), "'Text' is a vector layer"),
        (lambda d: setattr(d, "active", FakeNode("Fx", "filtermask")), "'Fx' is a filter mask"),
        (lambda d: setattr(d.active, "space", ["CMYKA", "U8", "x"]), "works on RGB and greyscale layers"),
        (lambda d: setattr(d.active, "px", {}), "is empty"),
        (lambda d: setattr(d, "sel", FakeSelection(15, 11, 3, 3)), "selection does not cover any part"),
    ],
)
def test_layers_that_cannot_be_restored_get_a_message(setup, message):
    doc, _photo, _ = doc_with_photo()
    setup(doc)
    with pytest.raises(layers.PluginError, match=message):
        controller.prepare(doc, plan())


def test_no_document():
    with pytest.raises(layers.PluginError, match="needs an open document"):
        layers.paint_layer(None)


def test_selection_as_mask_needs_a_selection():
    doc, _photo, _ = doc_with_photo()
    with pytest.raises(layers.PluginError, match="needs a selection"):
        controller.prepare(doc, plan(scratches="mask"))


# -- the worker's side: a real bridge worker with an inverting stand-in Restorer -------------------


class Inverter:
    """Stands in for Restorer: inverts, reports progress, honours cancel, fails on request."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.slow = threading.Event()

    def restore(self, rgb, *, scratches, mask, hr, faces, progress, cancel, **adjust):
        self.calls.append({"scratches": scratches, "mask": mask is not None, "hr": hr, "faces": faces, **adjust})
        if adjust.get("colorize", "none") != "none":  # the library's own reading of the guidance and its messages
            _check_guidance(adjust["colorize"], adjust.get("reference"), adjust.get("hints"))
        if adjust.get("strength") == 0.123:
            raise InputError("strength 0.123 is unlucky")
        for i in range(200 if self.slow.is_set() else 2):
            progress(i / 200, "Restoring (global)")
            if cancel.is_set():
                raise Cancelled()
            time.sleep(0.02 if self.slow.is_set() else 0)

        class Result:
            image = Image.fromarray(255 - np.asarray(rgb))
            mask = (np.asarray(rgb)[..., 0] > 128) if scratches == "auto" else None
            faces, notes, timings, mask_source = [], [], {}, scratches

        return Result()

    def detect_scratches(self, rgb, *, progress, **adjust):
        return np.asarray(rgb)[..., 0] > 128


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    inverter = Inverter()
    w = bridge_worker.Worker(inverter)
    sock = str(tmp_path_factory.mktemp("kw") / "w.sock")
    t = threading.Thread(target=bridge_worker.serve_socket, args=(w, sock), daemon=True)
    t.start()
    for _ in range(100):
        if Path(sock).exists():
            break
        time.sleep(0.05)
    config = bridge.WorkerConfig(python=sys.executable, transport="socket", socket=sock,
                                 install_command=controller.INSTALL_COMMAND)
    yield config, inverter
    w.stop.set()
    t.join(timeout=5)


def run_job(config, doc, p) -> tuple[Job, layers.Source]:
    src = controller.prepare(doc, p)
    job = controller.start_job(config, src, p)
    assert job.wait(30)
    return job, src


def test_a_job_restores_into_a_new_layer_above_and_leaves_the_original(worker):
    config, inverter = worker
    doc, photo, bgra = doc_with_photo()
    p = plan(scratches="auto", strength=0.5, faces=False, mask_layer=True)
    job, src = run_job(config, doc, p)
    assert job.error is None and not job.cancelled.is_set() and job.fraction > 0
    assert inverter.calls[-1] == {"scratches": "auto", "mask": False, "hr": False, "faces": False, "strength": 0.5,
                                  "face_strength": 1.0, "scratch_threshold": 0.4, "mask_grow": 0}
    writes = photo.writes
    added = controller.finish(doc, src, p, job)
    assert [n.name() for n in doc.root.children] == ["photo", "Restored", "Scratch mask"]
    assert added == doc.root.children[1:] and doc.refreshed == 1
    assert photo.writes == writes and photo.pixelData(3, 2, 10, 8) == bgra, "the original is never written"
    got = np.frombuffer(added[0].pixelData(3, 2, 10, 8), np.uint8).reshape(8, 10, 4)
    want = np.frombuffer(bgra, np.uint8).reshape(8, 10, 4)
    assert np.array_equal(got[..., :3], 255 - want[..., :3]) and np.array_equal(got[..., 3], want[..., 3])
    m = np.frombuffer(added[1].pixelData(3, 2, 10, 8), np.uint8).reshape(8, 10, 4)
    assert np.array_equal(m[..., 3] > 0, want[..., 2] > 128), "the Scratch mask layer holds the mask used"


def test_repairs_only_shows_just_the_damage(worker):
    config, _ = worker
    doc, _photo, bgra = doc_with_photo()
    doc.sel = FakeSelection(3, 2, 4, 1)
    p = plan(scratches="mask", output="repairs-only")
    job, src = run_job(config, doc, p)
    (layer,) = controller.finish(doc, src, p, job)
    alpha = np.frombuffer(layer.pixelData(3, 2, 10, 8), np.uint8).reshape(8, 10, 4)[..., 3]
    want = np.frombuffer(bgra, np.uint8).reshape(8, 10, 4)[..., 3]
    assert np.array_equal(alpha[0, :4], want[0, :4]) and alpha.sum() == want[0, :4].sum()


def test_detect_only_adds_just_the_mask(worker):
    config, _ = worker
    doc, _photo, _ = doc_with_photo()
    p = plan(output="detect-only")
    job, src = run_job(config, doc, p)
    assert job.result is None and job.result_mask is not None
    assert [n.name() for n in controller.finish(doc, src, p, job)] == ["Scratch mask"]


def test_the_workers_message_reaches_the_user(worker):
    config, _ = worker
    doc, _photo, _ = doc_with_photo()
    job, _src = run_job(config, doc, plan(strength=0.123))
    assert job.error == "strength 0.123 is unlucky"


# -- colour from a reference photo and from colour points ---------------------------------------------


def test_reference_photo_file_reaches_the_worker(worker, tmp_path):
    config, inverter = worker
    doc, _photo, _ = doc_with_photo()
    path = tmp_path / "ref.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(path)
    p = plan(colorize="reference", color_strength=0.5, reference_file=f"  {path} ")
    src = controller.prepare(doc, p)
    guide = controller.guidance(doc, src, p)
    assert guide == {"reference": path.read_bytes()}, "the file's bytes, for the worker to decode"
    job = controller.start_job(config, src, p, guide)
    assert job.wait(30) and job.error is None
    call = inverter.calls[-1]
    assert call["colorize"] == "reference" and call["color_strength"] == 0.5
    assert call["reference"] == path.read_bytes()
    assert [n.name() for n in controller.finish(doc, src, p, job)] == ["Restored"]


def test_reference_from_another_open_document(worker, tmp_path):
    config, inverter = worker
    doc, _photo, _ = doc_with_photo()
    ref, rgb = reference_doc()
    p = plan(colorize="reference", reference_document=1, reference_file=str(tmp_path / "not-used.png"))
    src = controller.prepare(doc, p)
    guide = controller.guidance(doc, src, p, [FakeDoc(), ref])
    assert guide == {"reference": rgb.tobytes(), "reference_size": (20, 16)}, "the whole image, as RGB"
    job = controller.start_job(config, src, p, guide)
    assert job.wait(30) and job.error is None
    assert np.array_equal(inverter.calls[-1]["reference"], rgb)


def test_colour_points_layer_reaches_the_worker_as_points(worker):
    """The layer is read over the photo's area only: a dot outside it is not sent."""
    config, inverter = worker
    doc, photo, bgra = doc_with_photo()  # the photo covers (3, 2) to (12, 9)
    add_points_layer(doc, [(4, 3, (255, 0, 0)), (10, 7, (0, 0, 255)), (0, 0, (0, 255, 0))])
    p = plan(colorize="points")
    src = controller.prepare(doc, p)
    guide = controller.guidance(doc, src, p)
    layer = np.frombuffer(guide["points_layer"], np.uint8).reshape(8, 10, 4)
    assert (layer[1:3, 1:3] == [255, 0, 0, 255]).all() and (layer[5:7, 7:9] == [0, 0, 255, 255]).all()
    assert (layer[..., 3] > 0).sum() == 8, "RGBA over the photo's rectangle, nothing else"
    job = controller.start_job(config, src, p, guide)
    assert job.wait(30) and job.error is None
    assert [tuple(h) for h in inverter.calls[-1]["hints"]] == [(1.5, 1.5, "#ff0000"), (7.5, 5.5, "#0000ff")]
    controller.finish(doc, src, p, job)
    assert [n.name() for n in doc.root.children] == ["photo", "Restored", "Colour points"]
    assert photo.pixelData(3, 2, 10, 8) == bgra


def test_the_american_spelling_and_a_layer_inside_a_group():
    doc, _photo, _ = doc_with_photo()
    group = FakeNode("dots", "grouplayer")
    doc.root.addChildNode(group, None)
    layer = FakeNode("Color points")
    group.addChildNode(layer, None)
    layer.setPixelData(bytes([0, 255, 0, 255]), 5, 5, 1, 1)
    p = plan(colorize="points")
    src = controller.prepare(doc, p)
    assert controller.guidance(doc, src, p)["points_layer"][4 * (3 * 10 + 2):][:4] == bytes([0, 255, 0, 255])


def test_a_corrupt_reference_file_is_the_workers_one_line_message(worker, tmp_path):
    config, _ = worker
    doc, _photo, _ = doc_with_photo()
    path = tmp_path / "ref.jpg"
    path.write_bytes(b"\xff\xd8 not really a jpeg")
    p = plan(colorize="reference", reference_file=str(path))
    src = controller.prepare(doc, p)
    job = controller.start_job(config, src, p, controller.guidance(doc, src, p))
    assert job.wait(30) and job.result is None
    assert job.error.startswith("Reference photo: ") and "\n" not in job.error


@pytest.mark.parametrize(
    ("values", "setup", "message"),
    [
        ({"colorize": "reference"}, None, "'From a reference photo' needs a reference: choose a colour photo file"),
        ({"colorize": "reference", "reference_file": "{tmp}/missing.jpg"}, None,
         r"The reference photo .*missing.jpg cannot be read \(No such file or directory\)"),
        ({"colorize": "reference", "reference_file": "{tmp}"}, None, "cannot be read"),
        ({"colorize": "reference", "reference_file": "{tmp}/empty.jpg"}, None, "empty.jpg is empty"),
        ({"colorize": "reference", "reference_document": 0}, None, "reference document is no longer open"),
        ({"colorize": "points"}, None, "needs a transparent paint layer named 'Colour points'"),
        ({"colorize": "points"}, lambda d: setattr(d, "active", add_points_layer(d, [(4, 3, (255, 0, 0))])),
         "select the photo's layer, not the 'Colour points' layer"),
        ({"colorize": "points"}, lambda d: add_points_layer(d, [(0, 0, (255, 0, 0))]),
         "'Colour points' layer has no painted dot over the photo"),
        ({"colorize": "points"}, lambda d: d.root.addChildNode(FakeNode("Colour points", "grouplayer"), None),
         "must be an RGB or greyscale paint layer"),
    ],
)
def test_missing_or_unusable_guidance_gets_a_message(tmp_path, values, setup, message):
    (tmp_path / "empty.jpg").write_bytes(b"")
    doc, _photo, _ = doc_with_photo()
    if setup is not None:
        setup(doc)
    values = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in values.items()}
    p = plan(**values)
    src = controller.prepare(doc, plan())
    with pytest.raises(layers.PluginError, match=message):
        controller.guidance(doc, src, p, [])


@pytest.mark.parametrize("colorize", ["auto", "reference", "points"])
def test_colour_into_a_greyscale_layer_or_image_is_refused(colorize, monkeypatch):
    """The result layer takes the layer's colour space, and the canvas shows the image's."""
    doc, photo, _ = doc_with_photo()
    photo.space[0] = "GRAYA"
    with pytest.raises(layers.PluginError, match="Colour needs RGB, and the layer 'photo' is greyscale"):
        controller.prepare(doc, plan(colorize=colorize))
    monkeypatch.setattr(layers, "read_source", lambda *a: "read")  # the fake cannot convert grey (a real Krita can)
    assert controller.prepare(doc, plan(colorize="none")) == "read"
    assert controller.prepare(doc, plan(colorize=colorize, output="detect-only")) == "read"
    monkeypatch.undo()
    photo.space[0] = "RGBA"
    doc.colorModel = lambda: "GRAYA"
    with pytest.raises(layers.PluginError, match="the image is greyscale: convert it first with Image > Convert"):
        controller.prepare(doc, plan(colorize=colorize))


def test_no_guidance_without_guided_colour_or_when_only_detecting(tmp_path):
    doc, _photo, _ = doc_with_photo()
    src = controller.prepare(doc, plan())
    assert controller.guidance(doc, src, plan(colorize="auto", reference_file="/nowhere")) == {}
    assert controller.guidance(doc, src, plan(colorize="points", output="detect-only")) == {}


def test_cancel_stops_the_worker(worker):
    config, inverter = worker
    doc, _photo, _ = doc_with_photo()
    inverter.slow.set()
    try:
        src = controller.prepare(doc, plan())
        job = controller.start_job(config, src, plan())
        deadline = time.monotonic() + 20
        while job.fraction == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        job.cancel()
        assert job.wait(20)
    finally:
        inverter.slow.clear()
    assert job.cancelled.is_set() and job.error is None and job.result is None


def test_an_unreachable_worker_is_a_message_naming_the_install_command(tmp_path):
    config = bridge.WorkerConfig(python=str(tmp_path / "gone" / "python"), transport="stdio",
                                 install_command=controller.INSTALL_COMMAND)
    doc, _photo, _ = doc_with_photo()
    job, _src = run_job(config, doc, plan())
    assert "oldphoto worker was not found" in job.error and "`oldphoto krita install`" in job.error


# -- worker settings -------------------------------------------------------------------------------


def test_worker_settings(tmp_path):
    with pytest.raises(bridge.BridgeError, match="not configured.*`oldphoto krita install`"):
        controller.worker_config("", str(tmp_path))
    cfg = controller.worker_config("/env/bin/python", str(tmp_path))
    assert cfg.python == "/env/bin/python" and cfg.install_command == "oldphoto krita install"
    bridge.WorkerConfig(python="/a/python", device="cpu").save(tmp_path / bridge.CONFIG_NAME)
    assert controller.worker_config("", str(tmp_path)).device == "cpu"
    assert controller.worker_config("/b/python", str(tmp_path)).python == "/b/python"
    saved = json.loads((tmp_path / bridge.CONFIG_NAME).read_text())
    assert saved["python"] == "/b/python" and saved["device"] == "cpu", "a typed Python is kept for the next run"


# -- pixels -----------------------------------------------------------------------------------------


def test_alpha_splice_and_mask_at_every_depth():
    rng = np.random.default_rng(1)
    for channels, size in ((4, 1), (4, 2), (4, 4), (2, 2)):
        a = rng.integers(0, 256, 6 * channels * size, dtype=np.uint8).tobytes()
        b = rng.integers(0, 256, 6 * channels * size, dtype=np.uint8).tobytes()
        out = np.frombuffer(pixels.splice_alpha(a, b, channels, size), np.uint8).reshape(6, channels, size)
        aa = np.frombuffer(a, np.uint8).reshape(6, channels, size)
        bb = np.frombuffer(b, np.uint8).reshape(6, channels, size)
        assert np.array_equal(out[:, :-1], aa[:, :-1]) and np.array_equal(out[:, -1], bb[:, -1])
        mask = bytes([255, 0, 0, 255, 0, 255])
        kept = np.frombuffer(pixels.keep_alpha_where(a, mask, channels, size), np.uint8).reshape(6, channels, size)
        on = np.frombuffer(mask, np.uint8) > 0
        assert np.array_equal(kept[on], aa[on]) and not kept[~on][:, -1].any()
        assert np.array_equal(kept[~on][:, :-1], aa[~on][:, :-1])


# -- install, uninstall, zip ----------------------------------------------------------------------


def test_default_pykrita_folders(tmp_path):
    assert krita_cli.default_pykrita_dir("linux", {}, tmp_path) == tmp_path / ".local/share/krita/pykrita"
    assert krita_cli.default_pykrita_dir("linux", {"XDG_DATA_HOME": "/x"}, tmp_path) == Path("/x/krita/pykrita")
    assert krita_cli.default_pykrita_dir("win32", {"APPDATA": "C:/R"}, tmp_path) == Path("C:/R/krita/pykrita")
    assert krita_cli.default_pykrita_dir("darwin", {}, tmp_path) == tmp_path / "Library/Application Support/krita/pykrita"


def test_install_layout_settings_and_uninstall(tmp_path, capsys):
    pykrita = tmp_path / "krita" / "pykrita"
    assert main(["krita", "install", "--pykrita-dir", str(pykrita), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "Settings > Configure Krita > Python Plugin Manager" in out and "Tools > Scripts > Restore Old Photo" in out
    package = pykrita / "oldphoto_krita"
    assert (pykrita / "oldphoto_krita.desktop").is_file()
    assert (tmp_path / "krita" / "actions" / "oldphoto_krita.action").is_file()
    assert sorted(p.name for p in (package / "bridge").iterdir()) == sorted(bridge.CLIENT_MODULES)
    for name in bridge.CLIENT_MODULES:  # the same client code GIMP gets
        assert (package / "bridge" / name).read_bytes() == (Path(bridge.__file__).parent / name).read_bytes()
    cfg = json.loads((package / bridge.CONFIG_NAME).read_text())
    assert cfg["python"] == sys.executable and cfg["device"] == "cpu" and cfg["install_command"] == "oldphoto krita install"
    (pykrita / "someone_else").mkdir()
    assert main(["krita", "uninstall", "--pykrita-dir", str(pykrita)]) == 0
    assert sorted(p.name for p in pykrita.iterdir()) == ["someone_else"]
    assert not (tmp_path / "krita" / "actions" / "oldphoto_krita.action").exists()


def test_installed_plugin_needs_no_oldphoto(tmp_path):
    """Krita's Python has neither oldphoto nor numpy: the installed package imports with site-packages
    off, its bridge is its own copy, and outside Krita it registers nothing."""
    import subprocess

    krita_cli.install(tmp_path, bridge.WorkerConfig(python=sys.executable))
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import oldphoto_krita.controller as c, oldphoto_krita.job; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('numpy', 'torch', 'PIL', 'oldphoto')]; "
            "assert not bad, bad; assert c.bridge.__name__ == 'oldphoto_krita.bridge', c.bridge.__name__; "
            "print(c.worker_config().python)")
    r = subprocess.run([sys.executable, "-S", "-I", "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == sys.executable


def test_release_zip_is_what_the_importer_reads(tmp_path, capsys):
    """Krita's importer wants the .desktop (its X-KDE-Library names the package) and the .action at the
    top of the archive and the package folder beside them."""
    target = tmp_path / "dist" / "oldphoto_krita.zip"
    assert main(["krita", "zip", str(target)]) == 0
    with zipfile.ZipFile(target) as z:
        names = set(z.namelist())
        desktop = z.read("oldphoto_krita.desktop").decode()
    assert {"oldphoto_krita.desktop", "oldphoto_krita.action", "oldphoto_krita/__init__.py",
            "oldphoto_krita/bridge/client.py"} <= names
    assert "X-KDE-Library=oldphoto_krita" in desktop and "ServiceTypes=Krita/PythonPlugin" in desktop
    assert not any(n.endswith(bridge.CONFIG_NAME) or "__pycache__" in n for n in names)
    assert "Import Python Plugin from File" in capsys.readouterr().out
    again = tmp_path / "again.zip"
    krita_cli.build_zip(again)
    assert again.read_bytes() == target.read_bytes(), "a release zip is reproducible"


def test_dialog_with_the_system_pyqt(tmp_path):
    """The dialog and the Qt shim in the PyQt Krita uses (Debian's python3-pyqt5, offscreen): every
    option has its widget, values come back typed, remembered settings are shown again."""
    import shutil
    import subprocess

    python = shutil.which("python3", path="/usr/bin")
    probe = subprocess.run([python or "python3", "-c", "import PyQt5.QtWidgets"], capture_output=True)
    if python is None or probe.returncode:
        pytest.skip("no system Python with PyQt5 (tests/setup/krita.sh installs python3-pyqt5 with Krita)")
    krita_cli.install(tmp_path, None)
    code = """
import json, sys
sys.path.insert(0, sys.argv[1])
from oldphoto_krita import qt, dialog
app = qt.QApplication([])
d = dialog.RestoreDialog(settings={"scratches": "auto", "mask_grow": 5, "faces": False, "output": "detect-only"},
                         python="/env/python")
off = [w.isEnabled() for w in d.reference_row]
g = dialog.RestoreDialog(settings={"colorize": "reference", "reference_file": "/photos/colour.jpg"},
                         documents=["house.kra", "Untitled 2"])
on = [w.isEnabled() for w in g.reference_row]
g.reference_document.setCurrentIndex(2)
guided = g.values()
g.widgets["colorize"].setCurrentIndex([g.widgets["colorize"].itemData(i) for i in range(4)].index("points"))
print(json.dumps({"binding": qt.BINDING, "values": d.values(), "widgets": sorted(d.widgets), "off": off, "on": on,
                  "guided": guided, "points_off": [w.isEnabled() for w in g.reference_row],
                  "model_on": [d.widgets["colorize_model"].isEnabled(), g.widgets["colorize_model"].isEnabled()],
                  "documents": [g.reference_document.itemText(i) for i in range(g.reference_document.count())]}))
"""
    env = {"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    r = subprocess.run([python, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["binding"] == "PyQt5" and out["widgets"] == sorted(bridge.RestoreOptions.names())
    values = out["values"]
    assert values == {"scratches": "auto", "faces": False, "hr": False, "strength": 1.0, "face_strength": 1.0,
                      "scratch_threshold": 0.4, "mask_grow": 5, "output": "detect-only", "mask_layer": False,
                      "python": "/env/python", "colorize": "none", "colorize_model": "modelscope",
                      "color_strength": 1.0, "existing_color": "replace", "reference_document": -1,
                      "reference_file": ""}
    p = controller.make_plan(values)
    assert p.options.mask_grow == 5 and p.output == "detect-only" and p.python == "/env/python"
    # the reference controls: enabled for 'From a reference photo' only; the other documents are offered
    assert out["off"] == [False] * 3 and out["on"] == [True] * 3 and out["points_off"] == [False] * 3
    assert out["model_on"] == [True, False], "the DDColor model is not what colours from points"
    assert out["documents"] == ["The photo file below", "house.kra", "Untitled 2"]
    guided = out["guided"]
    assert (guided["colorize"], guided["reference_document"], guided["reference_file"]) == (
        "reference", 1, "/photos/colour.jpg")
    p = controller.make_plan(guided)
    assert (p.options.colorize, p.reference_document, p.reference_file) == ("reference", 1, "/photos/colour.jpg")
