"""Model weights: the registry (weights.json), the cache, and the chain of sources that fills it.

Modules, each one concern, imported in this order (no cycles): :mod:`.registry` (weights.json),
:mod:`.manifests` (tensor layouts and the structure check), :mod:`.cache` (locations, hashing,
``verify`` / ``status``), :mod:`.progress` (download bars), :mod:`.archive` (ranged reads of release
zips), :mod:`.convert` (pickles to safetensors, ``fetch-upstream``, ``publish``) and :mod:`.resolve`
(the chain itself). The command line is :mod:`oldphoto.cli.weights`. This package re-exports the
public API so callers write ``from oldphoto import weights; weights.load_state_dict(...)``.
"""

from __future__ import annotations

from .cache import (
    Status,
    VerifyResult,
    converted_dir,
    file_sha256,
    hub_cache_dir,
    offline_mode,
    sha256_file,
    status,
    verify,
    verify_file,
)
from .manifests import check_structure, load_manifest
from .registry import (
    ENV_CACHE,
    ENV_WEIGHTS_DIR,
    ENV_WEIGHTS_JSON,
    MODES,
    ComponentSpec,
    Official,
    Registry,
    Source,
    Upstream,
    component_spec,
    components_for_modes,
    registry,
)
from .resolve import download, load_state_dict, resolve

__all__ = [
    "ENV_CACHE", "ENV_WEIGHTS_DIR", "ENV_WEIGHTS_JSON", "MODES", "ComponentSpec", "Official", "Registry", "Source",
    "Status",
    "Upstream", "VerifyResult", "check_structure", "component_spec", "components_for_modes", "converted_dir",
    "download", "file_sha256", "hub_cache_dir", "load_manifest", "load_state_dict", "offline_mode", "registry",
    "resolve", "sha256_file", "status", "verify", "verify_file",
]
