"""Weights of the guided colour models through the real chain, against the fake release host.

* Deep Exemplar: the three inference members are range-read from ``colorization_checkpoint.zip``;
  the 575 MB grey VGG the zip also carries (here an incompressible stand-in) is never downloaded.
* SIGGRAPH17: a plain file at a URL, checked against the published sha256 before conversion.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from oldphoto import weights
from oldphoto.errors import WeightsError

from .hub_server import FakeHub
from .test_weights_support import clean_env
from .world import checkpoint_bytes, registry_for, release_path

EXEMPLAR = ("exemplar_vgg19", "exemplar_nonlocal", "exemplar_colornet")
ZIP = "colorization_checkpoint.zip"
GREY_VGG = "data/vgg19_gray.pth"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    clean_env(monkeypatch, tmp_path / "hf")
    return tmp_path / "hf"


def _exemplar_zip(path: Path) -> Path:
    """Members at the README's layout, plus the grey VGG and the discriminator nobody reads."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for c in EXEMPLAR:
            zf.writestr(weights.component_spec(c).official.path, checkpoint_bytes(c))
        zf.writestr(GREY_VGG, os.urandom(8 << 20))
        zf.writestr("checkpoints/video_moredata_l1/discriminator_iter_76000.pth", os.urandom(1 << 20))
    return path


def test_exemplar_members_are_range_read_and_the_grey_vgg_never(home, tmp_path, monkeypatch):
    archive = _exemplar_zip(tmp_path / ZIP)
    grey = zipfile.ZipFile(archive).getinfo(GREY_VGG)
    grey_span = (grey.header_offset, grey.header_offset + grey.compress_size)
    with FakeHub() as hub:
        hub.add_release(release_path(weights.registry().archives[ZIP]["url"]), archive)
        monkeypatch.setenv("OLDPHOTO_WEIGHTS_JSON", str(registry_for(hub, tmp_path)))
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        for c in EXEMPLAR:
            sd = weights.load_state_dict(c)
            assert set(sd) == {n for n, _, _ in weights.load_manifest(c).tensors}
        ranges = hub.served_ranges("/cdn/")
        assert ranges, "the archive was not range-read"
        # at most the read-ahead past a neighbouring member's end touches the grey VGG's bytes
        overlap = sum(max(0, min(b, grey_span[1]) - max(a, grey_span[0])) for a, b in ranges)
        assert overlap <= 4096, (ranges, grey_span)
        assert sum(b - a for a, b in ranges) < archive.stat().st_size - grey.compress_size + 64 * 1024
        st = {s.component: s for s in weights.status()}
        assert all(st[c].path is not None and "release archive" in st[c].source for c in EXEMPLAR)


def test_siggraph17_downloads_checks_sha256_and_converts(home, tmp_path, monkeypatch):
    pth = tmp_path / "siggraph17-df00044c.pth"
    pth.write_bytes(checkpoint_bytes("siggraph17"))
    with FakeHub() as hub:
        url = weights.component_spec("siggraph17").sources[1].urls[0]
        hub.add_release(release_path(url), pth)
        reg_path = registry_for(hub, tmp_path)
        monkeypatch.setenv("OLDPHOTO_WEIGHTS_JSON", str(reg_path))
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        # registry_for moves only the archives onto the fake host: move the URL source too
        data = json.loads(reg_path.read_text())
        src = data["components"]["siggraph17"]["sources"][1]
        src["urls"] = [hub.url + release_path(u) for u in src["urls"]]
        good = tmp_path / "weights.sig.json"
        good.write_text(json.dumps(data))
        monkeypatch.setenv("OLDPHOTO_WEIGHTS_JSON", str(good))
        assert weights.component_spec("siggraph17").setting("mask_convention") == "0/1"
        sd = weights.load_state_dict("siggraph17")
        assert len(sd) == 107
        # a different file at the same URL is refused before conversion, in one line
        data["components"]["siggraph17"]["official"]["sha256"] = "f" * 64
        bad = tmp_path / "weights.bad.json"
        bad.write_text(json.dumps(data))
        monkeypatch.setenv("OLDPHOTO_WEIGHTS_JSON", str(bad))
        with pytest.raises(WeightsError) as exc:
            weights.resolve("siggraph17", cache_dir=tmp_path / "other-cache", force_download=True)
        assert "sha256" in str(exc.value) and "\n" not in str(exc.value).strip()


def test_download_modes_fetch_the_guided_models_only_when_asked():
    assert not set(weights.components_for_modes(["all"])) & {*EXEMPLAR, "siggraph17"}
    assert weights.components_for_modes(["reference"]) == list(EXEMPLAR)
    assert weights.components_for_modes(["points"]) == ["siggraph17"]
