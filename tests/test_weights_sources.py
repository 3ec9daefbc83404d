"""Several sources per file (weights.json schema 3): the chain moves on, refuses wrong files, the
cross-check names sources that disagree, and ``weights import`` fills the cache for offline runs.

Small components (the three VAEs, 3.5 MB each, seeded) keep each test to seconds. Every host is
the fake Hub / release host on 127.0.0.1 (:mod:`tests.hub_server`), serving the Hub repos and
release URLs that weights.json lists, at the same paths.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oldphoto import weights
from oldphoto.errors import WeightsError
from oldphoto.weights.convert import convert_file

from .hub_server import FakeHub
from .test_weights_support import cache_files, clean_env, official_pickle, run_cli
from .world import checkpoint_bytes, registry_for, release_path

VAE = "vae_a_quality"
GLOBAL = "global_checkpoints.zip"


def sha(path: Path | bytes) -> str:
    return hashlib.sha256(path if isinstance(path, bytes) else Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def pickles(tmp_path_factory) -> dict[str, Path]:
    """The good official pickle of each small VAE, a copy that differs (other seed: a wrong upload),
    and one with a tensor missing (a wrong file under the right name)."""
    import torch

    from oldphoto.seeded import seeded_state_dict

    root = tmp_path_factory.mktemp("sources")
    out = {c: official_pickle(c, root / "good" / c / "latest_net_G.pth") for c in ("vae_a_quality", "vae_b_quality")}
    for c in ("vae_a_quality", "vae_b_quality"):
        state = {k: v + 0.5 if v.is_floating_point() else v for k, v in seeded_state_dict(c).items()}
        (root / "other" / c).mkdir(parents=True)
        torch.save(state, root / "other" / c / "latest_net_G.pth")
        out[f"{c}:other"] = root / "other" / c / "latest_net_G.pth"
    state = seeded_state_dict(VAE)
    state.pop(next(iter(state)))
    (root / "wrong").mkdir()
    torch.save(state, root / "wrong" / "latest_net_G.pth")
    out["wrong"] = root / "wrong" / "latest_net_G.pth"
    return out


@pytest.fixture(scope="module")
def converted(pickles, tmp_path_factory) -> dict[str, str]:
    """sha256 of the conversion of each pickle (what a good source must give)."""
    out = tmp_path_factory.mktemp("conv")
    return {k: convert_file(p, k.split(":")[0] if ":" in k else k, out / k.replace(":", "_")).sha256
            for k, p in pickles.items() if k != "wrong"}


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    clean_env(monkeypatch, tmp_path / "hf")
    return tmp_path / "hf"


def source(component: str, repo: str) -> weights.Source:
    return next(s for s in weights.component_spec(component).sources if s.repo_id == repo)


def urls(arch: str) -> list[str]:
    return weights.registry().archives[arch]["urls"]


def zip_with(path: Path, members: dict[str, Path]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for member, p in members.items():
            zf.write(p, member)
    return path


def use_registry(hub: FakeHub, tmp: Path, monkeypatch, **components: dict) -> None:
    """The world's weights.json for ``hub``, with per-component fields replaced (e.g. sha256s)."""
    import json

    path = registry_for(hub, tmp)
    data = json.loads(path.read_text())
    for name, fields in components.items():
        for k, v in fields.items():
            if isinstance(v, dict):
                data["components"][name][k].update(v)
            else:
                data["components"][name][k] = v
    path = tmp / f"weights.sources-{hub.url.rsplit(':', 1)[1]}.json"
    path.write_text(json.dumps(data))
    monkeypatch.setenv("OLDPHOTO_WEIGHTS_JSON", str(path))
    monkeypatch.setenv("HF_ENDPOINT", hub.url)


def lines_of(caplog, component: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{component}: ")]


def test_the_chain_moves_on_past_each_kind_of_dead_source(home, tmp_path, pickles, converted, monkeypatch, caplog):
    """Our repo 401, the mirror's pinned revision gone, Microsoft's URL 404, the re-hosted zip without
    the member, an unpinned copy with a wrong file: the next unpinned copy serves it, and says so."""
    member = weights.component_spec(VAE).upstream.member
    with FakeHub() as hub:
        use_registry(hub, tmp_path, monkeypatch)
        reg = weights.registry()
        hub.add_commit(reg.mirror_repo_id, {weights.component_spec(VAE).upstream.path: pickles[VAE]})  # not the pin
        hub.add_release(release_path(urls(GLOBAL)[1]),
                        zip_with(tmp_path / "g.zip", {member.replace(VAE.split("_")[0].upper(), "X"): pickles[VAE]}))
        fooocus, shiertier = source(VAE, "shaitanzx/FooocusExtend"), source(VAE, "shiertier/vae")
        hub.add_commit(fooocus.repo_id, {fooocus.path: pickles["wrong"]})
        hub.add_commit(shiertier.repo_id, {shiertier.path: pickles[VAE]})
        with caplog.at_level(logging.WARNING, logger="oldphoto.weights"):
            path = weights.resolve(VAE)
        assert sha(path) == converted[VAE] and path.parent == weights.converted_dir()
        lines = lines_of(caplog, VAE)
    # one line per source actually tried, each saying why the ones before it failed
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{VAE}: not on the Hub yet (RepositoryNotFoundError")
    assert "revision is gone (RevisionNotFoundError)" in lines[0] and "HTTP 404" in lines[0]
    assert f"{GLOBAL} at {hub.url}/Haoming02/" in lines[0] and "holds no" in lines[0]
    assert "downloading the official checkpoint from Hub repo shaitanzx/FooocusExtend@main, unpinned" in lines[0]
    assert "Cannot convert" in lines[1] and "missing" in lines[1]
    assert "from Hub repo shiertier/vae@main, unpinned" in lines[1] and "unpinned: commit" in lines[1]
    # status names the source that served it, unpinned
    st = {s.component: s for s in weights.status([VAE])}
    assert st[VAE].source == "a Hub mirror + local conversion"
    assert st[VAE].detail.startswith("shiertier/vae@") and st[VAE].detail.endswith("(unpinned)")
    # nothing else was kept: no temporary conversion, no pickle in the Hub cache
    conv = weights.converted_dir()
    assert sorted(p.name for p in conv.iterdir()) == [f"{VAE}.safetensors", f"{VAE}.safetensors.origin.json"]
    assert not any(p.endswith(".pth") for p in cache_files(home / "hub"))


def test_a_wrong_or_corrupt_file_is_refused_leaves_nothing_and_the_next_source_serves(
        home, tmp_path, pickles, converted, monkeypatch, caplog):
    """Known official sha256: a differing zip member is refused after extraction, a differing Hub
    file before download (its ETag). Known published sha256: a source whose conversion differs is
    refused by name. A body corrupted in transit is refused too. Each time the next source serves,
    and nothing refused is left in any cache."""
    vb = "vae_b_quality"
    with FakeHub() as hub:
        use_registry(hub, tmp_path, monkeypatch,
                     **{VAE: {"official": {"sha256": sha(pickles[VAE]), "size": pickles[VAE].stat().st_size}},
                        vb: {"sha256": converted[vb]}})
        hub.add_release(release_path(urls(GLOBAL)[0]), zip_with(tmp_path / "ms.zip", {
            weights.component_spec(VAE).upstream.member: pickles[f"{VAE}:other"],
            weights.component_spec(vb).upstream.member: pickles[f"{vb}:other"]}))
        fooocus, shiertier = "shaitanzx/FooocusExtend", "shiertier/vae"
        hub.add_commit(fooocus, {source(VAE, fooocus).path: pickles[f"{VAE}:other"], source(vb, fooocus).path: pickles[vb]})
        hub.add_commit(shiertier, {source(VAE, shiertier).path: pickles[VAE], source(vb, shiertier).path: pickles[vb]})
        hub.fail("corrupt", method="GET", match=source(vb, fooocus).path)
        with caplog.at_level(logging.WARNING, logger="oldphoto.weights"):
            assert sha(weights.resolve(VAE)) == converted[VAE]
            assert sha(weights.resolve(vb)) == converted[vb]
        a, b = lines_of(caplog, VAE), lines_of(caplog, vb)
        fooocus_gets = [p for m, p in hub.requests if m == "GET" and fooocus in p]
        commit = hub.repos[fooocus].refs["main"]
    assert len(a) == 2 and f"reading it from the release archive {GLOBAL} at {urls(GLOBAL)[0]}" in a[0], a
    assert "the official file's is" in a[1] and "refused" in a[1] and "HTTP 404" in a[1]
    assert f"{fooocus}@main, unpinned" in a[1] and "refused before downloading" in a[1]
    assert a[1].endswith("of main)") and f"from Hub repo {shiertier}@main" in a[1]
    assert fooocus_gets == [f"/{fooocus}/resolve/{commit}/{source(vb, fooocus).path}"]  # VAE A's was never fetched
    assert len(b) == 3, b
    assert "weights.json says" in b[1] and "differs from the one published" in b[1] and urls(GLOBAL)[0] in b[1]
    assert b[2].startswith(f"{vb}: Hub repo {fooocus}") and f"from Hub repo {shiertier}@main" in b[2]
    conv = weights.converted_dir()
    assert sorted(p.name for p in conv.iterdir()) == sorted(
        [f"{VAE}.safetensors", f"{VAE}.safetensors.origin.json", f"{vb}.safetensors", f"{vb}.safetensors.origin.json"])
    assert not any(p.endswith(".pth") for p in cache_files(home / "hub"))


def test_every_source_failing_is_one_line_naming_each(home, tmp_path, monkeypatch):
    with FakeHub() as hub:
        use_registry(hub, tmp_path, monkeypatch)
        with pytest.raises(WeightsError) as err:
            weights.resolve(VAE)
    msg = str(err.value)
    n = sum(len(weights.registry().archives[s.archive]["urls"]) if s.kind == "archive" else 1
            for s in weights.component_spec(VAE).sources)
    assert msg.startswith(f"'{VAE}' could not be fetched from any of its {n} sources") and "\n" not in msg
    for name in ("not on the Hub yet", "databuzzword", "microsoft", "Haoming02", "FooocusExtend", "shiertier/vae",
                 "zeroscratches", "weights import", "Nothing was kept"):
        assert name in msg, name
    assert cache_files(home) == []


def test_cross_check_names_the_sources_that_disagree(home, tmp_path, pickles, monkeypatch):
    with FakeHub() as hub:
        use_registry(hub, tmp_path, monkeypatch)
        reg = weights.registry()
        hub.add_commit(reg.mirror_repo_id, {weights.component_spec(VAE).upstream.path: pickles[VAE]},
                       commit=reg.mirror_revision)
        fooocus = source(VAE, "shaitanzx/FooocusExtend")
        hub.add_commit(fooocus.repo_id, {fooocus.path: pickles[f"{VAE}:other"]})
        env = {"HF_HOME": str(home), "HF_ENDPOINT": hub.url, "OLDPHOTO_WEIGHTS_JSON": str(reg.source)}
        assert run_cli(["download", "--component", VAE], env).returncode == 0
        cached = sha(weights.converted_dir() / f"{VAE}.safetensors")
        r = run_cli(["verify", "--cross-check", "--component", VAE], env)
        assert r.returncode == 1, r.stdout + r.stderr
        line = next(ln for ln in r.stdout.splitlines() if "cross-check" in ln)
        assert line.startswith("BAD") and "disagree" in line
        assert reg.mirror_repo_id in line and "shaitanzx/FooocusExtend" in line, line
        assert "HTTP 404" in r.stderr  # the release URLs before it were tried, and said why they failed
        # the copies agree once the odd one out serves the official file: exit 0
        hub.add_commit(fooocus.repo_id, {fooocus.path: pickles[VAE]})
        r = run_cli(["verify", "--cross-check", "--component", VAE], env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "ok  vae_a_quality" in r.stdout and "identical to the conversion from Hub repo shaitanzx" in r.stdout
    assert sha(weights.converted_dir() / f"{VAE}.safetensors") == cached  # the cache was not touched


def test_a_checkpoint_served_at_a_plain_url(home, tmp_path, pickles, converted, monkeypatch, caplog):
    """A ``{"urls": [...]}`` source (a .pth release asset, as SIGGRAPH17's): the dead URL is skipped,
    the next one downloaded, checked and converted."""
    import json

    with FakeHub() as hub:
        hub.add_release("/owner/repo/releases/download/v1/vae_a.pth", pickles[VAE])
        spec = json.loads(Path(weights.registry().source).read_text())["components"][VAE]
        spec["sources"] = [spec["sources"][0], {"urls": [f"{hub.url}/gone/vae_a.pth",
                                                         f"{hub.url}/owner/repo/releases/download/v1/vae_a.pth"]}]
        use_registry(hub, tmp_path, monkeypatch, **{VAE: {"sources": spec["sources"]}})
        with caplog.at_level(logging.WARNING, logger="oldphoto.weights"):
            path = weights.resolve(VAE)
    assert sha(path) == converted[VAE]
    (line,) = lines_of(caplog, VAE)
    assert f"{hub.url}/gone/vae_a.pth: the server answered HTTP 404" in line
    assert line.endswith(f"downloading {hub.url}/owner/repo/releases/download/v1/vae_a.pth and converting it "
                         f"locally ({pickles[VAE].stat().st_size / 1e6:.0f} MB)")
    st = weights.status([VAE])[0]
    assert st.source == "a download URL + local conversion" and st.detail.endswith("/v1/vae_a.pth")


QUALITY = ("vae_a_quality", "vae_b_quality", "mapping_quality")


@pytest.fixture(scope="module")
def quality_files(tmp_path_factory) -> dict[str, Path]:
    """The quality-mode pickles (compact, real sizes once converted) in the official layout."""
    root = tmp_path_factory.mktemp("official")
    out = {}
    for c in QUALITY:
        p = root / "Bringing-Old-Photos-Back-to-Life" / weights.component_spec(c).upstream.path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(checkpoint_bytes(c))
        out[c] = p
    return out


@pytest.mark.parametrize("form", ["zip", "folder"])
def test_import_then_an_offline_run(form, quality_files, tmp_path):
    """A user with the release zip (or the unpacked folder) and no working download: import, then
    restore offline with no --weights-dir."""
    home = tmp_path / "hf"
    if form == "zip":
        src = zip_with(tmp_path / GLOBAL, {weights.component_spec(c).upstream.member: p for c, p in quality_files.items()})
    else:
        src = next(iter(quality_files.values())).parents[4]  # the repository root holding Global/
        assert (src / "Global").is_dir()
    env = {"HF_HOME": str(home), "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "1"}
    r = run_cli(["import", str(src)], env)
    assert r.returncode == 0, r.stderr
    for c in QUALITY:
        assert f"ok  {c}" in r.stdout
    assert "not in" in r.stdout and "detection_unet" in r.stdout
    st = run_cli(["status"], env)
    lines = {ln.split()[0]: ln for ln in st.stdout.splitlines()}
    for c in QUALITY:
        assert "oldphoto weights import" in lines[c] and str(src) in lines[c], lines[c]
    photo = tmp_path / "p.png"
    Image.fromarray((np.random.default_rng(1).random((48, 64, 3)) * 255).astype(np.uint8)).save(photo)
    import subprocess
    import sys

    from .test_weights_support import ENV_VARS, REPO

    full = {k: v for k, v in __import__("os").environ.items() if k not in ENV_VARS}
    full.update(env, OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "oldphoto.cli", "restore", str(photo), "-o", str(tmp_path / "out"),
                        "--no-faces", "-q"], env=full, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "out" / "p.png").is_file()


def test_import_refuses_a_wrong_file_and_keeps_the_good_ones(home, tmp_path, pickles):
    folder = tmp_path / "drive" / "Global" / "checkpoints" / "restoration"
    for c, p in (("VAE_A_quality", pickles["wrong"]), ("VAE_B_quality", pickles["vae_b_quality"])):
        (folder / c).mkdir(parents=True)
        (folder / c / "latest_net_G.pth").write_bytes(p.read_bytes())
    r = run_cli(["import", str(tmp_path / "drive")], {"HF_HOME": str(home)})
    assert r.returncode == 1
    assert "ok  vae_b_quality" in r.stdout and "BAD 'vae_a_quality'" in r.stderr and "missing" in r.stderr
    assert sorted(p.name for p in weights.converted_dir().iterdir()) == [
        "vae_b_quality.safetensors", "vae_b_quality.safetensors.origin.json"]
    r = run_cli(["import", str(tmp_path / "nothing-here")], {"HF_HOME": str(home)})
    assert r.returncode == 1 and "no such file" in r.stderr and "Traceback" not in r.stderr
