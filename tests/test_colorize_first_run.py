"""First colour run in today's world (fake Hub on 127.0.0.1): our safetensors repo does not exist yet,
so the DDColor weights come from the official Hub repos as pickles, converted locally with
``torch.load(weights_only=True)`` and checked against the manifest; a restoration without colour
never asks for them."""

from __future__ import annotations

import io

import numpy as np
import torch

from oldphoto import weights
from oldphoto.seeded import seeded_state_dict

from .hub_server import FakeHub
from .test_weights_support import clean_env

TINY = "ddcolor_paper_tiny"


def _pth_bytes() -> tuple[bytes, dict[str, torch.Tensor]]:
    """The .pth container of piddnad/DDColor-models: {'params': state_dict}, with the classifier head the
    released files very probably still carry (colorize SPEC §2.2), which the network never uses."""
    sd = seeded_state_dict(TINY)
    extra = {"encoder.arch.head_cls.weight": torch.ones(4, 768), "encoder.arch.head_cls.bias": torch.zeros(4)}
    buf = io.BytesIO()
    torch.save({"params": {**sd, **extra}}, buf)
    return buf.getvalue(), sd


def test_first_colour_run_converts_the_official_pickle(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from oldphoto.pipeline import Restorer

    clean_env(monkeypatch, tmp_path / "hf")
    blob, sd = _pth_bytes()
    spec = weights.component_spec(TINY)
    pth = next(s for s in spec.sources if s.kind == "hub" and s.repo_id == "piddnad/DDColor-models")
    assert pth.pinned and pth.path == "ddcolor_paper_tiny.pth"
    with FakeHub() as hub:
        # only the DDColor-models repo exists: ours (401 RepoNotFound) and piddnad/ddcolor_paper_tiny are missing
        hub.add_commit("piddnad/DDColor-models", {"ddcolor_paper_tiny.pth": blob}, commit=pth.revision)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        restorer = Restorer(device="cpu")

        photo = np.full((20, 30), 120, np.uint8)
        photo[5:15, 10:20] = 40
        events: list[str] = []
        res = restorer.colorize(photo, colorize_model="tiny", progress=lambda f, m: events.append(m))
        got = {p.rsplit("/", 1)[-1] for p in hub.fetched("GET")}
        assert got == {"ddcolor_paper_tiny.pth"}, got
        asked = " ".join(hub.fetched("HEAD"))
        assert "piddnad/ddcolor_paper_tiny" in asked  # the per-model repo was tried first
        assert res.image.size == (30, 20) and res.color.model == "tiny"
        assert any(m.startswith("Downloading weights (first run)") for m in events)

        path = weights.resolve(TINY)  # now from the local conversion, no request
        before = len(hub.requests)
        converted = load_file(str(path))
        assert len(hub.requests) == before
    # strict: exactly the manifest's tensors, the official values, head_cls dropped
    assert set(converted) == {n for n, _, _ in weights.load_manifest(TINY).tensors}
    assert all(torch.equal(converted[k], sd[k]) for k in sd)
    assert path.stat().st_size == spec.size
