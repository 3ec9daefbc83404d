"""The public API: one :class:`Restorer` that holds the networks and runs the whole pipeline.

Stages (paper §3, official ``run.py``): scratch detection (optional) -> global restoration in latent
space -> face detection, alignment, enhancement and blending (optional). Networks are loaded on first
use and kept, so a GUI or a worker process pays the load once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from . import imageio
from .device import resolve_device
from .errors import Cancelled, InputError, WeightsError
from .progress import add_layer_ticks, ticking
from .stages.adjust import SCRATCH_THRESHOLD, Controls
from .stages.resize import check_processable
from .weights import load_state_dict
from .weights.progress import reporting as download_progress

ProgressFn = Callable[[float, str], None]
"""``progress(fraction, message)``; fraction in [0, 1]. It may raise :class:`Cancelled` to stop."""

Scratches = Literal["none", "auto"]
Colorize = Literal["none", "auto", "reference", "points"]
COLORIZE_MODES = ("none", "auto", "reference", "points")
"""``colorize`` values: no colour stage, DDColor's automatic colourisation, Deep Exemplar after a
reference photo, or SIGGRAPH17 from colour points (``oldphoto.stages.guided``)."""
GUIDED_COMPONENTS = {
    "reference": ("exemplar_vgg19", "exemplar_nonlocal", "exemplar_colornet"),
    "points": ("siggraph17",),
}


def _one_job(method: Callable[..., Any]) -> Callable[..., Any]:
    """One photo's work: malloc tuned for it unless the process chose its own setting, and
    afterwards a long-lived process may give kept memory back (memory.job_done / end_scoped_job)."""

    @functools.wraps(method)
    def wrapper(self: Restorer, *args: Any, **kwargs: Any) -> Any:
        from . import memory

        scoped = self.reuse_memory and memory.begin_scoped_job()
        try:
            return method(self, *args, **kwargs)
        finally:
            memory.job_done()
            if scoped:
                memory.end_scoped_job()

    return wrapper


@dataclass
class RestoreResult:
    """Restored photo plus the intermediates the UIs show."""

    image: Image.Image
    """Final RGB result at the input photo's size."""
    global_image: Image.Image
    """Global-stage result at the processing size (before face enhancement)."""
    processed_input: Image.Image
    """The RGB image the networks saw (resized to the network's multiple of 4 or 16)."""
    mask: np.ndarray | None = None
    """Bool HxW scratch mask at the processing size (None in quality mode)."""
    mask_source: Literal["none", "detected", "user"] = "none"
    faces: list[Any] = field(default_factory=list)
    """One ``oldphoto.stages.faces.FaceResult`` per enhanced face, in blending order."""
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """Things the user should know about this result (e.g. faces left out by ``max_faces``, controls
    that differ from their defaults)."""
    controls: Controls = field(default_factory=Controls)
    """The strength, face_strength, scratch_threshold, mask_grow and color_strength used (``oldphoto.stages.adjust``)."""
    uncolored: Image.Image | None = None
    """With colour: the photo the colour stage got (the restored photo at its own size), else None."""
    color: Any = None
    """With colour: the ``oldphoto.stages.colorize.ColorPrediction`` (model and the network's ab), else None."""

    def reblend(
        self, *, strength: float | None = None, face_strength: float | None = None,
        color_strength: float | None = None,
    ) -> RestoreResult:
        """This result with another ``strength`` / ``face_strength`` / ``color_strength``, without running any network.

        Mixes the kept intermediates again (``oldphoto.stages.adjust.compose`` and
        ``oldphoto.stages.colorize.compose``, the functions ``Restorer.restore`` ends with), so the
        pixels equal those of a fresh restore with these values. ``None`` keeps a value as it was.
        On a colourised result a new ``strength`` / ``face_strength`` keeps the colour the network
        predicted for the earlier mix (a fresh restore would predict it again from the new one);
        ``notes`` say so.
        """
        from .stages import adjust
        from .stages import colorize as color_stage

        old = self.controls
        new = adjust.check_controls(
            old.strength if strength is None else strength,
            old.face_strength if face_strength is None else face_strength,
            old.scratch_threshold,
            old.mask_grow,
            old.color_strength if color_strength is None else color_strength,
        )
        notes = [n for n in self.notes if n not in (old.note(), REBLEND_COLOR_NOTE)]
        restored_same = (new.strength, new.face_strength) == (old.strength, old.face_strength)
        if self.color is not None and self.uncolored is not None and restored_same:
            base = self.uncolored
        else:
            size = self.uncolored.size if self.uncolored is not None else self.image.size
            base = adjust.compose(self.processed_input, self.global_image, self.faces, strength=new.strength,
                                  face_strength=new.face_strength, size=size)
        image = base
        if self.color is not None:
            own = getattr(self.color, "compose", None)  # guided models compose their own way
            image = Image.fromarray(
                own(np.asarray(base), new.color_strength) if own is not None
                else color_stage.compose(np.asarray(base), self.color.ab, color_strength=new.color_strength), "RGB")
            if not restored_same or REBLEND_COLOR_NOTE in self.notes:
                notes.append(REBLEND_COLOR_NOTE)
        notes += [new.note()] if new.note() else []
        return dataclasses.replace(self, image=image, controls=new, notes=notes,
                                   uncolored=base if self.color is not None else None)


REBLEND_COLOR_NOTE = (
    "Colour was predicted for the earlier strength / face strength and re-applied; restore again for colour "
    "predicted from this mix."
)


class Restorer:
    """Restore old photos with the official networks.

    ``device``: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    ``weights_dir``: a folder of ``<component>.safetensors`` files used instead of the Hub.
    ``exact_convs``: on CPU the wide 3x3 convolutions run as Winograd F(4x4, 3x3) (~1.4x faster,
    float32 rounding ~1e-5 relative, golden cases still pass); True keeps oneDNN's direct algorithm.
    ``half``: run the global networks and the face generators in float16 (opt-in, meant for CUDA:
    half the weight and activation memory, tensor cores). The attention softmax and its sums stay
    float32; scratch detection and face detection stay float32. Output differences against float32
    are bounded in ``tests/test_half.py`` (README: "Half precision"). Refused on the CPU with an
    :class:`InputError`: float16 convolutions there are slower than float32 everywhere and, on CPUs
    without float16 instructions, hundreds of times slower (a 512-channel 64x64 layer: 73 s vs 0.2 s).
    ``reuse_memory``: during each ``restore`` / ``detect_scratches`` call, glibc's malloc keeps freed
    layer outputs for reuse instead of zero-filling fresh pages (~1/3 less CPU time), and afterwards
    the memory is given back and the thresholds set back to glibc's defaults
    (``memory.begin_scoped_job``), so a host application keeps its allocator. Nothing changes where
    the process tuned malloc itself (the CLI, web app, GIMP worker) or malloc is not glibc's.
    False leaves malloc alone entirely.
    """

    def __init__(
        self,
        *,
        device: str = "auto",
        weights_dir: str | os.PathLike | None = None,
        weights_loader: Callable[[str], dict[str, torch.Tensor]] | None = None,
        exact_convs: bool = False,
        half: bool = False,
        reuse_memory: bool = True,
    ) -> None:
        self.device = resolve_device(device)
        if half and self.device.type != "cuda":
            raise InputError(
                "Half precision (--half) needs a CUDA GPU; on the CPU float16 is slower than float32 "
                "(hundreds of times on many CPUs). Run without it."
            )
        self.exact_convs = exact_convs
        self.half = half
        self.reuse_memory = reuse_memory
        self.weights_dir = weights_dir
        self._loader = weights_loader or (lambda c: load_state_dict(c, weights_dir=self.weights_dir))
        self._nets: dict[str, torch.nn.Module] = {}
        self._layer_counts: dict[str, int] = {}  # ticking layers per loaded network
        self._global_layers: dict[str, int] = {}  # layer ticks of one global pass per mode (progress)
        self._color_ticks: dict[str, int] = {}  # ticks of one DDColor pass per component (progress)
        self._lock = threading.Lock()

    # -- model cache -----------------------------------------------------------------------------
    def net(self, component: str) -> torch.nn.Module:
        """The network for a weights component, built and loaded (strictly) on first use."""
        with self._lock:
            net = self._nets.get(component)
            if net is None:
                from .nets import instantiate

                fast = self.device.type == "cpu" and not self.exact_convs  # half runs on CUDA only
                net = instantiate(component, self._loader(component), fast_convs=fast, half=self.half).to(self.device)
                # progress + cancel between layers (oldphoto.progress)
                self._layer_counts[component] = add_layer_ticks(net)
                self._nets[component] = net
            return net

    def _expected_global_layers(self, mode: str) -> int:
        """Convolutions a global pass runs (a first-run estimate: half of each VAE is used)."""
        from .stages.restore import components_for_mode

        n = 0
        for comp in components_for_mode(mode):  # type: ignore[arg-type]
            self.net(comp)
            convs = self._layer_counts[comp]
            n += convs if comp.startswith("mapping") else convs // 2
        return max(1, n)

    def _color_ticks_of(self, component: str) -> int:
        """Ticks of one DDColor pass: counted on the first run; before that, from the network's parts
        (one per ConvNeXt block, spectral-norm conv and decoder layer, plus the hooked convolutions)."""
        if component not in self._color_ticks:
            from .nets.convnext import Block
            from .nets.ddcolor import NUM_LAYERS, SNConv2d

            net = self.net(component)
            parts = sum(isinstance(m, Block | SNConv2d) for m in net.modules())
            return parts + self._layer_counts[component] + NUM_LAYERS
        return self._color_ticks[component]

    def components_for(
        self, *, scratches: bool, hr: bool, faces: bool, colorize: str = "none", colorize_model: str = "modelscope"
    ) -> list[str]:
        """Weights a run needs, so that downloads fetch only those."""
        from .stages.restore import components_for_mode

        comps = ["detection_unet"] if scratches else []
        comps += components_for_mode(restore_mode(scratches, hr))
        if faces:
            comps += ["retinaface_resnet50", "face_gen_512" if hr else "face_gen_256"]
        color = _check_colorize(colorize, colorize_model)
        if color:
            comps += list(GUIDED_COMPONENTS.get(colorize, (color,)))
        return comps

    def preload(
        self, *, scratches: bool = False, hr: bool = False, faces: bool = True, colorize: str = "none",
        colorize_model: str = "modelscope",
    ) -> None:
        for c in self.components_for(scratches=scratches, hr=hr, faces=faces, colorize=colorize,
                                     colorize_model=colorize_model):
            self.net(c)

    # -- memory guard (oldphoto.memory) ----------------------------------------------------------
    def _check_memory(
        self, size: tuple[int, int], mode: str, *, faces: bool, hr: bool, colorize: str | None = None
    ) -> None:
        """Refuse, before any work, a photo whose estimated peak exceeds the free memory (CPU only).

        Raises :class:`InputError` naming the largest size that would fit, instead of letting the
        run swap or be killed minutes later. GPU memory is not estimated (CUDA reports its own OOM).
        Also tells the allocator how this photo's blocks are best handled (memory.job_started).
        """
        from . import memory

        memory.job_started(size[0], size[1], mode)  # type: ignore[arg-type]
        if self.device.type != "cpu":
            return

        with self._lock:
            loaded = tuple(self._nets)
        memory.check_fits(size[0], size[1], mode, faces=faces, hr_faces=hr, loaded=loaded,  # type: ignore[arg-type]
                          colorize=colorize)

    # -- the pipeline ---------------------------------------------------------------------------
    @_one_job
    def detect_scratches(
        self,
        image: Image.Image | np.ndarray | str | os.PathLike | bytes,
        *,
        progress: ProgressFn | None = None,
        scratch_threshold: float = SCRATCH_THRESHOLD,
        mask_grow: int = 0,
    ) -> np.ndarray:
        """The scratch mask ``scratches="auto"`` would use, as bool HxW at the photo's own size.

        For front ends that let people correct the detected mask before restoring (pass it back
        as ``mask=``); only the U-Net runs. ``scratch_threshold`` and ``mask_grow`` as in :meth:`restore`.
        """
        from .stages import adjust, detect

        controls = adjust.check_controls(scratch_threshold=scratch_threshold, mask_grow=mask_grow)
        photo = imageio.load_rgb(image)
        check_processable(photo.size, "scratch", _photo_name(image))
        self._check_memory(photo.size, "quality", faces=False, hr=False)
        if progress is not None:
            progress(0.0, "Detecting scratches")
        with torch.inference_mode():
            processed = detect.resize_full_size(photo)
            mask = detect.detect_mask(self.net("detection_unet"), processed, device=self.device,
                                      threshold=controls.scratch_threshold)
            mask = adjust.grow_mask(mask, controls.mask_grow) if controls.mask_grow else mask
        if progress is not None:
            progress(1.0, "Done")
        return imageio.resize_mask(mask, photo.size)

    @_one_job
    def restore(
        self,
        image: Image.Image | np.ndarray | str | os.PathLike | bytes,
        *,
        scratches: Scratches = "none",
        mask: Image.Image | np.ndarray | str | os.PathLike | None = None,
        hr: bool = False,
        faces: bool = True,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        max_faces: int = 32,
        min_face_size: int = 0,
        strength: float = 1.0,
        face_strength: float = 1.0,
        scratch_threshold: float = SCRATCH_THRESHOLD,
        mask_grow: int = 0,
        colorize: Colorize = "none",
        colorize_model: str = "modelscope",
        color_strength: float = 1.0,
        reference: Image.Image | np.ndarray | str | os.PathLike | bytes | None = None,
        hints: Sequence[tuple[float, float, str]] | None = None,
    ) -> RestoreResult:
        """Restore one photo.

        ``scratches="auto"`` detects damage with the U-Net; passing ``mask`` (any size with the
        photo's aspect ratio; 0/255, 0/1 or bool; white = damage) uses it instead of detection.
        ``hr`` selects the high-resolution scratch model (patch attention) and 512 px faces; like the
        official code it only changes the global stage when scratches are handled.
        ``max_faces`` bounds the face work (most confident first; ``notes`` says when faces were
        left out); ``min_face_size`` ignores detections smaller than that many pixels.

        Controls (``oldphoto.stages.adjust``; the defaults give the official result to the bit):
        ``strength`` in [0, 1] keeps that share of the global restoration, ``original + strength *
        (restored - original)`` at the processing size, before the faces are blended (0: the input,
        faces still enhanced when asked for). ``face_strength`` in [0, 1] scales each face's blending
        mask (0: faces as the global stage made them). The faces are found and enhanced on the
        global-stage result whatever the strengths, so ``RestoreResult.reblend`` can change both
        later without a network. ``scratch_threshold`` in [0, 1] is the U-Net probability from
        which a pixel is damage (official 0.4; lower finds more). ``mask_grow`` (0 to
        ``adjust.MASK_GROW_MAX`` px) dilates the detected or given mask by a disk of that radius,
        at the processing size.

        Colour (``oldphoto.stages.colorize``), the last stage: ``colorize="auto"`` colourises the
        restored photo with DDColor (``colorize_model`` "modelscope" (default), "paper", "artistic" or
        "tiny"), exactly as the official pipeline at 512 px; ``color_strength`` in [0, 1] scales the
        predicted chroma (0: the grey photo; re-blendable with ``RestoreResult.reblend``).
        ``colorize="reference"`` colours it after ``reference`` (a colour photo of the same scene or
        era; Deep Exemplar), ``colorize="points"`` from ``hints`` = ``[(x, y, "#rrggbb"), ...]`` in
        the photo's pixels (SIGGRAPH17; no points: that model's own automatic colour); see
        ``oldphoto.stages.guided`` for how both differ from the official code.
        """
        from .stages import adjust, detect
        from .stages import restore as restore_stage

        if scratches not in ("none", "auto"):
            raise InputError(f"scratches must be 'none' or 'auto', not {scratches!r}.")
        color_comp = _check_colorize(colorize, colorize_model)
        controls = adjust.check_controls(strength, face_strength, scratch_threshold, mask_grow, color_strength)
        ref_img = _check_guidance(colorize, reference, hints)
        use_mask = mask is not None or scratches == "auto"
        mode = restore_mode(use_mask, hr)
        plan = (["detect"] if scratches == "auto" and mask is None else []) + ["restore"] + (["faces"] if faces else [])
        job = _Job(self, plan + (["colorize"] if color_comp else []), progress, cancel, global_mode=mode)

        photo = imageio.load_rgb(image)
        orig_size = photo.size
        check_processable(orig_size, mode, _photo_name(image))
        points = _points(colorize, hints, orig_size, job.notes)
        self._check_memory(orig_size, mode, faces=faces, hr=hr, colorize=color_comp)
        job.report(plan[0], 0.0, "Preparing")

        mask_arr: np.ndarray | None = None
        mask_source: Literal["none", "detected", "user"] = "none"
        with torch.inference_mode(), ticking(job.on_tick), download_progress(job.on_download):
            if use_mask:
                processed = detect.resize_full_size(photo)
                if mask is not None:
                    # the mask belongs to the photo as given; follow it through the resize to 16
                    mask_arr = imageio.load_mask(mask, orig_size)
                    if processed.size != orig_size:
                        mask_arr = imageio.resize_mask(mask_arr, processed.size)
                    mask_source = "user"
                else:
                    with job.stage("detect", 0.1, "Detecting scratches"):
                        mask_arr = detect.detect_mask(self.net("detection_unet"), processed, device=self.device,
                                                      threshold=controls.scratch_threshold)
                    mask_source = "detected"
                if controls.mask_grow:
                    mask_arr = adjust.grow_mask(mask_arr, controls.mask_grow)
            else:
                processed = restore_stage.resize_quality(photo)

            with job.stage("restore", 0.05, "Restoring (global)"):
                out = restore_stage.restore(processed, mask_arr, mode=mode, net=self.net, device=self.device)
                global_img = restore_stage.to_image(out)
            self._global_layers[mode] = job.layers_done

            face_results: list[Any] = []
            with job.stage("faces", 0.05, "Looking for faces", skip=not faces):
                if faces:
                    from .stages import faces as face_stage

                    face_results = face_stage.find_faces(
                        np.asarray(global_img),
                        detector=self.net("retinaface_resnet50"),
                        generator=self.net("face_gen_512" if hr else "face_gen_256"),
                        size=512 if hr else 256,
                        device=self.device,
                        progress=lambda f, m: job.report("faces", f, m),
                        max_faces=max_faces,
                        min_face_size=min_face_size,
                        notes=job.notes,
                    )
                    if face_results:
                        job.report("faces", 0.9, "Blending faces")
                final = adjust.compose(processed, global_img, face_results, strength=controls.strength,
                                       face_strength=controls.face_strength, size=orig_size)

            uncolored = None
            prediction = None
            if color_comp:
                uncolored = final
                final, prediction = self._colorize_stage(job, final, colorize_model, color_comp, controls,
                                                         mode=colorize, reference=ref_img, points=points)
                if not _is_grey_photo(photo):
                    job.notes.append(_color_replaced_note(colorize))

        notes = job.notes
        if controls.scratch_threshold != adjust.Controls().scratch_threshold and mask_source == "user":
            notes.append("scratch_threshold applies to detected scratches only; the given mask was used as it is.")
        if controls.note():
            notes.append(controls.note())  # type: ignore[arg-type]
        job.finish()
        return RestoreResult(
            image=final,
            global_image=global_img,
            processed_input=processed,
            mask=mask_arr,
            mask_source=mask_source,
            faces=face_results,
            timings=job.timings,
            notes=notes,
            controls=controls,
            uncolored=uncolored,
            color=prediction,
        )

    @_one_job
    def colorize(
        self,
        image: Image.Image | np.ndarray | str | os.PathLike | bytes,
        *,
        colorize: Colorize = "auto",
        colorize_model: str = "modelscope",
        color_strength: float = 1.0,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        reference: Image.Image | np.ndarray | str | os.PathLike | bytes | None = None,
        hints: Sequence[tuple[float, float, str]] | None = None,
    ) -> RestoreResult:
        """Colourise a photo that needs no repair (the colour stage of :meth:`restore` alone).

        The result's ``global_image`` and ``processed_input`` are the photo itself; ``reblend`` takes
        another ``color_strength`` without running the network. Any size from 1x1 works (DDColor
        resizes to 512 px and back), bounded by the memory check. ``colorize="reference"`` (with
        ``reference``) and ``colorize="points"`` (with ``hints``) work as in :meth:`restore`.
        """
        from .stages import adjust

        color_comp = _check_colorize(colorize, colorize_model)
        if color_comp is None:
            raise InputError("colorize must be 'auto', 'reference' or 'points' for Restorer.colorize.")
        controls = adjust.check_controls(color_strength=color_strength)
        ref_img = _check_guidance(colorize, reference, hints)
        job = _Job(self, ["colorize"], progress, cancel)
        photo = imageio.load_rgb(image)
        points = _points(colorize, hints, photo.size, job.notes)
        self._check_memory(photo.size, "colorize", faces=False, hr=False, colorize=color_comp)
        job.report("colorize", 0.0, "Preparing")
        with torch.inference_mode(), ticking(job.on_tick), download_progress(job.on_download):
            final, prediction = self._colorize_stage(job, photo, colorize_model, color_comp, controls,
                                                     mode=colorize, reference=ref_img, points=points)
        if not _is_grey_photo(photo):
            job.notes.append(_color_replaced_note(colorize))
        if controls.note():
            job.notes.append(controls.note())  # type: ignore[arg-type]
        job.finish()
        return RestoreResult(
            image=final, global_image=photo, processed_input=photo, timings=job.timings, notes=job.notes,
            controls=controls, uncolored=photo, color=prediction,
        )

    def _colorize_stage(self, job: _Job, image: Image.Image, model: str, component: str, controls: Any, *,
                        mode: str = "auto", reference: Image.Image | None = None, points: list | None = None):
        """The colour model on ``image``: (colour image, prediction); progress creeps through the network."""
        from .stages import colorize as color_stage

        if mode in GUIDED_COMPONENTS:
            return self._guided_stage(job, image, controls, mode=mode, reference=reference, points=points or [])

        with job.stage("colorize", 0.02, f"Colourising ({model})"):
            net = self.net(component)
            job.layers_expected = self._color_ticks_of(component)
            rgb = np.asarray(image)
            ab = color_stage.predict(net, rgb, device=self.device)
            self._color_ticks[component] = job.layers_done
            job.report("colorize", 0.9, "Colourising: applying colour")
            out = color_stage.compose(rgb, ab, color_strength=controls.color_strength,
                                      tick=lambda f: job.report("colorize", 0.9 + 0.1 * f, "Colourising: applying colour"))
        return Image.fromarray(out, "RGB"), color_stage.ColorPrediction(model, ab)


    def _guided_stage(self, job: _Job, image: Image.Image, controls: Any, *, mode: str,
                      reference: Image.Image | None, points: list):
        """Deep Exemplar after ``reference`` or SIGGRAPH17 from ``points`` (``oldphoto.stages.guided``)."""
        from .stages import colorize as color_stage
        from .stages import exemplar, guided
        from .weights import component_spec

        rgb = np.asarray(image)
        if mode == "reference":
            assert reference is not None
            ref = np.asarray(guided.shrink_reference(reference, job.notes))
            guided.check_reference(ref)
            job.notes.extend(guided.reference_notes(ref, rgb.shape[:2], color_stage.is_grey))
            with job.stage("colorize", 0.02, "Colourising (reference photo)"):
                nets = exemplar.ExemplarNets(*(self.net(c) for c in GUIDED_COMPONENTS["reference"]))
                vgg, warp, color = (self._layer_counts[c] for c in GUIDED_COMPONENTS["reference"])
                job.layers_expected = 2 * vgg + 2 * warp + color  # VGG and WarpNet see photo and reference
                prediction = guided.colorize_reference(nets, rgb, ref)
        else:
            with job.stage("colorize", 0.02, "Colourising (colour points)" if points else "Colourising (SIGGRAPH17)"):
                try:  # a weights.json of a fork may lack the component: the official convention then
                    convention = str(component_spec("siggraph17").setting("mask_convention", "0/1"))
                except (KeyError, WeightsError):
                    convention = "0/1"
                net = self.net("siggraph17")
                job.layers_expected = self._layer_counts["siggraph17"]
                prediction = guided.colorize_points(net, rgb, points, mask_convention=convention)
        job.report("colorize", 0.9, "Colourising: applying colour")
        out = prediction.compose(rgb, controls.color_strength)
        return Image.fromarray(out, "RGB"), prediction


class _Job:
    """One call's bookkeeping: progress shares of its stages, cancel, timings and notes.

    Stages report ``(stage, fraction of that stage, message)``; the overall fraction is the share of
    the stages already done plus this stage's share times its fraction. The ticks of the networks
    (``oldphoto.progress``) creep the global and colour stages forward and honour ``cancel``.
    """

    SHARES = {"detect": 0.2, "restore": 0.5, "faces": 0.3, "colorize": 0.3}

    def __init__(self, restorer: Restorer, plan: list[str], progress: ProgressFn | None,
                 cancel: threading.Event | None, *, global_mode: str | None = None) -> None:
        self.restorer = restorer
        self.plan = plan
        self.progress = progress
        self.cancel = cancel
        self.total = sum(self.SHARES[s] for s in plan)
        self.done = 0.0
        self.stage_name, self.frac, self.msg = plan[0], 0.0, "Preparing"
        self.timings: dict[str, float] = {}
        self.notes: list[str] = []
        self.global_mode = global_mode
        self.layers_done = 0
        self.layers_expected = restorer._global_layers.get(global_mode, 0) if global_mode else 0

    def report(self, stage: str, frac: float, msg: str) -> None:
        self.stage_name, self.frac, self.msg = stage, frac, msg
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()
        if self.progress is not None:
            self.progress(min(1.0, (self.done + self.SHARES[stage] * frac) / self.total), msg)

    @contextlib.contextmanager
    def stage(self, name: str, frac: float, msg: str, *, skip: bool = False):
        """Time a stage and count its share as done afterwards (``skip``: run the body untimed, no share)."""
        if skip:
            yield
            return
        self.layers_done = 0
        if name == "colorize":
            self.layers_expected = 0
        self.report(name, frac, msg)
        t = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - t
        self.done += self.SHARES[name]

    def on_tick(self, detail: str) -> None:
        """Between layers / attention blocks (oldphoto.progress): creep forward, honour cancel."""
        if self.stage_name == "restore" and self.msg.startswith("Restoring"):
            self.layers_done += not detail
            if not self.layers_expected:  # first run of this mode: the networks are loading now anyway
                self.layers_expected = self.restorer._expected_global_layers(self.global_mode)  # type: ignore[arg-type]
            frac = 0.05 + 0.9 * min(1.0, self.layers_done / self.layers_expected)
            self.report("restore", frac, "Restoring (global)" + (f": {detail}" if detail else ""))
        elif self.stage_name == "colorize" and self.msg.startswith("Colourising ("):
            self.layers_done += 1
            self.report("colorize", 0.02 + 0.88 * min(1.0, self.layers_done / max(1, self.layers_expected)), self.msg)
        else:
            self.report(self.stage_name, self.frac, self.msg)

    def on_download(self, what: str, done_bytes: int, total_bytes: int) -> None:
        """First run: the networks load inside the stages, so their downloads show as progress."""
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()
        if self.progress is not None:
            of = f"/{total_bytes / 1e6:.0f}" if total_bytes else ""
            self.progress(min(1.0, (self.done + self.SHARES[self.stage_name] * self.frac) / self.total),
                          f"Downloading weights (first run): {done_bytes / 1e6:.0f}{of} MB")

    def finish(self) -> None:
        if self.progress is not None:
            self.progress(1.0, "Done")


COLOR_REPLACED_NOTE = (
    "The photo already had colour: it was colourised from its lightness only, as DDColor does "
    "(its own colours were replaced)."
)


def _color_replaced_note(colorize: str) -> str:
    return COLOR_REPLACED_NOTE if colorize == "auto" else COLOR_REPLACED_NOTE.replace("as DDColor does", "as the model does")


def _check_guidance(colorize: object, reference: object, hints: object) -> Image.Image | None:
    """The reference photo (loaded) for "reference"; one-line InputErrors for missing or misplaced guidance."""
    if colorize == "reference":
        if reference is None:
            raise InputError("colorize='reference' needs a reference photo (reference=...).")
        try:
            ref = imageio.load_rgb(reference)
        except InputError as exc:
            raise InputError(f"Reference photo: {exc}") from None
        from .stages.guided import check_reference

        check_reference(np.asarray(ref))
        return ref
    if reference is not None:
        raise InputError("A reference photo is only used with colorize='reference'.")
    if hints is not None and colorize != "points":
        raise InputError("Colour points (hints) are only used with colorize='points'.")
    return None


def _points(colorize: object, hints: object, size: tuple[int, int], notes: list[str]) -> list:
    if colorize != "points":
        return []
    from .stages.guided import check_points

    points, more = check_points(hints, size)  # type: ignore[arg-type]
    notes.extend(more)
    return points


def _check_colorize(colorize: object, colorize_model: object) -> str | None:
    """The DDColor component a colour request needs (None for "none"); one-line InputErrors otherwise."""
    from .stages.colorize import check_model

    if colorize not in COLORIZE_MODES:
        raise InputError(f"colorize must be one of {', '.join(COLORIZE_MODES)}, not {colorize!r}.")
    component = check_model(colorize_model)
    if colorize in GUIDED_COMPONENTS:
        return GUIDED_COMPONENTS[colorize][-1]  # type: ignore[index]
    return None if colorize == "none" else component


def _is_grey_photo(photo: Image.Image) -> bool:
    from .stages.colorize import is_grey

    return is_grey(photo)


def _photo_name(image: object) -> str:
    return str(image) if isinstance(image, (str, os.PathLike)) else "The photo"


def restore_mode(use_mask: bool, hr: bool) -> Literal["quality", "scratch", "hr"]:
    """Official run.py: ``--HR`` without scratches leaves the global stage in quality mode."""
    if not use_mask:
        return "quality"
    return "hr" if hr else "scratch"
