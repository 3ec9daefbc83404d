"""The Krita plug-in in a REAL Krita 5 (Debian's, installed by tests/setup/krita.sh), under Xvfb.

* ``kritarunner`` (Krita's Python API, no window) runs tests/krita/krita_cases.py once: the plug-in's
  layer code on real documents in every colour model and depth it accepts (and the ones it refuses),
  on a layer smaller than the canvas and offset, with alpha.
* One GUI Krita with the real plug-in installed by ``oldphoto krita install`` and a test-only driver
  plug-in (tests/krita/e2e_plugin): the real action on a real PNG, the seeded-weights worker doing the
  work; the "Restored" layer must equal ``Restorer.restore`` on the same pixels.

The Krita profile (XDG folders, resource database) is built once per session. Every Krita start runs
under ``timeout``: a Krita that never gets to quit must not hang the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ..conftest import REPO
from ..test_bridge import assert_same_restoration

HERE = Path(__file__).parent
SETUP = REPO / "tests" / "setup" / "krita.sh"
W, H = 48, 40
"""The GUI test's photo: small, so the seeded worker is quick."""


def _require_krita() -> None:
    """Runs the setup script (it returns at once when Krita is there); skips only where it cannot install."""
    def present() -> bool:
        return all(shutil.which(t) for t in ("kritarunner", "krita", "xvfb-run", "timeout"))

    if present():
        return
    r = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, timeout=1800)
    if r.returncode:
        pytest.fail(f"installing Krita failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    if not present():
        pytest.skip(f"real-Krita test skipped: {r.stdout.strip().splitlines()[-1] if r.stdout.strip() else 'no Krita'}")


@pytest.fixture(scope="session")
def krita_profile(tmp_path_factory, seeded_guided_weights_dir) -> dict:
    """A private Krita profile with the plug-in installed by its own command (stdio worker, seeded
    weights, the colour models' too) and the test driver enabled; shared by every Krita start of the session."""
    _require_krita()
    base = tmp_path_factory.mktemp("krita")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QT_", "XDG_"))}
    for name in ("home", "data", "config", "cache", "runtime"):
        (base / name).mkdir(mode=0o700)
    env.update(HOME=str(base / "home"), XDG_DATA_HOME=str(base / "data"), XDG_CONFIG_HOME=str(base / "config"),
               XDG_CACHE_HOME=str(base / "cache"), XDG_RUNTIME_DIR=str(base / "runtime"))
    pykrita = base / "data" / "krita" / "pykrita"
    r = subprocess.run([sys.executable, "-m", "oldphoto.cli", "krita", "install", "--pykrita-dir", str(pykrita),
                        "--weights-dir", str(seeded_guided_weights_dir), "--device", "cpu", "--transport", "stdio"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Python Plugin Manager" in r.stdout
    shutil.copytree(HERE / "e2e_plugin", pykrita, dirs_exist_ok=True)
    (base / "config" / "kritarc").write_text(
        "[python]\nenable_oldphoto_krita=true\nenable_oldphoto_krita_e2e=true\n", encoding="utf-8")
    return {"base": base, "env": env, "pykrita": pykrita}


def _kritarunner(profile: dict, module: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(profile["env"], PYTHONPATH=f"{HERE}{os.pathsep}{profile['pykrita']}")
    cmd = ["timeout", str(timeout), "xvfb-run", "-a", "kritarunner", "-s", module, "-f", "main", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True)


@pytest.fixture(scope="session")
def cases(krita_profile) -> dict:
    out = krita_profile["base"] / "cases.json"
    r = _kritarunner(krita_profile, "krita_cases", str(out))
    first = ""
    if not out.is_file():
        # One more start: `xvfb-run -a` can lose the race for a display number to another X server
        # starting at the same moment (seen once while GIMP tests ran beside it); both outputs are kept.
        first = f"first start (exit {r.returncode}):\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}\n"
        r = _kritarunner(krita_profile, "krita_cases", str(out))
    assert out.is_file(), (f"kritarunner wrote no report (exit {r.returncode}):\n{r.stdout[-3000:]}\n"
                           f"{r.stderr[-3000:]}\n{first}")
    report = json.loads(out.read_text())
    assert not report["errors"], "\n".join(report["errors"])
    return report


ACCEPTED = ["RGBA/U8", "RGBA/U16", "RGBA/F16", "RGBA/F32", "GRAYA/U8", "GRAYA/U16"]


@pytest.mark.parametrize("space", ACCEPTED)
def test_layer_pixels_in_every_depth(cases, space):
    """Read as 8-bit sRGB, result written back into the layer's own space: exact round trips (Krita's
    conversions through float), alpha bytes of the original at full depth, original untouched."""
    c = cases["spaces"][space]
    assert c["rect"] == [5, 3, 12, 8], "the layer's own rectangle (smaller than the canvas, offset)"
    assert c["rgb_diff"] == 0 and c["alpha_diff"] == 0
    assert c["order"] == ["Background", "photo", "Restored"], "the new layer goes right above the original"
    assert c["new_space"][:2] == space.split("/"), "the result is in the layer's colour space"
    assert c["new_bounds"] == [5, 3, 12, 8]
    assert c["result_diff"] == 0, "what the worker returned is what the new layer shows"
    assert c["alpha_bytes_equal"] and c["original_unchanged"]
    assert c["repairs_only_alpha"], "'only the repaired damage': the original's alpha on the mask, 0 elsewhere"
    assert c["order_with_mask"][-1] == "Scratch mask" and c["mask_layer_alpha_equal"]


@pytest.mark.parametrize("space", ["CMYKA/U8", "LABA/U16"])
def test_unfaithful_colour_models_are_refused(cases, space):
    assert "works on RGB and greyscale layers" in cases["spaces"][space]["refused"]
    assert "Convert Image Color Space" in cases["spaces"][space]["refused"]


def test_selection_bounds_and_selection_as_damage_mask(cases):
    s = cases["selection"]
    assert "needs a selection" in s["no_selection"]
    assert s["bounds_rect"] == [5, 3, 3, 3], "a selection that is not the mask limits the restored area"
    assert s["mask_rect"] == [5, 3, 12, 8], "as the damage mask, the whole layer is restored"
    assert s["mask_rows"][:3] == ["ffffff" + "00" * 9] * 3 and set(s["mask_rows"][3:]) == {"00" * 12}
    assert "does not cover any part" in s["off_layer_False"] and "does not cover any part" in s["off_layer_True"]


def test_bad_layers_get_a_message(cases):
    assert "works on a paint layer, and 'A group' is a group layer" in cases["bad"]["group"]
    assert "is empty" in cases["bad"]["empty"]


@pytest.mark.parametrize("space", ["RGBA/U8", "RGBA/U16", "GRAYA/U16"])
def test_another_document_as_the_reference_photo(cases, space):
    """Its whole image (the projection) as 8-bit sRGB, converted by Krita where it is not."""
    c = cases["guided"]["reference"][space]
    assert c["size"] == [24, 16] and c["rgb_diff"] == 0


@pytest.mark.parametrize("depth", ["U8", "U16"])
def test_colour_points_layer_over_the_photos_area(cases, depth):
    c = cases["guided"]["points"][depth]
    assert c["others_exclude_doc"], "the reference documents offered are the other open documents"
    assert c["size"] == 12 * 8 * 4, "RGBA over the photo's rectangle"
    assert c["painted"] == [1 * 12 + 2, 1 * 12 + 3, 2 * 12 + 2, 2 * 12 + 3], "only the dot inside the photo's area"
    assert c["dot"] == [200, 30, 60, 255]
    assert "select the photo's layer, not the 'Colour points' layer" in c["selected"]


def _photo() -> np.ndarray:
    rng = np.random.default_rng(25)
    y, x = np.mgrid[0:H, 0:W]
    base = np.stack([x * 255 // W, y * 255 // H, (x + y) * 255 // (W + H)], axis=-1)
    return np.clip(base + rng.integers(-30, 30, (H, W, 3)), 0, 255).astype(np.uint8)


def test_the_real_action_in_a_gui_krita(krita_profile, seeded_weights_dir, seeded_guided_weights_dir, tmp_path):
    """Tools > Scripts > Restore Old Photo… on a PNG: the driver sets the dialog (scratches detected,
    strength 0.8, faces off, Scratch mask layer) and presses OK; paints two dots on a "Colour points"
    layer and runs it "With colour points"; runs it again and presses Cancel in the progress dialog;
    then runs it on a group layer."""
    photo = _photo()
    Image.fromarray(photo).save(tmp_path / "photo.png")
    out = tmp_path / "out"
    out.mkdir()
    values = {"scratches": "auto", "faces": False, "strength": 0.8, "mask_layer": True}
    dots = [[5, 6, [220, 40, 40]], [36, 28, [40, 90, 230]]]  # 3x3 dots, top-left corners
    points = {"dots": dots, "values": {"scratches": "none", "faces": False, "mask_layer": False, "colorize": "points"}}
    job = {"input": str(tmp_path / "photo.png"), "out": str(out), "values": values, "points": points}
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = dict(krita_profile["env"], OLDPHOTO_KRITA_E2E=str(tmp_path / "job.json"))
    cmd = ["timeout", "300", "xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", "krita", "--nosplash"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    report_file = out / "report.json"
    assert report_file.is_file(), f"Krita exited {r.returncode} without a report:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    report = json.loads(report_file.read_text())
    assert "error" not in report, (report, r.stderr[-4000:])
    # every option of the protocol has its control in the dialog
    from oldphoto import bridge

    assert set(bridge.RestoreOptions.names()) <= set(report["dialog_controls"])
    assert report["layers"] == [report["photo"]["name"], "Restored", "Scratch mask"]
    assert report["original_unchanged"] is True
    assert report["restored_bounds"] == [0, 0, W, H]

    from oldphoto import Restorer

    want = Restorer(device="cpu", weights_dir=seeded_weights_dir).restore(
        photo, scratches="auto", faces=False, strength=0.8)
    bgra = np.frombuffer((out / "restored.bgra").read_bytes(), np.uint8).reshape(H, W, 4)
    got = bgra[..., [2, 1, 0]]
    assert_same_restoration(got, np.asarray(want.image.convert("RGB")))
    assert (bgra[..., 3] == 255).all()
    mask = np.frombuffer((out / "mask.bgra").read_bytes(), np.uint8).reshape(H, W, 4)[..., 3]
    from oldphoto.imageio import resize_mask

    used = resize_mask(np.asarray(want.mask, dtype=bool), (W, H))  # the mask at the photo's size, as the worker sends it
    assert np.array_equal(mask > 0, used), "the Scratch mask layer is the mask used"

    # "With colour points": each dot is a point at its centre with its colour, as Restorer.restore takes them
    assert report["points_layers"] == [report["photo"]["name"], "Restored", "Colour points", "Restored",
                                       "Scratch mask"], "the new layer right above the photo's"
    hints = [(x + 1, y + 1, "#{:02x}{:02x}{:02x}".format(*rgb)) for x, y, rgb in dots]
    want_points = Restorer(device="cpu", weights_dir=seeded_guided_weights_dir).restore(
        photo, faces=False, strength=0.8, colorize="points", hints=hints)  # the dialog kept strength 0.8
    coloured = np.frombuffer((out / "points.bgra").read_bytes(), np.uint8).reshape(H, W, 4)[..., [2, 1, 0]]
    assert_same_restoration(coloured, np.asarray(want_points.image.convert("RGB")))
    spread = coloured.astype(int).max(axis=-1) - coloured.astype(int).min(axis=-1)
    assert spread.mean() > 8, f"the layer is colour (mean channel spread {spread.mean():.1f})"

    cancel = report["cancel"]  # run again and cancelled from the progress dialog: nothing added, no message
    assert cancel["cancelled"] is True and cancel["error"] is None and cancel["added"] == []
    assert cancel["layers_after"] == report["layers"] and cancel["modal"] is None

    bad = report["bad_layer"]
    assert bad["object"] == "oldphoto_error" and bad["title"] == "Restore Old Photo"
    assert bad["text"].startswith("Restore Old Photo works on a paint layer, and 'A group' is a group layer")
