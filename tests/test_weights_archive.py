"""The last step of the weights chain: one member of a release zip, read with HTTP ranges.

Small archives (the three small VAEs as official pickles, plus a discriminator-sized filler the
official zips also carry) behind the fake host's GitHub-like 302 to a CDN path. Each fault ends
with one line naming the component, and leaves nothing in any cache or temp folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from oldphoto import weights
from oldphoto.errors import WeightsError

from .hub_server import FakeHub
from .test_weights_support import ENV_VARS, REPO, cache_files, clean_env, official_pickle
from .world import registry_for, release_path

VAE = "vae_a_quality"
SMALL = ("vae_a_quality", "vae_b_quality", "vae_b_scratch")
FILLER = "checkpoints/restoration/VAE_A_quality/latest_net_D.pth"


@pytest.fixture(scope="module")
def pickles(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pickles")
    return {c: official_pickle(c, root / weights.component_spec(c).upstream.path) for c in SMALL}


def make_zip(path: Path, pickles: dict[str, Path], *, top: str = "", members: dict[str, str] | None = None,
             method: int = zipfile.ZIP_DEFLATED) -> Path:
    """A global_checkpoints.zip look-alike: the small members plus 6 MB of incompressible filler."""
    with zipfile.ZipFile(path, "w", method, compresslevel=1) as zf:
        for c, p in pickles.items():
            zf.write(p, top + (members or {}).get(c, weights.component_spec(c).upstream.member))
        zf.writestr(top + FILLER, os.urandom(6 << 20))
    return path


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    clean_env(monkeypatch, tmp_path / "hf")
    return tmp_path / "hf"


def serve(hub: FakeHub, tmp: Path, archive: Path, monkeypatch, *, ranges: bool = True) -> str:
    """Put ``archive`` at the global zip's release URL on ``hub``; the mirror does not exist."""
    url = weights.registry().archives["global_checkpoints.zip"]["url"]
    hub.add_release(release_path(url), archive, ranges=ranges)
    monkeypatch.setenv("OLDPHOTO_WEIGHTS_JSON", str(registry_for(hub, tmp)))
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    return "/cdn" + ("" if ranges else "-norange") + "/"


def left_behind(home: Path) -> list[str]:
    return cache_files(home)


def test_one_member_is_read_with_ranges_after_a_redirect(home, tmp_path, pickles, monkeypatch, caplog):
    archive = make_zip(tmp_path / "g.zip", pickles)
    with FakeHub() as hub:
        cdn = serve(hub, tmp_path, archive, monkeypatch)
        with caplog.at_level("WARNING", logger="oldphoto.weights"):
            path = weights.resolve(VAE)
        assert path.parent == weights.converted_dir()
        assert len(weights.load_state_dict(VAE)) == 44
        info = zipfile.ZipFile(archive).getinfo(weights.component_spec(VAE).upstream.member)
        ranges = hub.served_ranges(cdn)
        size = archive.stat().st_size
        # the tail (central directory), then one stream over exactly the member's extent
        assert ranges[0] == (max(0, size - 64 * 1024 - 22), size)
        assert len(ranges) == 2 and ranges[1][0] == info.header_offset
        assert ranges[1][1] - ranges[1][0] < info.compress_size + 2048 and ranges[1][1] <= ranges[0][0]
        assert sum(b - a for a, b in ranges) < 0.6 * size
        line = [r.getMessage() for r in caplog.records if "release archive" in r.getMessage()]
        assert len(line) == 1 and line[0].startswith(f"{VAE}: not on the Hub yet") and "MB" in line[0]
        # where it came from, for `weights status`
        st = {s.component: s for s in weights.status()}
        assert st[VAE].path == path and st[VAE].source == "a release archive + local conversion"
        assert st["vae_b_quality"].path is None
        # cached now: no request at all, also offline
        n = len(hub.requests)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        assert weights.resolve(VAE) == path and len(hub.requests) == n


def test_server_ignoring_range_streams_the_archive_once(home, tmp_path, pickles, monkeypatch, caplog):
    archive = make_zip(tmp_path / "g.zip", pickles)
    with FakeHub() as hub:
        cdn = serve(hub, tmp_path, archive, monkeypatch, ranges=False)
        with caplog.at_level("WARNING", logger="oldphoto.weights"):
            got = weights.download(components=["vae_a_quality", "vae_b_quality"])
        assert set(got) == {"vae_a_quality", "vae_b_quality"}
        # one whole download, reused for the second member
        assert [p for m, p in hub.requests if p.startswith(cdn)] == [hub.cdn_path(archive)]
        assert any("does not serve byte ranges" in r.getMessage() for r in caplog.records)
    assert sorted(left_behind(home)) == sorted(
        f"oldphoto/converted/{c}.safetensors{x}" for c in got for x in ("", ".origin.json"))


def test_member_lookup_allows_an_extra_folder_and_says_what_an_archive_holds(home, tmp_path, pickles, monkeypatch):
    archive = make_zip(tmp_path / "g.zip", pickles, top="Global/")
    with FakeHub() as hub:
        serve(hub, tmp_path, archive, monkeypatch)
        assert weights.resolve(VAE).is_file()
    moved = {VAE: "old/VAE_A_quality/latest_net_G.pth", "vae_b_quality": "somewhere/else.pth"}
    archive2 = make_zip(tmp_path / "g2.zip", pickles, members=moved)
    with FakeHub() as hub:
        serve(hub, tmp_path, archive2, monkeypatch)
        os.environ["OLDPHOTO_CACHE"] = str(tmp_path / "c2")
        try:
            assert weights.resolve(VAE).is_file()  # same folder and file name: found, with a note
            with pytest.raises(WeightsError) as err:
                weights.resolve("vae_b_quality")
        finally:
            del os.environ["OLDPHOTO_CACHE"]
    msg = str(err.value)
    assert "vae_b_quality" in msg and "somewhere/else.pth" in msg and "--weights-dir" in msg


def test_mirror_revision_gone_falls_through_to_the_archive(home, tmp_path, pickles, monkeypatch):
    archive = make_zip(tmp_path / "g.zip", pickles)
    with FakeHub() as hub:
        cdn = serve(hub, tmp_path, archive, monkeypatch)
        reg = weights.registry()
        hub.add_commit(reg.mirror_repo_id, {weights.component_spec(VAE).upstream.path: pickles[VAE]})  # not pinned
        assert weights.resolve(VAE).is_file()
        assert any(reg.mirror_revision in p for m, p in hub.requests)  # asked the mirror at the pin first
        assert hub.served_ranges(cdn)


@pytest.mark.parametrize("fault", ["truncate", "500", "crc", "loop"])
def test_faults_leave_nothing_and_the_next_run_starts_clean(fault, home, tmp_path, pickles, monkeypatch):
    method = zipfile.ZIP_STORED if fault == "crc" else zipfile.ZIP_DEFLATED
    archive = make_zip(tmp_path / "g.zip", pickles, method=method)
    good = archive.read_bytes()
    with FakeHub() as hub:
        cdn = serve(hub, tmp_path, archive, monkeypatch)
        if fault == "crc":  # one flipped byte inside the member's data, headers intact
            info = zipfile.ZipFile(archive).getinfo(weights.component_spec(VAE).upstream.member)
            bad = bytearray(good)
            bad[info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2] ^= 0xFF
            archive.write_bytes(bytes(bad))
        elif fault == "loop":
            url = weights.registry().archives["global_checkpoints.zip"]["url"]
            hub.add_redirect_loop(release_path(url))
        else:  # the tail read passes; the member's stream fails
            hub.fail(fault, match=cdn, skip=1)
        with pytest.raises(WeightsError) as err:
            weights.resolve(VAE)
        msg = str(err.value)
        assert msg.startswith(f"'{VAE}'") and "\n" not in msg and "Nothing was kept" in msg
        assert {"truncate": "connection", "500": "HTTP 500", "crc": "damaged", "loop": "loop"}[fault] in msg
        assert left_behind(home) == []
        archive.write_bytes(good)
        if fault == "loop":
            hub.releases.pop(release_path(url))
            serve(hub, tmp_path, archive, monkeypatch)
        assert len(weights.load_state_dict(VAE)) == 44


def cli(args: list[str], env: dict[str, str], **kw) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    full.update(env)
    return subprocess.Popen([sys.executable, "-c", *args], env=full, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


DOWNLOAD = "import sys; from oldphoto.cli import main; sys.exit(main(['weights', 'download', '--component', '{c}']))"
FULL_DISK = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
             "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20)); ") + DOWNLOAD.split("; ", 1)[1]


def test_full_disk_and_ctrl_c_leave_nothing(tmp_path, pickles, monkeypatch):
    home, tmpdir = tmp_path / "hf", tmp_path / "tmp"
    tmpdir.mkdir()
    clean_env(monkeypatch, home)
    archive = make_zip(tmp_path / "g.zip", pickles)
    with FakeHub() as hub:
        cdn = serve(hub, tmp_path, archive, monkeypatch)
        env = {"HF_HOME": str(home), "HF_ENDPOINT": hub.url, "TMPDIR": str(tmpdir),
               "OLDPHOTO_WEIGHTS_JSON": os.environ["OLDPHOTO_WEIGHTS_JSON"], "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        # a file-size limit: writes past 1 MB fail like a full disk (EFBIG instead of ENOSPC)
        p = cli([FULL_DISK.format(c=VAE)], env)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 1, err
        assert f"'{VAE}'" in err and "no room to write it" in err and "Traceback" not in err
        assert left_behind(home) == [] and list(tmpdir.iterdir()) == []
        # Ctrl-C while the member is streaming (the host stalls half-way)
        hub.fail("stall", match=cdn, skip=1)
        n0 = len(hub.served_ranges(cdn))
        p = cli([DOWNLOAD.format(c=VAE)], env)
        deadline = time.monotonic() + 60
        while len(hub.served_ranges(cdn)) < n0 + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err and len(err.strip().splitlines()) <= 3
        assert left_behind(home) == [] and list(tmpdir.iterdir()) == []
        # the next run starts clean and shows a progress bar of the archive read
        env["HF_HUB_DISABLE_PROGRESS_BARS"] = "0"
        p = cli([DOWNLOAD.format(c=VAE)], env)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert f"{VAE}: " in err and "B/s" in err  # tqdm: bytes, rate
        st = cli(["import sys; from oldphoto.cli import main; sys.exit(main(['weights', 'status']))"], env)
        out, err = st.communicate(timeout=60)
        assert st.returncode == 0, err
        lines = {ln.split()[0]: ln for ln in out.splitlines()}
        assert set(lines) == set(weights.registry().components)
        assert "release archive" in lines[VAE] and "manifest" in lines[VAE] and "3.5 MB" in lines[VAE]
        assert "not downloaded" in lines["face_gen_256"] and "368.7 MB" in lines["face_gen_256"]
