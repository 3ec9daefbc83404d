"""The web demo's request handling (oldphoto_gradio.service) and its user-facing error paths,
without a server: what a visitor is told for each thing that can go wrong."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from oldphoto.errors import InputError, WeightsError
from oldphoto_gradio import service
from oldphoto_gradio.gpu import MAX_SECONDS, MIN_SECONDS, gpu_seconds, on_gpu


def photo_file(path, size=(120, 80), mode="RGB"):
    Image.new(mode, size, 128).save(path)
    return path


def test_no_photo():
    with pytest.raises(service.UserError, match="Upload a photo first"):
        service.prepare_photo(None)


def test_bad_and_truncated_files(tmp_path):
    bad = tmp_path / "scan.jpg"
    bad.write_bytes(b"GIF89a but not really")
    with pytest.raises(InputError, match="not a readable image"):
        service.prepare_photo(bad)
    good = photo_file(tmp_path / "good.png", (300, 200))
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:100])
    with pytest.raises(InputError, match="corrupt or truncated"):
        service.prepare_photo(cut)


def test_photo_within_the_cap_is_untouched(tmp_path):
    p = service.prepare_photo(photo_file(tmp_path / "a.png", (300, 200)), max_side=300)
    assert p.photo.size == (300, 200) and p.original_size == (300, 200) and p.notices == []
    assert p.name == "a"


def test_oversized_photo_is_downscaled_with_a_notice(tmp_path):
    p = service.prepare_photo(photo_file(tmp_path / "big.png", (1500, 1000)), max_side=1024)
    assert p.photo.size == (1024, 683) and p.original_size == (1500, 1000)
    assert len(p.notices) == 1
    assert "1500×1000" in p.notices[0] and "1024×683" in p.notices[0] and "oldphoto restore" in p.notices[0]
    # portrait photos are capped on their long side too
    tall = service.prepare_photo(photo_file(tmp_path / "tall.png", (500, 2000)), max_side=1000)
    assert tall.photo.size == (250, 1000)


def test_no_cap(tmp_path):
    p = service.prepare_photo(photo_file(tmp_path / "big.png", (1500, 1000)), max_side=0)
    assert p.photo.size == (1500, 1000) and p.notices == []


def test_photo_beyond_the_library_limit_is_refused_with_the_limit(tmp_path):
    huge = photo_file(tmp_path / "huge.png", (9000, 8000), mode="1")  # 72 MP, tiny file
    with pytest.raises(InputError, match="too large .* the limit is 64 MP"):
        service.prepare_photo(huge)


def test_editor_preview_is_capped(tmp_path):
    img = Image.new("RGB", (3000, 1500))
    assert service.editor_preview(img).size == (1024, 512)
    small = Image.new("RGB", (200, 100))
    assert service.editor_preview(small) is small


def test_requests_for_each_scratch_option(tmp_path):
    p = service.prepare_photo(photo_file(tmp_path / "a.png", (40, 30)))
    assert service.build_request(p, "none", None, hr=False, faces=True) == service.Request("none", None, False, True)
    assert service.build_request(p, "auto", None, hr=True, faces=False) == service.Request("auto", None, True, False)
    layer = np.zeros((15, 20, 4), np.uint8)
    layer[0:5, 0:10, 3] = 255
    req = service.build_request(p, "paint", {"layers": [layer]}, hr=False, faces=False)
    assert req.scratches == "none" and req.mask.shape == (30, 40) and req.mask[:10, :20].all()
    assert req.mask.sum() == 200
    with pytest.raises(service.UserError, match="nothing is painted yet"):
        service.build_request(p, "paint", {"layers": [np.zeros((15, 20, 4), np.uint8)]}, hr=False, faces=False)
    with pytest.raises(service.UserError, match="Unknown scratch option"):
        service.build_request(p, "everything", None, hr=False, faces=False)


def test_user_messages():
    weights = service.user_message(WeightsError("Weights file for 'vae_a_quality' not found: /w/x"))
    assert weights.startswith("The model weights are not available.")
    assert "vae_a_quality" in weights and "oldphoto weights download" in weights and "--weights-dir" in weights
    advised = service.user_message(WeightsError("x: run `oldphoto weights download` or pass --weights-dir DIR."))
    assert advised.count("oldphoto weights download") == 1  # the resolver's advice is not repeated
    assert service.user_message(InputError("a.png: bad")) == "a.png: bad"
    unexpected = service.user_message(RuntimeError("CUDA out of memory"))
    assert "RuntimeError: CUDA out of memory" in unexpected and "server log" in unexpected


def test_restorer_is_made_once_and_lazily():
    made = []
    holder = service.RestorerHolder(lambda: made.append(1) or object())
    assert made == []
    assert holder.get() is holder.get() and made == [1]


def test_gpu_duration_grows_with_size_and_options():
    small, big = Image.new("RGB", (256, 256)), Image.new("RGB", (1024, 1024))
    assert MIN_SECONDS <= gpu_seconds(small, None, "none", False, False) < gpu_seconds(big, None, "none", False, False)
    assert gpu_seconds(big, None, "auto", False, True) > gpu_seconds(big, None, "none", False, True)
    assert gpu_seconds(big, np.zeros((2, 2), bool), "none", True, True) > gpu_seconds(big, None, "none", False, True)
    assert gpu_seconds(Image.new("RGB", (8000, 8000)), None, "auto", True, True) == MAX_SECONDS


def test_without_spaces_the_gpu_wrapper_is_a_no_op():
    """Local runs and non-ZeroGPU machines have no ``spaces`` package: the function runs as is."""
    try:
        import spaces  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("the spaces package is installed here")

    def f(x):
        return x

    assert on_gpu(f) is f


def test_preload_loads_every_mode_or_reports_what_is_missing(seeded_weights_dir, seeded_guided_weights_dir,
                                                             tmp_path):
    from oldphoto import Restorer

    r = Restorer(device="cpu", weights_dir=seeded_guided_weights_dir)
    assert service.preload_networks(r, colorize_model="tiny") == []
    problems = service.preload_networks(Restorer(device="cpu", weights_dir=tmp_path), colorize_model="tiny")
    assert len(problems) == 6
    assert all("vae_a_quality" in p or "detection_unet" in p or "exemplar" in p or "siggraph17" in p
               for p in problems)
    no_colour = service.preload_networks(Restorer(device="cpu", weights_dir=seeded_weights_dir),
                                         colorize_model="tiny")
    assert len(no_colour) == 3
    assert "ddcolor_paper_tiny" in no_colour[0] and "exemplar" in no_colour[1] and "siggraph17" in no_colour[2]


def test_the_queue_protects_the_machine(tmp_path):
    """One restoration at a time (detection shares the slot), a bounded waiting line."""
    from oldphoto_gradio.app import QUEUE_MAX_SIZE, build_app

    demo = build_app(weights_dir=tmp_path)
    assert demo._queue.max_size == QUEUE_MAX_SIZE
    heavy = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name in ("restore", "detect_into_editor")}
    assert set(heavy) == {"restore", "detect_into_editor"}
    for fn in heavy.values():
        assert fn.concurrency_limit == 1 and fn.concurrency_id == "restore"


def test_package_result_writes_the_png_and_collects_intermediates(tmp_path):
    from oldphoto.pipeline import RestoreResult
    from oldphoto.stages.faces import FaceResult

    prepared = service.prepare_photo(photo_file(tmp_path / "Oma 1931.png", (1500, 1000)), max_side=300)
    image = Image.new("RGB", prepared.photo.size, (10, 20, 30))
    mask = np.zeros((200, 304), bool)
    mask[:50] = True
    crop = np.full((256, 256, 3), 7, np.uint8)
    face = FaceResult(box=(0, 0, 9, 9), score=0.9, landmarks=np.zeros((5, 2)), transform=np.eye(3),
                      aligned=crop, enhanced=crop + 1)
    result = RestoreResult(image=image, global_image=image, processed_input=image, mask=mask,
                           mask_source="detected", faces=[face] * 20, timings={"restore": 1.5, "faces": 2.0})
    out = service.package_result(prepared, result, tmp_path / "out")
    assert out.download == tmp_path / "out" / "Oma 1931_restored.png"
    with Image.open(out.download) as png:
        assert png.format == "PNG" and png.size == (300, 200) and png.getpixel((0, 0)) == (10, 20, 30)
    assert out.before is prepared.photo and out.after is image
    assert out.mask.mode == "L" and np.asarray(out.mask)[:50].min() == 255 and np.asarray(out.mask)[50:].max() == 0
    assert len(out.faces) == 2 * service.MAX_FACES_SHOWN
    assert out.faces[0][1] == "Face 1: before" and (out.faces[1][0] == 8).all()
    assert "downscaled to 300×200" in out.summary and "25.0% of the photo" in out.summary
    assert "20 face(s) enhanced" in out.summary and "3.5 s" in out.summary


def test_result_store_prunes_old_results(tmp_path):
    import os
    import time

    store = service.ResultStore(tmp_path, max_age_s=60)
    old, recent = store.new_folder(), store.new_folder()
    (old / "a_restored.png").write_bytes(b"x")
    past = time.time() - 120
    os.utime(old, (past, past))
    fresh = store.new_folder()  # each new request prunes
    assert not old.exists() and recent.exists() and fresh.exists() and fresh.parent == tmp_path


def test_demo_subcommand_is_registered_with_its_options():
    from oldphoto.cli import build_parser
    from oldphoto_gradio import cli as demo_cli

    args = build_parser().parse_args(["demo", "--port", "7999", "--weights-dir", "w", "--max-side", "0"])
    assert args.func is demo_cli.run
    assert (args.host, args.port, args.weights_dir, args.max_side, args.device) == ("127.0.0.1", 7999, "w", 0, "auto")
    defaults = build_parser().parse_args(["demo"])
    assert (defaults.port, defaults.max_side, defaults.no_examples) == (7860, service.DEFAULT_MAX_SIDE, False)


def test_kept_results_are_bounded_and_requests_carry_the_adjustments():
    """The sliders' store keeps the latest sessions only (a public demo's memory stays bounded)."""
    kept = service.KeptResults(max_sessions=2)
    for key in "abc":
        kept.put(key, key, key)  # type: ignore[arg-type]
    assert kept.get("a") is None and kept.get("c") == ("c", "c")
    kept.forget("c")
    assert kept.get("c") is None
    p = service.prepare_photo(Image.new("RGB", (32, 24)))
    req = service.build_request(p, "none", None, hr=False, faces=True, strength=0.5, mask_grow=3)
    assert req.adjust == {"strength": 0.5, "face_strength": 1.0, "scratch_threshold": 0.4, "mask_grow": 3}


def test_editor_images_are_written_once_per_content(tmp_path):
    """The same pixels give the same file, never rewritten (a browser may be reading it)."""
    store = service.ResultStore(tmp_path)
    img = Image.new("RGB", (20, 10), (10, 200, 30))
    first = store.image_file(img)
    inode, mtime = os.stat(first).st_ino, os.stat(first).st_mtime_ns
    again = store.image_file(img.copy())
    assert again == first and os.stat(again).st_ino == inode and os.stat(again).st_mtime_ns == mtime
    other = store.image_file(Image.new("RGB", (20, 10), (0, 0, 0)))
    assert other != first
    with Image.open(first) as im:
        assert im.size == (20, 10) and im.getpixel((3, 3)) == (10, 200, 30)
    assert not [p for p in (tmp_path / "editor").iterdir() if p.name.endswith(".part")]


def test_colour_options_become_restore_keywords(tmp_path):
    """No colour by default; "auto" on a grey photo gives the library's keywords; unknown values are
    refused with the choices named."""
    grey = service.prepare_photo(Image.new("RGB", (40, 30), (90, 90, 90)))
    assert service.build_request(grey, "none", None, hr=False, faces=False).color == {}
    req = service.build_request(grey, "none", None, hr=False, faces=False, colorize="auto", colorize_model="tiny",
                                color_strength=0.5)
    assert req.color == {"colorize": "auto", "colorize_model": "tiny", "color_strength": 0.5} and req.notices == []
    assert service.color_request(grey.photo, None, None)[0] == {}  # an API call without the colour options
    assert service.color_request(grey.photo, "auto", None)[0]["colorize_model"] == "modelscope"
    with pytest.raises(service.UserError, match="Unknown colour option 'sepia'; use one of: none, auto"):
        service.color_request(grey.photo, "sepia")
    with pytest.raises(service.UserError, match="Unknown colour model 'large'; use one of: modelscope, paper, "
                                                "artistic, tiny"):
        service.color_request(grey.photo, "auto", "large")
    # the form's choices are exactly the values the messages name
    assert [v for _, v in service.COLOR_MODELS] == ["modelscope", "paper", "artistic", "tiny"]


def test_a_colour_photo_keeps_its_colour_unless_the_user_asks(tmp_path):
    """"Only if the photo is grey" (the default) leaves a colour photo's colour alone and says how to
    replace it; "replace" colourises it from its lightness (the library's note says so)."""
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[:, :20] = (200, 120, 40)  # orange and blue: colours of its own, not a tint
    rgb[:, 20:] = (40, 90, 200)
    colour = service.prepare_photo(Image.fromarray(rgb))
    color, notices = service.color_request(colour.photo, "auto", "tiny")
    assert color == {} and len(notices) == 1
    assert "already has colour" in notices[0] and "Replace the existing colour" in notices[0]
    color, notices = service.color_request(colour.photo, "auto", "tiny", existing_color="replace")
    assert color["colorize"] == "auto" and notices == []
    sepia = np.stack([np.full((30, 40), v, np.uint8) for v in (112, 100, 80)], axis=2)
    from oldphoto.stages.colorize import is_grey

    # whatever the library counts as grey (R=G=B always; sepia is its call) is colourised by default
    assert service.color_request(Image.new("RGB", (40, 30), (70, 70, 70)), "auto")[0]["colorize"] == "auto"
    assert bool(service.color_request(Image.fromarray(sepia), "auto")[0]) == is_grey(Image.fromarray(sepia))


def test_gpu_duration_counts_colour():
    big = Image.new("RGB", (1024, 1024))
    plain = gpu_seconds(big, None, "none", False, False, None, None, {}, {})
    coloured = gpu_seconds(big, None, "none", False, False, None, None, {}, {"colorize": "auto"})
    assert coloured > plain == gpu_seconds(big, None, "none", False, False)


def test_reference_and_points_become_restore_keywords(tmp_path):
    """"From a reference photo" passes the uploaded file on and needs one; "With colour points" parses
    the points field (JSON, as the CLI's hints file) and passes the points on."""
    grey = service.prepare_photo(Image.new("RGB", (40, 30), (90, 90, 90)))
    ref = photo_file(tmp_path / "ref.png", (64, 48))
    req = service.build_request(grey, "none", None, hr=False, faces=False, colorize="reference", reference=ref)
    assert req.color["colorize"] == "reference" and req.color["reference"] == str(ref)
    with pytest.raises(service.UserError, match="none is uploaded"):
        service.color_request(grey.photo, "reference")
    color, _ = service.color_request(grey.photo, "points", hints='[[3, 4, "#FF0000"], {"x": 39, "y": 29, "color": "#00ff00"}]')
    assert color["colorize"] == "points" and color["hints"] == [(3, 4, "#FF0000"), (39, 29, "#00ff00")]
    assert service.color_request(grey.photo, "points", hints="")[0]["hints"] == []  # no points: the model's own guess
    assert service.color_request(grey.photo, "points", hints=None)[0]["hints"] == []


def test_bad_points_and_references_get_the_library_message(tmp_path):
    """Each mistake a visitor or an API client can make gets one line that names it."""
    grey = service.prepare_photo(Image.new("RGB", (40, 30), (90, 90, 90)))
    with pytest.raises(service.UserError, match=r"^Colour points: not valid JSON .*\[\[x, y, \"#rrggbb\"\]"):
        service.color_request(grey.photo, "points", hints="[[1, 2")
    with pytest.raises(InputError, match=r"^Colour points: point 1 must be \[x, y"):
        service.color_request(grey.photo, "points", hints="[[1, 2]]")
    with pytest.raises(InputError, match=r"^Colour point 2 at \(40, 5\) is outside the photo \(40x30"):
        service.color_request(grey.photo, "points", hints='[[1, 2, "#ff0000"], [40, 5, "#ff0000"]]')
    with pytest.raises(InputError, match=r"^Colour point 1 at \(1, 2\) has a bad colour 'red'"):
        service.color_request(grey.photo, "points", hints='[[1, 2, "red"]]')
    bad = tmp_path / "ref.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(InputError, match=r"^Reference photo: .*not a readable image"):
        service.check_reference(bad)
    with pytest.raises(InputError, match="reference photo is too small"):
        service.check_reference(photo_file(tmp_path / "tiny.png", (4, 4)))
    service.check_reference(photo_file(tmp_path / "ok.png", (64, 48)))  # a usable one passes


def test_points_are_given_on_the_full_size_photo(tmp_path):
    """Points are in pixels of the uploaded photo: when the demo downscales it, they move with it,
    and they are checked against the upload's size (so the message names the user's numbers)."""
    big = service.prepare_photo(photo_file(tmp_path / "big.png", (400, 200)), max_side=100)
    assert big.photo.size == (100, 50)
    color, _ = service.color_request(big.photo, "points", "modelscope", hints='[[399, 199, "#ff0000"], [200, 100, "#00ff00"]]',
                                     original_size=big.original_size)
    assert color["hints"] == [(99, 49, "#ff0000"), (50.0, 25.0, "#00ff00")]
    with pytest.raises(InputError, match=r"\(400, 10\) is outside the photo \(400x200"):
        service.color_request(big.photo, "points", hints='[[400, 10, "#ff0000"]]', original_size=big.original_size)


def test_a_click_on_the_preview_is_a_full_resolution_point():
    """The click-to-place preview is at most EDITOR_MAX_SIDE; a click maps to the photo's own pixel."""
    assert service.click_to_point([10, 20], (100, 50), (400, 200)) == (42, 82)  # pixel centre 10.5 * 4
    assert service.click_to_point([99, 49], (100, 50), (400, 200)) == (398, 198)  # the pixel centre
    assert service.click_to_point([0, 0], (100, 50), (100, 50)) == (0, 0)
    assert service.click_to_point([100, 5], (100, 50), (400, 200)) is None  # outside the photo
    assert service.click_to_point(None, (100, 50), (400, 200)) is None
    assert service.points_json([(42.4, 81.6, "#3A6EA5")]) == '[[42, 82, "#3A6EA5"]]'


def test_points_are_drawn_where_they_are_in_their_colour():
    photo = Image.new("RGB", (2000, 1000), (128, 128, 128))
    preview = service.points_preview(photo, [(1000, 500, "#ff0000"), (100, 900, "#00ff00")], (2000, 1000))
    assert preview.size == (service.EDITOR_MAX_SIDE, 512)
    assert preview.getpixel((512, 256)) == (255, 0, 0)
    assert preview.getpixel((51, 461)) == (0, 255, 0)
    assert preview.getpixel((300, 300)) == (128, 128, 128)  # the photo elsewhere
    assert photo.getpixel((1000, 500)) == (128, 128, 128)  # the photo itself is not drawn on
