"""The first run of a new user, in today's world (tests/world.py), from an installed wheel.

The project's safetensors repo does not exist (401 RepoNotFound), the mirror has seven of the ten
pickles at its pinned revision, and the release host 302s to a CDN. From a clean ``HF_HOME`` a
default restore, an HR restore and the GIMP worker's first job must each succeed, reading only the
members they need from the archives; the same commands with ``HF_HUB_OFFLINE=1`` make no request.
The CLI runs from a wheel (``pip wheel --no-deps``) installed into a fresh venv, as users install
it; the venv sees this interpreter's dependencies through a ``.pth`` file (no download, no
rebuild of torch), never this checkout.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oldphoto import weights

from .hub_server import FakeHub
from .test_weights_support import ENV_VARS, REPO
from .world import (
    FOOOCUS,
    RETINA_HUB,
    archive_bytes,
    build_archives,
    build_checkpoints,
    populate,
    populate_2027,
    registry_for,
)

DEPENDENCIES = ("torch", "numpy", "PIL", "safetensors", "huggingface_hub", "httpx", "tqdm")


@pytest.fixture(scope="module")
def world_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    pickles = build_checkpoints(root / "official")
    return pickles, build_archives(root / "archives", pickles)


@pytest.fixture(scope="module")
def hub(world_files):
    pickles, archives = world_files
    with FakeHub() as h:
        populate(h, pickles, archives)
        yield h


@pytest.fixture(scope="module")
def hub2027(world_files, tmp_path_factory):
    pickles, archives = world_files
    with FakeHub() as h:
        populate_2027(h, pickles, archives, tmp_path_factory.mktemp("world2027"))
        h.world_archives = archives  # user_env writes their sha256 prefixes into weights.json
        yield h


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv with the wheel built from this repository, and nothing else of it."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"  # build from a copy: an in-tree build would write build/ and egg-info here
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if f.startswith(("tests/", "benchmarks/")) or not os.path.lexists(REPO / f):
            continue
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        if (REPO / f).is_symlink():
            (src / f).symlink_to(os.readlink(REPO / f))
        else:
            shutil.copy2(REPO / f, src / f)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(root / "dist"),
                    str(src)], check=True, capture_output=True)
    wheel = next((root / "dist").glob("oldphoto-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("oldphoto/weights.json", "oldphoto/weights/archive.py", "oldphoto_gimp/restore_old_photo.py",
                   "oldphoto_gimp/pixels.py", "oldphoto_gradio/examples/chelsea.png"):
        assert needed in names, f"{needed} is not in the wheel"
    shipped = sorted(Path(n).name for n in names if n.startswith("oldphoto/manifests/") and n.endswith(".json"))
    sources = Path(__file__).resolve().parents[1] / "core" / "oldphoto" / "manifests"
    assert shipped == sorted(p.name for p in sources.glob("*.json"))  # every manifest, the colour ones too
    env = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    py = env / "bin" / "python"
    purelib = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    deps = dict.fromkeys(str(Path(importlib.util.find_spec(m).origin).parents[1]) for m in DEPENDENCIES)
    (purelib / "oldphoto-test-deps.pth").write_text("\n".join(deps) + "\n")  # plain paths: no nested .pth
    subprocess.run([*pip, "--python", str(py), "install", "--no-deps", "--no-index", "--force-reinstall",
                    str(wheel)], check=True, capture_output=True)
    bare = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}  # no checkout on the path
    where = subprocess.run([str(py), "-c", "import oldphoto; print(oldphoto.__file__)"], capture_output=True,
                           text=True, check=True, cwd=root, env=bare).stdout.strip()
    assert where.startswith(str(purelib)), where
    assert sysconfig.get_paths()["purelib"] != str(purelib)
    return env


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    rng = np.random.default_rng(3)
    img = (rng.random((96, 128, 3)) * 80 + np.linspace(60, 160, 128)[None, :, None]).astype(np.uint8)
    path = tmp_path_factory.mktemp("photo") / "photo.jpg"
    Image.fromarray(img).save(path, quality=90)
    return path


def user_env(hub: FakeHub, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS and not k.startswith("PYTHON")}
    env.update(HF_HOME=str(home), HF_ENDPOINT=hub.url, OMP_NUM_THREADS="1",
               OLDPHOTO_WEIGHTS_JSON=str(registry_for(hub, home.parent, archives=getattr(hub, "world_archives", None))),
               **extra)
    return env


def member_span(archive: Path, member_suffix: str) -> tuple[int, int]:
    info = next(i for i in zipfile.ZipFile(archive).infolist() if i.filename.endswith(member_suffix))
    return info.header_offset, info.header_offset + info.compress_size


def archive_reads(hub: FakeHub, archives: dict[str, Path], since: int) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list[tuple[int, int]]] = {}
    for name, path in archives.items():
        cdn = hub.cdn_path(path)
        got = [(a, b) for p, a, b in hub.served[since:] if p == cdn]
        if got:
            out[name] = got
    return out


def check_reads(reads, archives, expected: dict[str, list[str]], label: str) -> float:
    """Each archive read: its tail, then exactly the expected members; returns the fraction read."""
    assert sorted(reads) == sorted(expected), reads
    for name, members in expected.items():
        size = archives[name].stat().st_size
        ranges = reads[name]
        assert ranges[0] == (max(0, size - 64 * 1024 - 22), size), (name, ranges)
        spans = [member_span(archives[name], m) for m in members]
        assert len(ranges) == 1 + len(members), (name, ranges)
        for (a, b), (start, end) in zip(ranges[1:], spans):  # up to the member's end, or where the tail starts
            assert a == start and min(end, ranges[0][0]) <= b <= end + 2048, (name, (a, b), (start, end))
    read = sum(b - a for rs in reads.values() for a, b in rs)
    whole = archive_bytes(archives)
    touched = sum(archives[n].stat().st_size for n in reads)
    print(f"\n{label}: read {read} of {whole} archive bytes ({read / whole:.1%}; "
          f"{read / touched:.1%} of the {len(reads)} archive(s) it touched)")
    return read / whole


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("options", [[], ["--scratches", "auto", "--hr"]], ids=["default", "hr"])
def test_first_run_from_the_wheel(options, venv, hub, world_files, photo, tmp_path):
    _pickles, archives = world_files
    home = tmp_path / "hf"
    hr = bool(options)
    # the bars are silenced by --quiet (default run) or HF_HUB_DISABLE_PROGRESS_BARS=1 (hr run)
    env = user_env(hub, home, HF_HUB_DISABLE_PROGRESS_BARS="1" if hr else "0")
    quiet = [] if hr else ["-q"]
    exe = str(venv / "bin" / "oldphoto")
    since_req, since = len(hub.requests), len(hub.served)
    r = run([exe, "restore", str(photo), "-o", "out", *quiet, *options], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "photo.png").is_file()
    needed = (["detection_unet", "vae_a_quality", "vae_b_scratch", "mapping_patch_attention", "face_gen_512"]
              if hr else ["vae_a_quality", "vae_b_quality", "mapping_quality", "face_gen_256"]) + ["retinaface_resnet50"]
    # one line per component saying where it comes from and why
    for c in needed:
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith(f"{c}: not on the Hub yet")]
        assert len(lines) == 1, r.stderr
        spec = weights.component_spec(c)
        assert ("release archive" in lines[0]) == (not spec.upstream.in_mirror), lines[0]
    assert "Traceback" not in r.stderr and "B/s" not in r.stderr and "%|" not in r.stderr  # no bars
    # the archives: only the members the mirror lacks
    expected = {"retinaface_resnet50_2020-07-20-f168fae3c.zip": ["retinaface_resnet50_2020-07-20.pth"]}
    if hr:
        expected["global_checkpoints.zip"] = ["mapping_Patch_Attention/latest_net_mapping_net.pth"]
        expected["face_checkpoints.zip"] = ["FaceSR_512/latest_net_G.pth"]
    frac = check_reads(archive_reads(hub, archives, since), archives, expected, "hr run" if hr else "default run")
    assert frac < 0.6
    fetched = {p for m, p in hub.requests[since_req:] if m == "GET" and "/resolve/" in p}
    assert all(weights.registry().mirror_repo_id in p for p in fetched)
    assert len(fetched) == len([c for c in needed if weights.component_spec(c).upstream.in_mirror])
    # status says where each came from
    st = run([exe, "weights", "status"], env, tmp_path)
    assert st.returncode == 0, st.stderr
    lines = {ln.split()[0]: ln for ln in st.stdout.splitlines()}
    for c in weights.registry().components:
        if c not in needed:
            assert "not downloaded" in lines[c]
        else:
            src = "Hub mirror" if weights.component_spec(c).upstream.in_mirror else "release archive"
            assert src in lines[c] and str(home) in lines[c], lines[c]
    # again, offline: no request at all, same result
    n = len(hub.requests)
    r2 = run([exe, "restore", str(photo), "-o", "out2", "-q", *options], {**env, "HF_HUB_OFFLINE": "1"}, tmp_path)
    assert r2.returncode == 0, r2.stderr
    assert len(hub.requests) == n
    a = np.asarray(Image.open(tmp_path / "out" / "photo.png"))
    b = np.asarray(Image.open(tmp_path / "out2" / "photo.png"))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("options", [[], ["--scratches", "auto", "--hr"]], ids=["default", "hr"])
def test_first_run_in_the_world_of_2027(options, venv, hub2027, photo, tmp_path):
    """Microsoft's URLs 404, the first mirror gone: the chain finds the other copies, says so, and
    ``weights status`` names the source of each file; then offline, no request and the same result."""
    hub, home = hub2027, tmp_path / "hf"
    env = user_env(hub, home, HF_HUB_DISABLE_PROGRESS_BARS="1")
    exe = str(venv / "bin" / "oldphoto")
    r = run([exe, "restore", str(photo), "-o", "out", *options], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    hr = bool(options)
    needed = (["detection_unet", "vae_a_quality", "vae_b_scratch", "mapping_patch_attention", "face_gen_512"]
              if hr else ["vae_a_quality", "vae_b_quality", "mapping_quality", "face_gen_256"]) + ["retinaface_resnet50"]
    served = {c: (FOOOCUS if weights.component_spec(c).official.path.startswith("Global/")
                  else RETINA_HUB if c.startswith("retinaface") else "Haoming02") for c in needed}
    for c in needed:
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith(f"{c}: ")]
        assert lines and lines[0].startswith(f"{c}: not on the Hub yet"), r.stderr
        assert served[c] in lines[-1].rsplit("; ", 1)[-1], lines[-1]  # the source it finally read
        if weights.component_spec(c).upstream.in_mirror:
            assert "databuzzword/bringing-old-photos-back-to-life@dd6ddbd7a1fe" in lines[0]
            assert "RepositoryNotFoundError" in lines[0]
        if c != "retinaface_resnet50":
            assert "microsoft/Bringing-Old-Photos-Back-to-Life" in " ".join(lines) and "HTTP 404" in " ".join(lines)
        else:
            assert "ternaus/retinaface" in lines[-1] and "HTTP 404" in lines[-1]
    st = run([exe, "weights", "status"], env, tmp_path)
    lines = {ln.split()[0]: ln for ln in st.stdout.splitlines()}
    for c in needed:
        assert served[c] in lines[c], lines[c]
        assert ("(unpinned)" in lines[c]) == (served[c] != "Haoming02"), lines[c]
    n = len(hub.requests)
    r2 = run([exe, "restore", str(photo), "-o", "out2", "-q", *options], {**env, "HF_HUB_OFFLINE": "1"}, tmp_path)
    assert r2.returncode == 0, r2.stderr
    assert len(hub.requests) == n
    a = np.asarray(Image.open(tmp_path / "out" / "photo.png"))
    assert np.array_equal(a, np.asarray(Image.open(tmp_path / "out2" / "photo.png")))


@pytest.mark.parametrize("world", ["2026", "2027"])
def test_gimp_install_and_the_workers_first_job(world, venv, world_files, photo, tmp_path, monkeypatch, request):
    """``oldphoto gimp install`` from the wheel's venv, then the plug-in's own bridge client runs a job,
    in today's world and in the world of 2027."""
    hub = request.getfixturevalue("hub" if world == "2026" else "hub2027")
    plugins = tmp_path / "plug-ins"
    home = tmp_path / "hf"
    env = user_env(hub, home)
    r = run([str(venv / "bin" / "oldphoto"), "gimp", "install", "--plugins-dir", str(plugins), "--device", "cpu"],
            env, tmp_path)
    assert r.returncode == 0, r.stderr
    folder = plugins / "restore_old_photo"
    assert os.access(folder / "restore_old_photo.py", os.X_OK)
    # the plug-in's copy of the bridge, as GIMP's Python imports it (no oldphoto on its path)
    package = folder / "oldphoto_bridge"
    spec = importlib.util.spec_from_file_location("oldphoto_bridge_installed", package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    config = mod.WorkerConfig.load(folder / mod.CONFIG_NAME)
    assert config.python == str(venv / "bin" / "python")
    config.transport = "stdio"  # one worker for this test, gone with the client
    img = np.asarray(Image.open(photo).convert("RGB"))
    h, w = img.shape[:2]
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    seen: list[str] = []
    client = mod.WorkerClient.connect(config)
    try:
        # faces off keeps this first job to the three global files (the CLI tests above cover faces)
        out, _info = client.restore(img.tobytes(), w, h, faces=False, progress=lambda f, m: seen.append(m))
    finally:
        client.close()
    assert len(out) == w * h * 3
    assert any(m.startswith("Downloading weights (first run): ") and m.endswith(" MB") for m in seen), seen[:20]
    n = len(hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    client = mod.WorkerClient.connect(config)
    try:
        out2, _ = client.restore(img.tobytes(), w, h, faces=False)
    finally:
        client.close()
    assert out2 == out and len(hub.requests) == n


def test_web_apps_first_restore(hub, tmp_path, monkeypatch):
    """The demo's first restore through gradio_client: the downloads show as a stage of its progress."""
    gradio_client = pytest.importorskip("gradio_client")
    from .web_helpers import serve, small_photo

    env = user_env(hub, tmp_path / "hf")
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    for k in ("HF_HOME", "HF_ENDPOINT", "OLDPHOTO_WEIGHTS_JSON"):
        monkeypatch.setenv(k, env[k])
    photo = small_photo(tmp_path / "p.png", (96, 64))
    seen: set[str] = set()
    with serve(None) as url:
        client = gradio_client.Client(url, verbose=False)
        # faces off keeps this to the three global files (the CLI tests above cover faces)
        job = client.submit(photo=gradio_client.handle_file(str(photo)), scratches="none", faces=False, hr=False,
                            api_name="/restore")
        while not job.done():
            st = job.status()
            seen.update(p.desc or "" for p in (st.progress_data or []))
            time.sleep(0.02)
        first = job.result()
    assert "Restored 96×64 px" in first[2]
    assert any(d.startswith("Downloading weights (first run): ") and d.endswith(" MB") for d in seen), seen
    n = len(hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with serve(None) as url:  # a new app, a new Restorer: only the disk cache can serve it
        again = gradio_client.Client(url, verbose=False).predict(
            photo=gradio_client.handle_file(str(photo)), scratches="none", faces=False, hr=False, api_name="/restore")
    assert len(hub.requests) == n
    assert np.array_equal(np.asarray(Image.open(first[1])), np.asarray(Image.open(again[1])))
