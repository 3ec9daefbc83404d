"""The resolver against a local Hub look-alike, through the real ``huggingface_hub`` client.

Pins come from the package's weights.json (repo id, 40-hex revision, exact sizes); the fake Hub
serves commits with exactly those ids, so these tests also check that the pins are usable.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
from pathlib import Path

import pytest

from oldphoto import weights
from oldphoto.errors import WeightsError

from .hub_server import FakeHub
from .test_weights_support import (
    cache_files,
    clean_env,
    hermetic_registry,
    official_pickle,
    registry_copy,
    safetensors_file,
)

VAE = "vae_a_quality"


@pytest.fixture(scope="session")
def published(tmp_path_factory) -> Path:
    """Seeded safetensors of the small components, as the published repo would hold them."""
    out = tmp_path_factory.mktemp("published")
    for c in ("vae_a_quality", "vae_b_quality", "vae_b_scratch"):
        safetensors_file(c, out)
    return out


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    clean_env(monkeypatch, tmp_path / "hf")
    monkeypatch.setenv("OLDPHOTO_WEIGHTS_JSON", str(hermetic_registry(tmp_path)))  # no real release host
    return tmp_path / "hf"


@pytest.fixture
def hub():
    with FakeHub() as h:
        yield h


def publish_to(hub: FakeHub, files: dict[str, Path | bytes]) -> str:
    spec = weights.component_spec(VAE)
    return hub.add_commit(spec.repo_id, files, commit=spec.revision)


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_download_and_load_at_the_pinned_revision(home, hub, published):
    publish_to(hub, {f"{VAE}.safetensors": published / f"{VAE}.safetensors"})
    path = weights.resolve(VAE, endpoint=hub.url)
    assert sha(path) == sha(published / f"{VAE}.safetensors")
    assert str(path).startswith(str(home / "hub"))
    assert weights.component_spec(VAE).revision in str(path)
    state = weights.load_state_dict(VAE, endpoint=hub.url)
    assert len(state) == 44
    # second resolve: straight from the cache, no request at all
    before = len(hub.requests)
    weights.resolve(VAE, endpoint=hub.url)
    assert len(hub.requests) == before


def test_quality_mode_downloads_only_quality_files(home, hub, published, tmp_path, monkeypatch):
    # mapping_quality is big; a registry copy without its size lets a small stand-in be served
    monkeypatch.setenv("OLDPHOTO_WEIGHTS_JSON", str(registry_copy(tmp_path, mapping_quality={"size": None})))
    files: dict[str, Path | bytes] = {f"{c}.safetensors": b"never fetched" for c in weights.registry().components}
    for c in ("vae_a_quality", "vae_b_quality"):
        files[f"{c}.safetensors"] = published / f"{c}.safetensors"
    files["mapping_quality.safetensors"] = b"stand-in"
    publish_to(hub, files)
    # the stand-in fails the manifest check only when loaded; download() checks size and sha256
    got = weights.download("quality", endpoint=hub.url)
    assert sorted(got) == ["mapping_quality", "vae_a_quality", "vae_b_quality"]
    fetched = {p.rsplit("/", 1)[-1] for p in hub.fetched("GET")}
    assert fetched == {"vae_a_quality.safetensors", "vae_b_quality.safetensors", "mapping_quality.safetensors"}
    assert weights.components_for_modes(["quality"]) == ["vae_a_quality", "vae_b_quality", "mapping_quality"]


def test_modes_match_what_the_restorer_needs():
    try:
        from oldphoto.pipeline import Restorer
    except ImportError as exc:  # pragma: no cover - the pipeline is built elsewhere
        pytest.skip(f"pipeline not importable: {exc}")
    r = Restorer.__new__(Restorer)
    for modes, kw in (
        (["quality"], dict(scratches=False, hr=False, faces=False)),
        (["scratch"], dict(scratches=True, hr=False, faces=False)),
        (["hr", "faces"], dict(scratches=True, hr=True, faces=True)),
        (["scratch", "faces"], dict(scratches=True, hr=False, faces=True)),
    ):
        try:
            need = r.components_for(**kw)
        except ImportError as exc:  # pragma: no cover
            pytest.skip(f"stages not importable: {exc}")
        assert sorted(weights.components_for_modes(modes)) == sorted(set(need)), modes


def test_offline_without_cache_names_component_and_fix(home, hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError) as err:
        weights.resolve("mapping_scratch", endpoint=hub.url)
    msg = str(err.value)
    assert "'mapping_scratch'" in msg and "HF_HUB_OFFLINE" in msg and "oldphoto weights download" in msg
    assert hub.requests == []  # offline means no request at all


def test_unreachable_hub_without_cache(home, monkeypatch):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused
    with pytest.raises(WeightsError) as err:
        weights.download(["quality"], endpoint=f"http://127.0.0.1:{port}")
    msg = str(err.value)
    for name in ("vae_a_quality", "vae_b_quality", "mapping_quality"):
        assert f"'{name}'" in msg
    assert "HF_HUB_OFFLINE" in msg and "oldphoto weights download" in msg
    assert "Traceback" not in msg


def test_offline_after_download_uses_cache(home, hub, published, monkeypatch):
    publish_to(hub, {f"{VAE}.safetensors": published / f"{VAE}.safetensors"})
    weights.download(components=[VAE], endpoint=hub.url)
    n = len(hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert sha(weights.resolve(VAE, endpoint=hub.url)) == sha(published / f"{VAE}.safetensors")
    assert len(hub.requests) == n


def test_hf_hub_cache_env_is_honoured(home, hub, published, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    publish_to(hub, {f"{VAE}.safetensors": published / f"{VAE}.safetensors"})
    path = weights.resolve(VAE, endpoint=hub.url)
    assert str(path).startswith(str(tmp_path / "elsewhere"))
    assert not (home / "hub").exists()


def test_token_is_sent_for_private_repos(home, hub, published, monkeypatch):
    spec = weights.component_spec(VAE)
    hub.add_commit(spec.repo_id, {f"{VAE}.safetensors": published / f"{VAE}.safetensors"},
                   commit=spec.revision, token="s3cret")
    with pytest.raises(WeightsError):
        weights.resolve(VAE, endpoint=hub.url, allow_convert=False)
    monkeypatch.setenv("HF_TOKEN", "s3cret")  # read at call time, like a user's shell
    assert weights.resolve(VAE, endpoint=hub.url).is_file()


def test_sha256_mismatch_is_an_error_and_not_kept(home, hub, published, tmp_path, monkeypatch):
    good = published / f"{VAE}.safetensors"
    monkeypatch.setenv("OLDPHOTO_WEIGHTS_JSON", str(registry_copy(tmp_path, **{VAE: {"sha256": sha(good)}})))
    publish_to(hub, {f"{VAE}.safetensors": good})
    hub.fail("corrupt", method="GET")
    with pytest.raises(WeightsError, match="sha256") as err:
        weights.resolve(VAE, endpoint=hub.url)
    assert "deleted" in str(err.value)
    assert cache_files(home / "hub") == []
    assert sha(weights.resolve(VAE, endpoint=hub.url)) == sha(good)  # a retry downloads it again


def test_corrupted_cache_file_is_replaced_online_and_refused_offline(home, hub, published, tmp_path, monkeypatch):
    good = published / f"{VAE}.safetensors"
    monkeypatch.setenv("OLDPHOTO_WEIGHTS_JSON", str(registry_copy(tmp_path, **{VAE: {"sha256": sha(good)}})))
    publish_to(hub, {f"{VAE}.safetensors": good})
    path = weights.resolve(VAE, endpoint=hub.url)
    blob = Path(os.path.realpath(path))
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))
    assert sha(weights.resolve(VAE, endpoint=hub.url)) == sha(good)  # re-downloaded
    blob = Path(os.path.realpath(path))
    blob.write_bytes(b"x" * blob.stat().st_size)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="sha256"):
        weights.resolve(VAE, endpoint=hub.url)
    assert not blob.exists()


@pytest.mark.parametrize(
    ("kind", "method", "expect"),
    [
        ("500", "GET", "500"),
        ("reset", "HEAD", "RemoteProtocolError"),  # both HEADs: the no-retry preflight and the client's
        ("truncate", "GET", "ReadError"),
        ("short", "GET", "Consistency check failed"),
    ],
)
def test_transfer_failures_leave_nothing_and_retry_works(home, hub, published, kind, method, expect):
    good = published / f"{VAE}.safetensors"
    publish_to(hub, {f"{VAE}.safetensors": good})
    hub.fail(kind, method=method, times=2 if method == "HEAD" else 1)
    try:
        path = weights.resolve(VAE, endpoint=hub.url)
    except WeightsError as err:
        msg = str(err)
        assert expect in msg and "run the command again" in msg
        assert cache_files(home / "hub") == []
    else:
        # a body cut after some bytes ends as httpx's ReadError or as RemoteProtocolError, depending on
        # timing; on the latter huggingface_hub resumes the download itself, which is right too
        assert kind == "truncate", f"{kind}: no error"
        assert sha(path) == sha(good)
    assert sha(weights.resolve(VAE, endpoint=hub.url)) == sha(good)


def test_a_single_head_500_is_retried_by_the_client(home, hub, published):
    publish_to(hub, {f"{VAE}.safetensors": published / f"{VAE}.safetensors"})
    hub.fail("500", method="HEAD", times=2)  # the preflight and the client's first HEAD
    assert weights.resolve(VAE, endpoint=hub.url).is_file()
    assert len(hub.fetched("HEAD")) == 3


def test_missing_file_falls_back_to_the_pinned_mirror_pickle(home, hub, published, tmp_path, caplog, monkeypatch):
    comp = "vae_b_scratch"
    reg = weights.registry()
    publish_to(hub, {f"{VAE}.safetensors": published / f"{VAE}.safetensors"})  # repo lacks vae_b_scratch
    up = weights.component_spec(comp).upstream.path
    folder = up.rsplit("/", 1)[0]
    pk = official_pickle(comp, tmp_path / "pk" / "latest_net_G.pth", wrap="module")
    hub.add_commit(reg.mirror_repo_id, {
        up: pk,
        f"{folder}/latest_net_D.pth": b"discriminator: must never be downloaded",
        f"{folder}/latest_optimizer.pth": b"optimizer: must never be downloaded",
    }, commit=reg.mirror_revision)
    # the published file would be byte-identical: check the conversion against its sha256
    monkeypatch.setenv("OLDPHOTO_WEIGHTS_JSON", str(registry_copy(
        tmp_path, **{comp: {"sha256": sha(published / f"{comp}.safetensors")}})))
    with caplog.at_level(logging.WARNING, logger="oldphoto.weights"):
        path = weights.resolve(comp, endpoint=hub.url)
    assert sha(path) == sha(published / f"{comp}.safetensors")
    assert path.parent == weights.converted_dir()
    assert any(reg.mirror_repo_id in r.getMessage() and "convert" in r.getMessage() for r in caplog.records)
    gets = hub.fetched("GET")
    assert [g for g in gets if reg.mirror_repo_id in g] == [f"/{reg.mirror_repo_id}/resolve/{reg.mirror_revision}/{up}"]
    assert not any("latest_net_D" in p or "optimizer" in p for _, p in hub.requests)
    assert not any(p.endswith(".pth") for p in cache_files(home / "hub"))  # intermediate pickle removed
    # offline later: the converted file is found without the network
    n = len(hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert weights.resolve(comp, endpoint=hub.url) == path
    assert len(hub.requests) == n


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('OLDPHOTO_PWNED', os.path.join(tempfile.gettempdir(), 'oldphoto-pwned'))}",))


def test_mirror_pickle_containing_code_is_refused(home, hub, published, tmp_path, monkeypatch):
    comp = "vae_b_quality"
    reg = weights.registry()
    marker = tmp_path / "pwned"
    monkeypatch.setenv("OLDPHOTO_PWNED", str(marker))
    publish_to(hub, {f"{VAE}.safetensors": published / f"{VAE}.safetensors"})
    hub.add_commit(reg.mirror_repo_id, {weights.component_spec(comp).upstream.path: pickle.dumps({"x": _Evil()}, protocol=2)},
                   commit=reg.mirror_revision)
    with pytest.raises(WeightsError, match="Refused"):
        weights.resolve(comp, endpoint=hub.url)
    assert not marker.exists()
    assert not weights.converted_dir().joinpath(f"{comp}.safetensors").exists()


def test_not_in_repo_nor_mirror_points_to_fetch_upstream(home, hub, published):
    publish_to(hub, {f"{VAE}.safetensors": published / f"{VAE}.safetensors"})
    with pytest.raises(WeightsError, match="fetch-upstream") as err:
        weights.resolve("mapping_patch_attention", endpoint=hub.url)
    assert "'mapping_patch_attention'" in str(err.value)


def test_weights_dir_override_skips_the_hub(home, published, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # would fail if contacted
    assert weights.resolve(VAE, weights_dir=published) == published / f"{VAE}.safetensors"
    monkeypatch.setenv("OLDPHOTO_WEIGHTS_DIR", str(published))
    assert len(weights.load_state_dict(VAE)) == 44
    with pytest.raises(WeightsError, match="oldphoto weights convert"):
        weights.resolve("mapping_scratch")


def test_verify_reports_good_and_bad_files(home, hub, published, tmp_path, monkeypatch):
    good = published / f"{VAE}.safetensors"
    monkeypatch.setenv("OLDPHOTO_WEIGHTS_JSON", str(registry_copy(tmp_path, **{VAE: {"sha256": sha(good)}})))
    publish_to(hub, {f"{VAE}.safetensors": good})
    path = weights.resolve(VAE, endpoint=hub.url)
    res = {r.component: r for r in weights.verify([VAE, "mapping_scratch"])}
    assert res[VAE].ok and "sha256 ok" in res[VAE].message
    assert not res["mapping_scratch"].ok and res["mapping_scratch"].message == "not downloaded"
    blob = Path(os.path.realpath(path))
    blob.write_bytes(blob.read_bytes()[:-1] + b"\0")
    res = weights.verify([VAE])
    assert not res[0].ok and "sha256" in res[0].message
    assert blob.exists()  # verify reports, it does not delete
