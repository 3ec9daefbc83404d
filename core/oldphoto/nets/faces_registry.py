"""Face networks for ``oldphoto.nets.build``: weights component name -> unloaded module."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .face_gen import SPADEGenerator
from .retinaface import RetinaFace

FACE_BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "face_gen_256": lambda: SPADEGenerator(256),
    "face_gen_512": lambda: SPADEGenerator(512),
    "retinaface_resnet50": RetinaFace,
}
