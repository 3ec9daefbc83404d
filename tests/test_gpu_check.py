"""benchmarks/gpu_check.sh, the parts that run without a GPU: arguments, the plan, the no-GPU exit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="needs bash and coreutils timeout")


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHON": sys.executable, **env}
    # the script finds the package itself; what the test runner's PYTHONPATH holds must not matter
    full["PYTHONPATH"] = env.get("PYTHONPATH", "")
    if "OUT" not in env:
        full.pop("OUT", None)
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=full, timeout=120)


def test_plan_covers_every_measurement_within_the_budget():
    out = run("--plan", GPU_CHECK_BUDGET_S="450")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    pythonpath = next(line for line in lines if line.startswith("PYTHONPATH="))
    assert pythonpath.split("=", 1)[1].split(":")[0].endswith("/core") and "gradio" not in pythonpath
    steps = [line for line in lines if " s]: " in line]
    limits = [int(line.split("[")[1].split(" s]")[0]) for line in steps]
    assert sum(limits) <= 450
    cmds = " ".join(steps)
    assert "oldphoto.refcheck" in cmds and "--device cuda --no-tf32" in cmds and "tests/test_cuda.py" in cmds
    assert "bench_attention.py --device cuda" in cmds
    bench = [line for line in steps if "bench_pipeline.py" in line]
    for size in (512, 1024, 2048):
        mine = [line for line in bench if f"--sizes {size} " in line]
        assert len(mine) == 2 and sum("--half" in line for line in mine) == 1
        assert all("--device cuda" in line and "--modes quality scratch hr" in line and "--faces off on" in line
                   for line in mine)


@pytest.mark.parametrize("args", [(), ("a", "b"), ("--bogus",)])
def test_bad_arguments_exit_2_with_a_message(args):
    out = run(*args)
    assert out.returncode == 2
    assert out.stderr.startswith("error: ")


def test_help_exits_0():
    out = run("--help")
    assert out.returncode == 0 and "gpu_check.sh [--plan] [OUTDIR]" in out.stdout


def test_without_a_gpu_it_says_so_and_measures_nothing(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = run(OUT=str(tmp_path / "out"))  # the folder from $OUT when none is named
    assert out.returncode == 3
    assert "no CUDA GPU visible to PyTorch" in out.stdout
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert "nothing was measured" in summary
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["summary.txt"]


def test_a_python_without_torch_is_named(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named torch' >&2\nexit 1\n")
    fake.chmod(0o755)
    out = run(str(tmp_path / "o"), PYTHON=str(fake))
    assert out.returncode == 3 and "cannot import PyTorch" in out.stdout


def test_refcheck_on_cuda_without_a_gpu_says_so(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    (tmp_path / "index.json").write_text('{"cases": []}')
    out = subprocess.run([sys.executable, "-m", "oldphoto.refcheck", str(tmp_path), "--device", "cuda"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "sees no CUDA GPU" in out.stderr


def test_on_device_wrapper_moves_arguments_results_and_captures():
    """refcheck.OnDevice: what the case runners pass in and read back crosses over at each call."""
    import torch

    from oldphoto.refcheck import OnDevice

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor(2.0))

        def forward(self, x):
            return x * self.w

        def run(self, x, acts):
            acts["double"] = x * self.w
            return (x + 1, [x - 1])

    wrapped = OnDevice(Net(), torch.device("cpu"))
    x = torch.arange(3.0)
    assert torch.equal(wrapped(x), 2 * x)
    acts: dict = {}
    plus, (minus,) = wrapped.run(x, acts)
    assert torch.equal(plus, x + 1) and torch.equal(minus, x - 1) and torch.equal(acts["double"], 2 * x)
    assert float(wrapped.w.detach()) == 2.0  # attributes and submodules are the network's own
