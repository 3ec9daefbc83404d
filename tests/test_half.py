"""The opt-in float16 path (``Restorer(half=True)``, ``oldphoto restore --half``).

Its tolerance is documented in README ("Half precision") and measured here against float32 on the
golden photos of the reference data (float16 networks run on the CPU here; a GPU computes the same
float16 storage with its own accumulation order). The bounds are the measured maxima with a little room.
Those numerics tests need a CPU with fast float16 convolutions: many CPUs (no AVX512-FP16/AMX-FP16)
run them through a reference kernel hundreds of times slower, where they skip saying so. Whether a CPU
is one of them is decided by ``oldphoto.cpu`` from its instruction sets and a probe of the real layers
(issue 22: a small probe said 4x on an AVX2-only EPYC where the real layers took hours).
"""

import functools
import json

import numpy as np
import pytest
import torch
from PIL import Image

from oldphoto import cpu
from oldphoto.cpu import Layer
from oldphoto.nets import HALF_COMPONENTS, instantiate, param_dtype
from oldphoto.refcheck import Context
from oldphoto.refcheck.face_cases import _component, generator_tolerances
from oldphoto.seeded import seeded_state_dict
from oldphoto.stages import restore
from oldphoto.stages.faces import enhance_crop

from .conftest import require_reference

# mode -> (max u8 difference, share of values off by more than one level, mean |raw difference|)
GLOBAL_BOUNDS = {"quality": (6, 0.04, 0.005), "scratch": (2, 0.0002, 0.001), "hr": (2, 0.0002, 0.001)}


def global_half_layers(height: int, width: int) -> list[Layer]:
    """The global stage's float16 layers for an input of ``height`` x ``width``: the quality mapping's
    512-channel convolution at the latent size, the decoder's two upsamplings and its output layer."""
    h, w = height // 4, width // 4
    return [Layer(512, 512, 3, h, w), Layer(64, 64, 4, h, w, "deconv", 2), Layer(64, 64, 4, 2 * h, 2 * w, "deconv", 2),
            Layer(64, 3, 7, height, width)]


FACE_HALF_LAYERS = [Layer(128, 64, 3, 256, 256), Layer(64, 64, 3, 256, 256)]
"""The face generator's largest float16 layers (SPADE at 256 px: the 128-channel modulation convs)."""


@functools.cache
def _float16_verdict(layers: tuple[Layer, ...]) -> cpu.Verdict:
    return cpu.fast_low_precision("float16", layers)


def require_fast_float16_on_cpu(layers: list[Layer]) -> None:
    """Skip (quickly, saying why) unless this CPU has float16 instructions torch may use AND the
    real layers in float16 finish within 25x their float32 time (oldphoto.cpu: the stricter answer)."""
    verdict = _float16_verdict(tuple(layers))
    if not verdict.fast:
        pytest.skip(f"{verdict.reason}: the float16 tolerance runs would take hours here")


def test_half_keeps_names_and_casts_only_the_listed_networks():
    for component in ("mapping_quality", "mapping_scratch"):
        sd = seeded_state_dict(component, 36)
        net = instantiate(component, sd, half=True)
        assert net.state_dict().keys() == sd.keys()  # strict load first, cast after
        want = torch.float16 if component in HALF_COMPONENTS else torch.float32
        assert param_dtype(net) == want


def _global_case(ctx: Context, case: dict):
    mode = case["stage"]
    if mode == "quality":
        img = restore.resize_quality(Image.open(ctx.path(case["inputs"]["photo"])).convert("RGB"))
        mask = None
    else:
        img = Image.open(ctx.path(case["inputs"]["image"])).convert("RGB")
        mask = np.asarray(Image.open(ctx.path(case["inputs"]["mask"])).convert("RGB"))[..., 0] > 127
    return restore.prepare(img, mask, mode)


@pytest.mark.parametrize("mode", ["quality", "scratch", "hr"])
def test_half_global_stage_stays_within_its_documented_tolerance(mode):
    golden = require_reference("global", "golden")
    index = json.loads((golden / "index.json").read_text())
    full, half = Context(golden, index), Context(golden, index, half=True)
    cases = [c for c in index["cases"] if c.get("kind") == "stage" and c["stage"] == mode][:2]
    assert cases
    inputs = [_global_case(full, case) for case in cases]
    require_fast_float16_on_cpu(global_half_layers(*max((x.shape[-2:] for x, _ in inputs), key=lambda s: s[0] * s[1])))
    max_u8, max_frac, max_mean = GLOBAL_BOUNDS[mode]
    for case, (x, m) in zip(cases, inputs):
        seed = int(case.get("weight_seed", index.get("weight_seed")))
        with torch.inference_mode():
            a = restore.run_networks(x, m, mode, lambda c, s=seed: full.net(c, s)).float()
            b = restore.run_networks(x, m, mode, lambda c, s=seed: half.net(c, s))
        assert b.dtype == torch.float16  # the decoder really ran in float16 ...
        b = b.float()
        assert not torch.equal(a, b)  # ... and really differs
        du = np.abs(restore.to_uint8(a).astype(int) - restore.to_uint8(b).astype(int))
        assert du.max() <= max_u8, case["id"]
        assert (du > 1).mean() <= max_frac, case["id"]
        assert float((a - b).abs().mean()) <= max_mean, case["id"]


def test_half_face_generator_stays_within_one_level():
    """Measured: at most 1 level from the golden output on ~6 % of values (float32: on <= 0.05 %)."""
    golden = require_reference("face", "golden")
    require_fast_float16_on_cpu(FACE_HALF_LAYERS)
    index = json.loads((golden / "index.json").read_text())
    full, half = Context(golden, index), Context(golden, index, half=True)
    case = next(c for c in index["cases"] if c["id"] == "gen256_face_a")
    seed, component = int(case["weights"]["seed"]), _component(case)
    crop = full.load(case["inputs"]["input_u8"]["file"])
    net = half.net(component, seed)
    assert param_dtype(net) == torch.float16
    got = enhance_crop(crop, net, "cpu").astype(int)
    ref = full.load(case["outputs"]["output_u8"]["file"]).astype(int).reshape(got.shape)
    f32 = enhance_crop(crop, full.net(component, seed), "cpu").astype(int)
    assert not np.array_equal(got, f32)
    max_d, pct = generator_tolerances(case)["output_u8"]
    d = np.abs(got - ref)
    assert d.max() <= max_d  # the refcheck bound on the size of a difference holds ...
    assert pct / 100 < (d > 0).mean() <= 0.08  # ... on more values than float32's 0.05 %


def test_restorer_refuses_half_on_the_cpu(seeded_weights_dir):
    from oldphoto import Restorer
    from oldphoto.errors import InputError

    with pytest.raises(InputError, match="needs a CUDA GPU"):
        Restorer(device="cpu", weights_dir=seeded_weights_dir, half=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="Restorer(half=True) runs on CUDA only; no GPU here")
def test_restorer_half_runs_the_whole_pipeline(seeded_weights_dir):
    from oldphoto import Restorer

    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 80, 3), dtype=np.uint8))
    a = Restorer(device="cuda", weights_dir=seeded_weights_dir).restore(img, faces=False)
    r = Restorer(device="cuda", weights_dir=seeded_weights_dir, half=True)
    b = r.restore(img, faces=False)
    assert param_dtype(r.net("mapping_quality")) == torch.float16
    assert param_dtype(r.net("vae_a_quality")) == torch.float32
    d = np.abs(np.asarray(a.image, int) - np.asarray(b.image, int))
    assert b.image.size == a.image.size and 0 < d.max() <= GLOBAL_BOUNDS["quality"][0] + 2
