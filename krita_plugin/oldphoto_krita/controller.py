"""The decisions of one use of "Restore Old Photo…": plan from the dialog's values, worker settings,
what to read, what to write.

Why apart from the Qt code (:mod:`.gui`): these steps touch only Krita's document API, so unit tests
run them against a small fake of that API, outside Krita.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from . import layers
from .client import bridge
from .job import Job
from .layers import PluginError

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
INSTALL_COMMAND = "oldphoto krita install"
SETTINGS_GROUP = "oldphoto_krita"
FROM_FILE = -1
"""``reference_document`` when the reference photo is the file (no other open document is chosen)."""


@dataclass
class Plan:
    """The dialog's answer: the protocol's options and what to add to the document."""

    options: bridge.RestoreOptions
    output: str = "layer"
    """``layer``, ``repairs-only`` (the new layer shows only the repaired damage) or ``detect-only``."""
    mask_layer: bool = False
    """Also add the damage mask used as the layer "Scratch mask"."""
    python: str = ""
    reference_document: int = FROM_FILE
    """For ``colorize="reference"``: index of the reference among the other open documents, or FROM_FILE."""
    reference_file: str = ""
    """For ``colorize="reference"`` without a reference document: a colour photo file."""


def make_plan(values: dict[str, Any]) -> Plan:
    """The dialog's values as a plan; PluginError for combinations that cannot give what was asked."""
    values = dict(values)
    output = values.pop("output", "layer")
    mask_layer = bool(values.pop("mask_layer", False)) or output == "detect-only"
    python = str(values.pop("python", "") or "")
    ref_doc = values.pop("reference_document", FROM_FILE)
    ref_doc = FROM_FILE if ref_doc is None else int(ref_doc)
    ref_file = str(values.pop("reference_file", "") or "").strip()
    options = bridge.RestoreOptions.from_values(values)
    if options.scratches == "none" and output != "detect-only" and (output == "repairs-only" or mask_layer):
        what = "'Only the repaired damage'" if output == "repairs-only" else "'Scratch mask' layer"
        raise PluginError(f"The {what} needs a damage mask: set Scratches to 'Detect automatically' or "
                          "'Use selection as damage mask'.")
    return Plan(options, output, mask_layer, python, ref_doc, ref_file)


def worker_config(python: str = "", plugin_dir: str = PLUGIN_DIR) -> bridge.WorkerConfig:
    """The worker settings ``oldphoto krita install`` wrote, with the dialog's Python if one was typed."""
    path = os.path.join(plugin_dir, bridge.CONFIG_NAME)
    if os.path.isfile(path) or not python:
        config = bridge.WorkerConfig.load(path, install_command=INSTALL_COMMAND)
    else:
        config = bridge.WorkerConfig(python=python, install_command=INSTALL_COMMAND)
    if python and python != config.python:
        config.python = python
        try:
            config.save(path)
        except OSError:
            pass  # a read-only plug-in folder: the typed Python still serves this run
    return config


def prepare(doc, plan: Plan) -> layers.Source:
    """Read what the worker gets (the user's layer is only read)."""
    node = layers.paint_layer(doc)
    if plan.options.colorize != "none" and plan.output != "detect-only":
        layers.check_colour_fits(doc, node)
    use_mask = plan.options.scratches == "mask" and plan.output != "detect-only"
    return layers.read_source(doc, node, use_mask)


def guidance(doc, source: layers.Source, plan: Plan, documents: list | tuple = ()) -> dict[str, Any]:
    """The colour guidance ``plan.options.colorize`` needs, as ``WorkerClient.restore`` keywords: the
    reference photo (another open document's pixels with ``reference_size``, or a file's bytes for the
    worker to decode) or the "Colour points" layer over the source's area. ``documents``: the other open
    documents, as the dialog listed them. PluginError says what is missing."""
    colorize = plan.options.colorize
    if plan.output == "detect-only":
        return {}
    if colorize == "reference":
        if plan.reference_document != FROM_FILE:
            if not 0 <= plan.reference_document < len(documents):
                raise PluginError("The reference document is no longer open; run again and choose the reference.")
            rgb, w, h = layers.read_reference_document(documents[plan.reference_document])
            return {"reference": rgb, "reference_size": (w, h)}
        if not plan.reference_file:
            raise PluginError("'From a reference photo' needs a reference: choose a colour photo file under "
                              "'Reference photo file', or another open document under 'Reference'.")
        try:
            with open(plan.reference_file, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise PluginError(f"The reference photo {plan.reference_file} cannot be read "
                              f"({exc.strerror or exc}).") from None
        if not data:
            raise PluginError(f"The reference photo {plan.reference_file} is empty.")
        return {"reference": data}
    if colorize == "points":
        return {"points_layer": layers.read_points_layer(doc, source)}
    return {}


def start_job(config: bridge.WorkerConfig, source: layers.Source, plan: Plan,
              guide: dict[str, Any] | None = None) -> Job:
    """Start the worker call; ``guide``: the keywords of :func:`guidance`."""
    w, h = source.rect[2], source.rect[3]
    detect_only = plan.output == "detect-only"
    want_mask = plan.mask_layer or plan.output == "repairs-only"
    return Job(config, source.rgb, (w, h), plan.options, mask=source.mask, want_mask=want_mask,
               detect_only=detect_only, guide=guide).start()


def finish(doc, source: layers.Source, plan: Plan, job: Job) -> list:
    """Write the finished job's result into new nodes above the source layer; returns them."""
    added = []
    top = source.node
    mask = job.result_mask if job.result_mask is not None else source.mask  # the worker's, else the selection
    if job.result is not None:
        top = layers.write_result(doc, source, job.result, mask, repairs_only=plan.output == "repairs-only")
        added.append(top)
    if plan.mask_layer and mask is not None:
        added.append(layers.write_mask_layer(doc, source, mask, top))
    doc.refreshProjection()
    return added
