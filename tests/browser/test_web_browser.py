"""End-to-end: the web demo in a real headless Chromium (Debian's, driven by the Python playwright
client). The app runs on 127.0.0.1 with seeded weights; a real old photo is uploaded, a stroke painted
in the editor, the photo restored, and the result checked on the page and as the downloaded PNG.
Screenshots go to test-artifacts/browser/ for a human to look at."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import REPO, require_reference
from tests.web_helpers import serve

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts" / "browser"
PHOTO_SIDE = 256  # keeps the CPU restoration of the test to seconds

playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python client is not installed")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: run tests/setup/chromium.sh as root (make test does)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def app_url(seeded_weights_dir):
    with serve(seeded_weights_dir) as url:
        yield url


@pytest.fixture(scope="module")
def old_photo(tmp_path_factory) -> Path:
    """A real scanned old photo from the reference set, reduced to at most PHOTO_SIDE px."""
    src = require_reference("test_images", "old", "h.png")
    with Image.open(src) as im:
        im = im.convert("RGB")
        im.thumbnail((PHOTO_SIDE, PHOTO_SIDE), Image.LANCZOS)
        out = tmp_path_factory.mktemp("browser") / "grandfather.png"
        im.save(out)
    return out


@pytest.fixture()
def page(browser, app_url):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(app_url)
    pg.wait_for_selector("#restore-btn", timeout=60_000)
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(pg, name: str) -> None:
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_paint_a_stroke_restore_and_download(page, old_photo):
    with Image.open(old_photo) as im:
        size = im.size
    page.locator("#photo input[type=file]").set_input_files(str(old_photo))
    page.get_by_label("Paint the damaged areas myself").check()
    page.get_by_label("Enhance faces").uncheck()  # faces are slow on the CPU; the API tests cover options

    # the photo appears in the brush editor (the editor draws into <canvas>)
    canvas = page.locator("#editor canvas").first
    canvas.wait_for(state="visible", timeout=30_000)
    page.wait_for_timeout(1500)  # the editor loads its background image asynchronously
    box = canvas.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 30, cy - 20)
    page.mouse.down()
    for i in range(1, 16):
        page.mouse.move(cx - 30 + 4 * i, cy - 20 + 3 * i, steps=2)
    page.mouse.up()
    page.wait_for_timeout(500)  # the editor sends its layers with the next event (the Restore click)
    shot(page, "1-painted")

    # record every text the result area shows while it runs (progress per stage), however brief
    page.evaluate("""() => {
        window.__seen = [];
        const area = document.querySelector('#result');
        new MutationObserver(() => window.__seen.push(area.innerText))
            .observe(area, {subtree: true, childList: true, characterData: true});
    }""")
    t0 = time.monotonic()
    page.click("#restore-btn")
    page.locator("#download").wait_for(state="visible", timeout=240_000)
    elapsed = time.monotonic() - t0
    seen = " | ".join(page.evaluate("() => window.__seen"))
    assert re.search(r"Restoring \(global\)", seen), f"no stage progress shown; saw: {seen[:500]}"

    summary = page.locator("#summary").inner_text()
    assert f"Restored {size[0]}×{size[1]} px" in summary
    assert "scratch mask: user" in summary  # the painted stroke was used as the mask

    # the before/after slider shows both images at the photo's size
    imgs = page.locator("#result img")
    assert imgs.count() == 2
    for i in range(2):
        natural = imgs.nth(i).evaluate("e => [e.naturalWidth, e.naturalHeight]")
        assert tuple(natural) == size

    page.get_by_text("Intermediate results").click()
    page.locator("#mask img").wait_for(state="visible", timeout=10_000)
    shot(page, "2-restored")

    with page.expect_download(timeout=30_000) as dl_info:
        page.click("#download")
    download = dl_info.value
    assert download.suggested_filename == "grandfather_restored.png"
    saved = ARTIFACTS / download.suggested_filename
    download.save_as(str(saved))
    with Image.open(saved) as out:
        assert out.format == "PNG" and out.size == size and out.mode == "RGB"
    print(f"restoration in the browser: {elapsed:.1f} s for {size[0]}x{size[1]}")


def test_start_from_the_detected_scratches(page, old_photo):
    """The detected mask goes into the editor as a paint layer, and restoring uses it as the user's."""
    page.locator("#photo input[type=file]").set_input_files(str(old_photo))
    page.get_by_label("Paint the damaged areas myself").check()
    page.get_by_label("Enhance faces").uncheck()
    page.locator("#editor canvas").first.wait_for(state="visible", timeout=30_000)
    page.click("#detect-btn")
    busy = page.locator("#editor [data-testid=status-tracker]:not(.hide)")
    try:
        busy.wait_for(state="visible", timeout=15_000)
    except playwright_api.TimeoutError:
        pass  # already finished; the restoration below proves the detected layer arrived
    busy.wait_for(state="hidden", timeout=240_000)
    page.wait_for_timeout(1500)
    shot(page, "4-detected-in-editor")
    page.click("#restore-btn")
    page.locator("#download").wait_for(state="visible", timeout=240_000)
    summary = page.locator("#summary").inner_text()
    assert "scratch mask: user" in summary, summary
    share = float(summary.split("scratch mask: user, ")[1].split("%")[0])
    assert share > 0


def test_examples_fill_the_form(page):
    """Clicking an example loads its (shipped, package-data) photo and options into the form."""
    page.locator(".gallery-item, tr.tr-body").first.click()
    photo = page.locator("#photo img").first
    photo.wait_for(state="visible", timeout=30_000)
    assert photo.evaluate("e => e.complete && e.naturalWidth") > 0  # the file is served
    assert page.get_by_label("Detect scratches automatically").is_checked()


def test_bad_file_shows_a_friendly_error(page, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"definitely not the rest of a PNG")
    page.locator("#photo input[type=file]").set_input_files(str(bad))
    toast = page.locator(".toast-body").filter(has_text="broken.png")
    toast.wait_for(state="visible", timeout=30_000)
    text = toast.inner_text()
    page.wait_for_timeout(800)  # let the pop-up finish fading in for the screenshot
    shot(page, "3-bad-file")
    # the unreadable file is taken out of the form again
    page.locator("#photo img").wait_for(state="detached", timeout=10_000)
    assert "broken.png: the image file is corrupt or truncated" in text
    assert "Traceback" not in text and "/tmp/" not in text


def teardown_module() -> None:
    # keep only the latest run's downloads next to the screenshots
    for extra in ARTIFACTS.glob("*_restored.png"):
        if extra.stat().st_size == 0:
            extra.unlink()
    shutil.rmtree(ARTIFACTS / "tmp", ignore_errors=True)


def test_cancel_stops_the_restoration_on_the_server(browser, seeded_weights_dir, tmp_path):
    """Cancel while the global stage runs: the page stops waiting and the Restorer itself stops
    (Cancelled raised inside the run), instead of computing on for nobody."""
    from oldphoto import Restorer
    from oldphoto.errors import Cancelled

    outcomes: list[str] = []

    class Recording(Restorer):
        def restore(self, *args, **kwargs):
            try:
                res = super().restore(*args, **kwargs)
            except Cancelled:
                outcomes.append("cancelled")
                raise
            outcomes.append("finished")
            return res

    src = require_reference("test_images", "old_w_scratch", "b.png")
    big = tmp_path / "big.png"
    with Image.open(src) as im:
        im.convert("RGB").resize((900, 1200), Image.LANCZOS).save(big)  # many seconds of CPU work
    factory = lambda: Recording(device="cpu", weights_dir=seeded_weights_dir)  # noqa: E731
    with serve(seeded_weights_dir, restorer_factory=factory, max_side=0) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        pg.goto(url)
        pg.wait_for_selector("#restore-btn", timeout=60_000)
        pg.locator("#photo input[type=file]").set_input_files(str(big))
        pg.get_by_label("Detect scratches automatically").check()
        pg.get_by_label("Enhance faces").uncheck()
        pg.locator("#photo img").first.wait_for(state="visible", timeout=30_000)
        pg.click("#restore-btn")
        pg.get_by_text(re.compile("Restoring")).first.wait_for(timeout=240_000)
        pg.click("#cancel-btn")
        deadline = time.monotonic() + 120
        while not outcomes and time.monotonic() < deadline:
            pg.wait_for_timeout(250)
        shot(pg, "6-cancelled")
        assert outcomes == ["cancelled"]
        assert not pg.locator("#download").is_visible()
        context.close()


def test_moving_strength_reblends_without_running_the_networks(browser, seeded_weights_dir, old_photo):
    """Adjust ▸ Strength after a restore: the shown result changes, and the Restorer is not called
    again (a counter on the real Restorer's network entry points)."""
    import urllib.request

    from oldphoto import Restorer

    calls: list[str] = []

    class Counting(Restorer):
        def restore(self, *args, **kwargs):
            calls.append("restore")
            return super().restore(*args, **kwargs)

        def detect_scratches(self, *args, **kwargs):
            calls.append("detect")
            return super().detect_scratches(*args, **kwargs)

    factory = lambda: Counting(device="cpu", weights_dir=seeded_weights_dir)  # noqa: E731
    with serve(seeded_weights_dir, restorer_factory=factory) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(url)
        pg.wait_for_selector("#restore-btn", timeout=60_000)
        pg.locator("#photo input[type=file]").set_input_files(str(old_photo))
        pg.get_by_label("Enhance faces").uncheck()
        pg.locator("#photo img").first.wait_for(state="visible", timeout=30_000)
        pg.click("#restore-btn")
        pg.locator("#download").wait_for(state="visible", timeout=240_000)
        assert calls == ["restore"]
        after = pg.locator("#result img").nth(1)
        first_src = after.get_attribute("src")
        assert "Adjusted" not in pg.locator("#summary").inner_text()

        pg.get_by_text("Adjust", exact=True).click()
        box = pg.locator("#strength input[type=number]")
        box.wait_for(state="visible", timeout=10_000)
        assert "without running the networks again" in pg.locator("#adjust").inner_text()
        t0 = time.monotonic()
        box.fill("0.3")
        box.press("Tab")  # the slider's "release": the value is final
        pg.locator("#summary").filter(has_text="strength 0.3 (default 1)").wait_for(timeout=60_000)
        elapsed = time.monotonic() - t0
        pg.wait_for_function("s => document.querySelectorAll('#result img')[1].src !== s", arg=first_src,
                             timeout=30_000)
        shot(pg, "7-strength-reblended")
        new_src = after.get_attribute("src")
        with urllib.request.urlopen(first_src) as a, urllib.request.urlopen(new_src) as b:  # noqa: S310 - 127.0.0.1
            before_png, after_png = a.read(), b.read()
        from io import BytesIO

        with Image.open(BytesIO(before_png)) as x, Image.open(BytesIO(after_png)) as y:
            assert x.size == y.size and x.tobytes() != y.tobytes()
        assert calls == ["restore"], f"the networks ran again: {calls}"
        context.close()
        assert not errors, f"JavaScript errors on the page: {errors}"
    print(f"re-blend in the browser: {elapsed:.2f} s")


def _chroma_of(url: str) -> float:
    """Mean spread between the channels of the image at ``url`` (0 for a grey image)."""
    import urllib.request
    from io import BytesIO

    import numpy as np

    with urllib.request.urlopen(url) as r, Image.open(BytesIO(r.read())) as im:  # noqa: S310 - 127.0.0.1
        arr = np.asarray(im.convert("RGB"), dtype=np.int16)
    return float((arr.max(axis=2) - arr.min(axis=2)).mean())


def test_automatic_colour_and_colour_strength(browser, seeded_color_weights_dir, old_photo, tmp_path):
    """Colour ▸ Automatic with the Tiny model: the before/after view shows a grey photo before and a
    colour one after; Adjust ▸ Colour strength 0 then gives the grey restoration back without running
    any network again."""
    from oldphoto import Restorer

    grey = tmp_path / "grandfather_grey.png"
    with Image.open(old_photo) as im:
        im.convert("L").convert("RGB").save(grey)
    calls: list[dict] = []

    class Counting(Restorer):
        def restore(self, *args, **kwargs):
            calls.append({k: kwargs.get(k) for k in ("colorize", "colorize_model", "color_strength")})
            return super().restore(*args, **kwargs)

    factory = lambda: Counting(device="cpu", weights_dir=seeded_color_weights_dir)  # noqa: E731
    with serve(seeded_color_weights_dir, restorer_factory=factory) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(url)
        pg.wait_for_selector("#restore-btn", timeout=60_000)
        pg.locator("#photo input[type=file]").set_input_files(str(grey))
        pg.get_by_label("Enhance faces").uncheck()
        pg.locator("#photo img").first.wait_for(state="visible", timeout=30_000)
        assert not pg.locator("#colorize-model").is_visible()  # model choice only once colour is chosen
        pg.get_by_label("Automatic (DDColor)").check()
        model = pg.locator("#colorize-model input")
        model.wait_for(state="visible", timeout=10_000)
        model.click()
        pg.get_by_role("option", name="Tiny: fastest on a CPU").click()
        assert pg.get_by_label("Only if the photo is grey (keep existing colour)").is_checked()
        shot(pg, "8-colour-chosen")
        pg.click("#restore-btn")
        pg.locator("#download").wait_for(state="visible", timeout=240_000)
        assert calls == [{"colorize": "auto", "colorize_model": "tiny", "color_strength": 1}], calls
        summary = pg.locator("#summary").inner_text()
        assert "colourised (automatic, Tiny model)" in summary, summary
        imgs = pg.locator("#result img")
        assert imgs.count() == 2
        before_src, after_src = imgs.nth(0).get_attribute("src"), imgs.nth(1).get_attribute("src")
        assert _chroma_of(before_src) < 1.0
        assert _chroma_of(after_src) > 2.0, "the after image is not in colour"
        shot(pg, "9-colourised")

        pg.get_by_text("Adjust", exact=True).click()
        box = pg.locator("#color-strength input[type=number]")
        box.wait_for(state="visible", timeout=10_000)
        box.fill("0")
        box.press("Tab")
        pg.locator("#summary").filter(has_text="colour strength 0").wait_for(timeout=60_000)
        pg.wait_for_function("s => document.querySelectorAll('#result img')[1].src !== s", arg=after_src,
                             timeout=30_000)
        assert _chroma_of(imgs.nth(1).get_attribute("src")) < 1.0
        shot(pg, "10-colour-strength-0")
        assert len(calls) == 1, f"the networks ran again: {calls}"
        context.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


def _image_at(url: str) -> Image.Image:
    import urllib.request
    from io import BytesIO

    with urllib.request.urlopen(url) as r:  # noqa: S310 - 127.0.0.1
        return Image.open(BytesIO(r.read())).convert("RGB")


def _click_natural(pg, selector: str, x: int, y: int) -> None:
    """Click the pixel (x, y) of the image shown in ``selector``, wherever the page scaled it to
    (``object-fit: contain``, as Gradio shows it: scaled down to fit, never up, centred)."""
    img = pg.locator(selector).first
    img.wait_for(state="visible", timeout=30_000)
    pg.wait_for_function("s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0 }",
                         arg=selector, timeout=30_000)  # a re-drawn preview may still be loading
    img.scroll_into_view_if_needed()
    box = img.bounding_box()  # in the viewport: the mouse clicks there
    nw, nh = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    r = min(box["width"] / nw, box["height"] / nh, 1)
    ox, oy = (box["width"] - nw * r) / 2, (box["height"] - nh * r) / 2
    pg.mouse.click(box["x"] + ox + (x + 0.5) * r, box["y"] + oy + (y + 0.5) * r)


def _pick_colour(pg, hex_colour: str) -> None:
    pg.locator("#point-colour button.dialog-button").click()
    box = pg.locator("#point-colour .color-picker input[type=text]")
    box.fill(hex_colour)
    box.press("Enter")
    pg.locator("#point-colour [data-testid=block-info]").click()  # closes the picker
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    pg.wait_for_function("c => document.querySelector('#point-colour button.dialog-button').style.background"
                         " === c", arg=f"rgb({r}, {g}, {b})", timeout=10_000)


def test_place_two_colour_points_by_clicking(browser, seeded_guided_weights_dir, old_photo, tmp_path):
    """Colour ▸ With colour points: pick a colour, click the photo, pick another, click again. The two
    points are drawn in their colours where clicked, "Remove the last point" takes one back, and the
    restoration gets exactly those points in the photo's pixels; the result's colour changes around
    each point (seeded weights: towards no known colour, but unlike the result without points)."""
    import json

    import numpy as np

    from oldphoto import Restorer

    grey = tmp_path / "grandfather_grey.png"
    with Image.open(old_photo) as im:
        im.convert("L").convert("RGB").save(grey)
        w, h = im.size
    calls: list[dict] = []

    class Counting(Restorer):
        def restore(self, *args, **kwargs):
            calls.append({k: kwargs.get(k) for k in ("colorize", "hints")})
            return super().restore(*args, **kwargs)

    restorer = Counting(device="cpu", weights_dir=seeded_guided_weights_dir)
    with serve(seeded_guided_weights_dir, restorer_factory=lambda: restorer) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1400})
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(url)
        pg.wait_for_selector("#restore-btn", timeout=60_000)
        pg.locator("#photo input[type=file]").set_input_files(str(grey))
        pg.get_by_label("Enhance faces").uncheck()
        pg.locator("#photo img").first.wait_for(state="visible", timeout=30_000)
        assert not pg.locator("#points-image").is_visible()
        pg.get_by_label("With colour points").check()
        pg.locator("#points-image img").first.wait_for(state="visible", timeout=30_000)
        hints = pg.locator("#hints textarea")

        def points_now(n: int) -> list:
            try:
                pg.wait_for_function("([sel, n]) => { const e = document.querySelector(sel);"
                                     " try { return JSON.parse(e.value).length === n } catch (x) { return false } }",
                                     arg=["#hints textarea", n], timeout=30_000)
            except playwright_api.TimeoutError:
                shot(pg, "points-timeout")
                raise AssertionError(f"expected {n} points, the field holds {hints.input_value()!r}") from None
            return json.loads(hints.input_value())

        wanted = [(w // 4, h // 3, "#c03020"), (3 * w // 4, 2 * h // 3, "#2040d0")]
        for i, (x, y, colour) in enumerate(wanted, 1):
            _pick_colour(pg, colour)
            _click_natural(pg, "#points-image img", x, y)
            points = points_now(i)
        assert points == [[x, y, c] for x, y, c in wanted], points
        drawn = _image_at(pg.locator("#points-image img").first.get_attribute("src"))
        assert drawn.size == (w, h)
        for x, y, colour in wanted:  # each dot is drawn in its colour where it was clicked
            assert drawn.getpixel((x, y)) == tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
        shot(pg, "11-two-colour-points")

        pg.click("#undo-point")
        assert points_now(1) == [list(wanted[0])]
        _click_natural(pg, "#points-image img", *wanted[1][:2])  # the picker still holds the second colour
        assert points_now(2) == [list(p) for p in wanted]

        pg.click("#restore-btn")
        pg.locator("#download").wait_for(state="visible", timeout=240_000)
        assert calls == [{"colorize": "points", "hints": [tuple(p) for p in wanted]}], calls
        summary = pg.locator("#summary").inner_text()
        assert "colourised (with colour points" in summary, summary
        after = _image_at(pg.locator("#result img").nth(1).get_attribute("src"))
        shot(pg, "12-coloured-from-points")
        without = restorer.restore(grey, faces=False, colorize="points").image  # the same photo, no points
        got, base = np.asarray(after, float), np.asarray(without, float)
        for x, y, _c in wanted:
            near = np.abs(got[y - 4:y + 5, x - 4:x + 5] - base[y - 4:y + 5, x - 4:x + 5]).mean()
            assert near > 3, (x, y, near)

        pg.click("#clear-points")
        assert points_now(0) == []
        context.close()
        assert not errors, f"JavaScript errors on the page: {errors}"
