"""``oldphoto weights convert / fetch-upstream / publish / download / verify`` on generated official
checkpoints (seeded values, official names, shapes and containers)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from oldphoto import weights
from oldphoto.cli.weights import main as weights_main
from oldphoto.errors import WeightsError
from oldphoto.seeded import seeded_state_dict
from oldphoto.weights.convert import FRAGMENT_NAME, convert, fetch_upstream

from .hub_server import FakeHub
from .test_weights_support import clean_env, official_layout_path, official_pickle, run_cli, safetensors_file

SMALL = ("vae_a_quality", "vae_b_quality", "vae_b_scratch")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    clean_env(monkeypatch, tmp_path / "hf")
    return tmp_path / "hf"


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def strict_load(component: str, state: dict[str, torch.Tensor]) -> None:
    try:
        from oldphoto.nets import build
    except ImportError:  # pragma: no cover - networks are built by another part of the project
        return
    build(component).load_state_dict(state, strict=True)


@pytest.fixture(scope="module")
def official_tree(tmp_path_factory) -> Path:
    """A folder laid out like the unpacked release zips, with each container kind, plus the
    training-only files inference must skip."""
    root = tmp_path_factory.mktemp("official")
    det = seeded_state_dict("detection_unet")
    det = {k: v for k, v in det.items() if not k.endswith("num_batches_tracked")}  # old-torch save
    p = root / official_layout_path("detection_unet")
    p.parent.mkdir(parents=True)
    torch.save({"model_state": det, "optimizer_state": {"step": torch.tensor(3)}, "epoch": 7}, p)
    official_pickle("vae_a_quality", root / official_layout_path("vae_a_quality"), wrap="module")
    official_pickle("vae_b_quality", root / official_layout_path("vae_b_quality"))
    d = root / official_layout_path("vae_b_quality")
    (d.parent / "latest_net_D.pth").write_bytes(b"discriminator, not a checkpoint we read")
    return root


def test_convert_official_folder(official_tree, tmp_path, capsys):
    out = tmp_path / "out"
    assert weights_main(["convert", str(official_tree), str(out)]) == 0
    printed = capsys.readouterr().out
    names = ("detection_unet", "vae_a_quality", "vae_b_quality")
    frag = json.loads((out / FRAGMENT_NAME).read_text())["components"]
    assert sorted(frag) == sorted(names)
    for name in names:
        path = out / f"{name}.safetensors"
        assert name in printed
        assert frag[name]["sha256"] == sha(path) and frag[name]["size"] == path.stat().st_size
        # the exact size recorded in weights.json is what the converter writes
        assert path.stat().st_size == weights.component_spec(name).size
        state = load_file(str(path))
        seeded = seeded_state_dict(name)
        assert sorted(state) == sorted(seeded)
        for k, v in seeded.items():
            assert torch.equal(state[k], v), (name, k)
        strict_load(name, state)
    det = load_file(str(out / "detection_unet.safetensors"))  # counters were absent from the pickle
    counters = [k for k in det if k.endswith("num_batches_tracked")]
    assert len(counters) == 20 and all(det[k].item() == 0 and det[k].dtype == torch.int64 for k in counters)


def test_conversion_is_reproducible_byte_for_byte(official_tree, tmp_path):
    a = convert(official_tree, tmp_path / "a", components=["vae_a_quality"])
    b = convert(official_tree / "Global", tmp_path / "b", components=["vae_a_quality"])  # SRC = Global/
    assert a[0].sha256 == b[0].sha256 == sha(safetensors_file("vae_a_quality", tmp_path / "seeded"))


def test_wrong_tensors_are_listed_by_name(tmp_path, capsys):
    state = seeded_state_dict("vae_b_scratch")
    names = list(state)
    del state[names[0]]
    state["decoder.extra.weight"] = torch.zeros(3)
    state[names[1]] = torch.zeros(7, 7)
    state[names[2]] = state[names[2]].double()
    src = tmp_path / "Global" / official_layout_path("vae_b_scratch").split("/", 1)[1]
    src.parent.mkdir(parents=True)
    torch.save(state, src)
    assert weights_main(["convert", str(src), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert f"missing: {names[0]}" in err
    assert "unexpected: decoder.extra.weight" in err
    assert f"wrong shape: {names[1]}: (7, 7)" in err
    assert f"wrong dtype: {names[2]}: float64 != float32" in err
    assert not (tmp_path / "out" / "vae_b_scratch.safetensors").exists()


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['OLDPHOTO_PWNED']}",))


def test_pickle_with_code_is_refused(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("OLDPHOTO_PWNED", str(marker))
    src = tmp_path / "latest_net_G.pth"
    src.write_bytes(pickle.dumps({"decoder.0.weight": _Evil()}, protocol=2))
    assert weights_main(["convert", str(src), str(tmp_path / "out"), "--component", "vae_a_quality"]) == 1
    err = capsys.readouterr().err
    assert "Refused" in err and "Traceback" not in err
    assert not marker.exists()


def test_single_file_needs_a_component_when_the_path_does_not_say(tmp_path):
    src = official_pickle("vae_a_quality", tmp_path / "weights.pth")
    with pytest.raises(WeightsError, match="--component"):
        convert(src, tmp_path / "out")
    assert convert(src, tmp_path / "out", component="vae_a_quality")[0].component == "vae_a_quality"
    named = official_pickle("vae_b_quality", tmp_path / "x" / "VAE_B_quality" / "latest_net_G.pth")
    assert convert(named, tmp_path / "out")[0].component == "vae_b_quality"


def test_fetch_upstream_extracts_only_inference_members(home, tmp_path):
    zpath = tmp_path / "global_checkpoints.zip"
    pk = official_pickle("vae_a_quality", tmp_path / "pk" / "G.pth", wrap="module")
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.write(pk, "checkpoints/restoration/VAE_A_quality/latest_net_G.pth")
        zf.writestr("checkpoints/restoration/VAE_A_quality/latest_net_D.pth", b"not for inference")
    with FakeHub() as hub:
        hub.add_static("global_checkpoints.zip", zpath)
        keep = tmp_path / "archives"
        res = fetch_upstream(tmp_path / "out", components=["vae_a_quality"], archives_dir=keep,
                             base_url=f"{hub.url}/static")
        assert hub.fetched("GET") == ["/static/global_checkpoints.zip"]
        assert res[0].sha256 == sha(safetensors_file("vae_a_quality", tmp_path / "seeded"))
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([FRAGMENT_NAME, "vae_a_quality.safetensors"])
        fetch_upstream(tmp_path / "out2", components=["vae_a_quality"], archives_dir=keep, base_url=f"{hub.url}/static")
        assert len(hub.fetched("GET")) == 1  # the kept archive was reused
        hub.fail("truncate", method="GET")
        with pytest.raises(WeightsError, match="run again"):
            fetch_upstream(tmp_path / "out3", components=["vae_a_quality"], base_url=f"{hub.url}/static")
        assert not any((tmp_path / "out3").rglob("*.zip*"))


def test_publish_then_download_verify_and_offline(home, tmp_path):
    """Maintainer flow on the local Hub, each step a real CLI process: publish -> weights.json pins ->
    download -> verify -> offline use; plus the offline error when nothing is cached."""
    out = tmp_path / "converted"
    for c in SMALL[:2]:
        safetensors_file(c, out)
    wj = tmp_path / "weights.json"
    wj.write_text(Path(weights.registry().source).read_text())
    with FakeHub() as hub:
        env = {"HF_HOME": str(home), "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1", "HF_TOKEN": "tok"}
        r = run_cli(["publish", str(out), "--repo-id", "tester/oldphoto-weights", "--weights-json", str(wj)], env)
        assert r.returncode == 0, r.stderr
        data = json.loads(wj.read_text())
        commit = data["components"]["vae_a_quality"]["sources"][0]["revision"]
        assert len(commit) == 40 and commit in hub.repos["tester/oldphoto-weights"].commits
        for c in SMALL[:2]:
            entry = data["components"][c]
            assert entry["sources"][0]["hub"] == "tester/oldphoto-weights"
            assert entry["sha256"] == sha(out / f"{c}.safetensors")
        assert data["components"]["vae_b_scratch"]["sources"][0]["revision"] == weights.component_spec("vae_b_scratch").revision

        env["OLDPHOTO_WEIGHTS_JSON"] = str(wj)
        r = run_cli(["download", "--component", "vae_a_quality", "--component", "vae_b_quality"], env)
        assert r.returncode == 0, r.stderr
        assert "ok  vae_a_quality" in r.stdout
        r = run_cli(["verify", "--component", "vae_a_quality", "--component", "vae_b_quality"], env)
        assert r.returncode == 0 and r.stdout.count("sha256 ok") == 2, r.stdout + r.stderr
        n = len(hub.requests)
        offline = {**env, "HF_HUB_OFFLINE": "1"}
        r = run_cli(["download", "--component", "vae_a_quality"], offline)
        assert r.returncode == 0, r.stderr
        r = run_cli(["download", "--mode", "scratch"], offline)
        assert r.returncode == 1
        assert "'mapping_scratch'" in r.stderr and "HF_HUB_OFFLINE" in r.stderr
        assert "oldphoto weights download" in r.stderr and "Traceback" not in r.stderr
        assert len(hub.requests) == n  # offline runs sent nothing


def test_oldphoto_cli_has_the_weights_command():
    from oldphoto.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["weights", "download", "--mode", "quality", "--mode", "faces"])
    assert args.mode == ["quality", "faces"] and callable(args.func)


@pytest.mark.skipif(not (os.environ.get("OLDPHOTO_FULL_WEIGHTS_TEST") or os.environ.get("CI") == "true"),
                    reason="writes 1.6 GB of checkpoints; runs in CI (CI=true) or with OLDPHOTO_FULL_WEIGHTS_TEST=1")
def test_every_component_converts_and_loads_strictly(tmp_path):
    src = tmp_path / "official"
    # the three DDColor-L files share one layout (0.9 GB each): DDColor-T stands for the colour models
    names = [n for n in weights.registry().components if not n.startswith("ddcolor_") or n == "ddcolor_paper_tiny"]
    for name in names:
        wrap = "model_state" if name == "detection_unet" else "plain"
        official_pickle(name, src / official_layout_path(name), wrap=wrap)
    results = convert(src, tmp_path / "out")
    assert sorted(r.component for r in results) == sorted(names)
    for r in results:
        assert r.size == weights.component_spec(r.component).size, r.component
        state = load_file(str(r.path))
        strict_load(r.component, state)
        del state
