"""The non-local block's GEMM library choice (nets.attention.float32_gemm_backend): the rule (facts
first: Intel keeps MKL; then a probe) with both answers, the numpy (OpenBLAS) route gives the same
attention within its tolerance, and the golden scratch cases pass with it."""

from __future__ import annotations

import json

import pytest
import torch

from oldphoto.cpu import CpuFacts
from oldphoto.nets import attention
from oldphoto.nets.attention import NonLocalBlock2DWithMaskRes
from oldphoto.refcheck import run_dir

from .conftest import require_reference


@pytest.fixture
def backend(monkeypatch):
    """Force one library for the duration of a test (and forget the choice afterwards)."""

    def force(name: str | None) -> None:
        if name is None:
            monkeypatch.delenv(attention.GEMM_ENV, raising=False)
        else:
            monkeypatch.setenv(attention.GEMM_ENV, name)
        attention.float32_gemm_backend.cache_clear()

    yield force
    attention.float32_gemm_backend.cache_clear()


def _facts(vendor: str, **kw) -> CpuFacts:
    base = dict(model="test CPU", vendor=vendor, flags=frozenset({"avx2", "fma"}), torch_capability="AVX2", env={},
                threads=2, cpus=2, torch_mkl=True, numpy_blas="scipy-openblas")
    return CpuFacts(**{**base, **kw})


def _probe(numpy_s: float, torch_s: float):
    calls = []

    def probe():
        calls.append(1)
        return {"numpy": numpy_s, "torch": torch_s}

    return probe, calls


def test_gemm_rule_takes_the_stricter_of_facts_and_probe():
    numpy_faster, calls = _probe(0.5, 1.0)
    # the facts say torch: Intel (MKL at home), torch without MKL, numpy without OpenBLAS -> no probe
    for facts in (_facts("GenuineIntel"), _facts(""), _facts("AuthenticAMD", torch_mkl=False),
                  _facts("AuthenticAMD", numpy_blas="mkl")):
        assert attention.choose_gemm_backend(facts, numpy_faster) == "torch"
    assert not calls
    amd = _facts("AuthenticAMD")
    assert attention.choose_gemm_backend(amd, numpy_faster) == "numpy" and calls == [1]
    assert attention.choose_gemm_backend(amd, _probe(0.9, 1.0)[0]) == "torch"  # not clearly faster (< 15 %)
    assert attention.choose_gemm_backend(amd, _probe(2.0, 1.0)[0]) == "torch"


def test_environment_decides_when_set_and_the_real_probe_answers(backend, monkeypatch):
    backend("numpy")
    assert attention.float32_gemm_backend() == "numpy"
    backend("torch")
    assert attention.float32_gemm_backend() == "torch"
    backend(None)
    assert attention.float32_gemm_backend() in ("torch", "numpy")  # this machine's own answer
    best = attention.probe_gemm_seconds(budget_s=0.0)  # one product each, then the budget stops it
    assert set(best) == {"torch", "numpy"} and all(0 < t < float("inf") for t in best.values())


@pytest.mark.parametrize("name", ["torch", "numpy"])
def test_attend_with_either_library_matches_float64(backend, name):
    backend(name)
    gen = torch.Generator().manual_seed(0)
    block = NonLocalBlock2DWithMaskRes(64)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    block.block_bytes = 64 * 480 * 8  # several row blocks
    x = torch.randn(1, 64, 24, 20, generator=gen)
    v = (torch.rand(1, 1, 24, 20, generator=gen) > 0.1).float()
    assert attention.attention_mm(x) is (attention._numpy_mm if name == "numpy" else attention._torch_mm)
    with torch.inference_mode():
        ref = block.double().attend(x.double(), v.double())
        got = block.float().attend(x, v).double()
    assert float((got - ref).abs().max()) <= 2e-3
    assert not torch.equal(got, ref)


def test_golden_scratch_cases_pass_with_numpy_gemms(backend):
    golden = require_reference("global", "golden")
    backend("numpy")
    index = json.loads((golden / "index.json").read_text())
    # The network chains and ONE whole photo: test_refcheck runs every scratch photo with the default
    # library already, so the other photos would repeat ~2 minutes of work for the same check.
    chains = [c["id"] for c in index["cases"] if c["id"].startswith("chain_scratch")]
    photos = [c["id"] for c in index["cases"] if c["id"].startswith("scratch__")]
    ids = chains + photos[:1]
    assert len(chains) >= 3 and photos
    lines: list[str] = []
    results = [r for r in run_dir(golden, only=ids, report=lines.append) if r.case_id in ids]
    assert {r.case_id for r in results} == set(ids)
    failed = [line for r, line in zip(results, lines[-len(results):]) if not r.passed]
    assert not failed, "\n".join(failed)
