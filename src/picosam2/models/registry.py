"""Architectures, pretrained weights and weight files.

Two tables, as in timm: :data:`ARCHITECTURES` (name -> config builder; :func:`create_model` makes a
randomly initialised network) and :data:`PRETRAINED` (name -> shipped weights folder;
:func:`list_pretrained`). Weights are ``model.safetensors`` plus ``config.json`` (and a model card
``README.md``) in one folder, so loading reads plain tensors and a small JSON file and never runs
code from the weights. A Hugging Face Hub repository is named explicitly, ``hf-hub:owner/name``
(as timm and open_clip write it), and fetched through ``huggingface_hub`` (its cache,
``HF_HUB_OFFLINE``, ``revision``); any other name is a shipped name or a local path.

This module imports neither torch nor huggingface_hub until a function needs them.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import UsageError, WeightsError
from ..io_utils import write_atomic
from .config import PicoSAM2Config

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
WEIGHTS_ROOT = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_PRETRAINED = "picosam2-coco-mini"

#: architecture name -> function(**overrides) returning its config
ARCHITECTURES: dict[str, Callable[..., PicoSAM2Config]] = {
    "picosam2": lambda **kw: PicoSAM2Config(arch="picosam2", **kw),
    "picosam2-q": lambda **kw: PicoSAM2Config(arch="picosam2-q", **{"quality_head": True, **kw}),
    "picosam2-128": lambda **kw: PicoSAM2Config(arch="picosam2-128", **{"input_size": 128, **kw}),
}

#: pretrained name -> weights folder shipped in the package
PRETRAINED: dict[str, Path] = {DEFAULT_PRETRAINED: WEIGHTS_ROOT / DEFAULT_PRETRAINED}
DEFAULT_WEIGHTS_DIR = PRETRAINED[DEFAULT_PRETRAINED]

#: prefix of a Hugging Face Hub repository name: ``hf-hub:owner/name``
HUB_PREFIX = "hf-hub:"
_HUB_REPO = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def list_models() -> list[str]:
    """Names of the architectures :func:`create_model` builds."""
    return sorted(ARCHITECTURES)


def list_pretrained() -> list[str]:
    """Names of the shipped weights :func:`from_pretrained` loads (the first is the default)."""
    return list(PRETRAINED)


def create_model(name: str = "picosam2", **overrides):
    """A randomly initialised :class:`~picosam2.models.PicoSAM2` of a registered architecture."""
    from .picosam2 import PicoSAM2

    if name not in ARCHITECTURES:
        raise UsageError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return PicoSAM2(ARCHITECTURES[name](**overrides))


# -- where weights are ----------------------------------------------------------------------------


def is_hub_name(name) -> bool:
    """Whether ``name`` names a Hub repository: a string ``hf-hub:owner/name``."""
    return isinstance(name, str) and name.startswith(HUB_PREFIX)


def looks_like_repo_id(name) -> bool:
    """Whether ``name`` has the shape of a bare Hub repository id ``owner/name`` (for the hint
    of a "not found" error: such a name is a local path unless written ``hf-hub:owner/name``)."""
    return isinstance(name, str) and bool(_HUB_REPO.match(name))


def hub_repo_id(name: str) -> str:
    """``owner/name`` of a Hub name ``hf-hub:owner/name``.

    Raises:
        WeightsError: the part after the prefix is not ``owner/name``.
    """
    repo_id = name[len(HUB_PREFIX) :] if name.startswith(HUB_PREFIX) else name
    if not _HUB_REPO.match(repo_id):
        raise WeightsError(f"a Hub name is hf-hub:owner/name, got {name!r}")
    return repo_id


def resolve_weights(name_or_path=None, revision: str | None = None) -> Path:
    """The local folder or file of weights given by name, path or Hub repository.

    Args:
        name_or_path: ``None`` or ``"default"`` (the shipped default), a name from
            :func:`list_pretrained`, a local folder/file, or a Hub repository ``hf-hub:owner/name``.
        revision: Hub branch, tag or commit to pin (Hub names only).

    Returns:
        A path (folder, or a file for ``.safetensors``, ``.pt`` checkpoints and exported forms).

    Raises:
        WeightsError: nothing found there (or on the Hub / in its cache).
    """
    if name_or_path is None or str(name_or_path) == "default":
        name_or_path = DEFAULT_PRETRAINED
    if isinstance(name_or_path, str) and name_or_path in PRETRAINED:
        return PRETRAINED[name_or_path]
    if is_hub_name(name_or_path):
        return _hub_snapshot(hub_repo_id(name_or_path), revision)
    if revision is not None:
        raise WeightsError(f"a revision applies to Hub names (hf-hub:owner/name), not to {name_or_path}")
    path = Path(name_or_path)
    if not path.exists():
        hint = ""
        if looks_like_repo_id(name_or_path):
            hint = f" (a Hugging Face Hub repository is written hf-hub:{name_or_path})"
        raise WeightsError(f"weights not found: {path}{hint}")
    return path


def _hub_snapshot(repo_id: str, revision: str | None) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise WeightsError(f"Hub weights ({repo_id}) need huggingface_hub: pip install 'picosam2[hub]'") from exc
    try:
        return Path(
            snapshot_download(repo_id, revision=revision, allow_patterns=[WEIGHTS_FILE, CONFIG_FILE, CARD_FILE])
        )
    except Exception as exc:  # noqa: BLE001 - offline misses, 404s, bad revisions: all "not found"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"cannot get {repo_id} from the Hugging Face Hub: {first}") from exc


def _files(name_or_path, revision: str | None = None) -> tuple[Path, Path]:
    path = resolve_weights(name_or_path, revision)
    if path.is_file():
        return path, path.parent / CONFIG_FILE
    return path / WEIGHTS_FILE, path / CONFIG_FILE


def _is_checkpoint(path: Path) -> bool:
    from .convert import is_torch_checkpoint

    return path.is_file() and is_torch_checkpoint(path)


def weights_metadata(name_or_path=None, revision: str | None = None) -> dict:
    """The metadata dictionary stored in a safetensors file (``trained``, ``recipe``...)."""
    from safetensors import safe_open

    wfile, _ = _files(name_or_path, revision)
    if _is_checkpoint(wfile):
        from .convert import checkpoint_metadata

        return checkpoint_metadata(wfile)
    try:
        with safe_open(str(wfile), framework="numpy") as f:
            return dict(f.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise WeightsError(f"cannot read weights {wfile}: {exc}") from exc


def weights_info(name_or_path=None, revision: str | None = None) -> dict:
    """:func:`weights_metadata` plus the file's ``sha256``: the provenance exported forms carry."""
    from ..io_utils import sha256_file

    wfile, _ = _files(name_or_path, revision)
    return {**weights_metadata(wfile), "sha256": sha256_file(wfile)}


def is_trained(metadata: dict) -> bool:
    """Whether weights metadata (:func:`weights_metadata`, or an exported form's ``weights``) says
    the weights were trained; metadata without the key counts as trained."""
    return str(metadata.get("trained", "true")).lower() != "false"


# -- reading and writing --------------------------------------------------------------------------


def from_pretrained(name_or_path=None, map_location: str = "cpu", revision: str | None = None):
    """Load a :class:`~picosam2.models.PicoSAM2` (eval mode).

    Args:
        name_or_path: see :func:`resolve_weights`: shipped name, folder (``model.safetensors`` +
            ``config.json``), ``.safetensors`` file with a ``config.json`` beside it, Hub name
            ``hf-hub:owner/name``, or a
            PyTorch checkpoint (``.pt``/``.pth``/``.ckpt``: the PicoSAM2 authors' state_dict or one
            of ours, read with ``weights_only=True`` and mapped strictly, :mod:`picosam2.models.convert`).
        map_location: device the tensors are loaded to.
        revision: Hub revision to pin.

    Returns:
        The model; its ``weights_info`` attribute holds :func:`weights_info`.

    Raises:
        WeightsError: missing, unreadable or mismatched weights, or no ``config.json``.
    """
    from safetensors.torch import load_file

    from .picosam2 import PicoSAM2

    wfile, cfile = _files(name_or_path, revision)
    if _is_checkpoint(wfile):  # the authors' .pt or one of our training checkpoints, read strictly
        from .convert import load_checkpoint

        return load_checkpoint(wfile, map_location=map_location)
    if not cfile.is_file():
        raise WeightsError(f"weights {wfile} have no {CONFIG_FILE} beside them (save_pretrained writes both)")
    try:
        cfg = PicoSAM2Config.from_dict(json.loads(cfile.read_text()))
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"bad config {cfile}: {exc}") from exc
    model = PicoSAM2(cfg)
    try:
        state = load_file(str(wfile), device=map_location)
    except Exception as exc:  # noqa: BLE001
        raise WeightsError(f"cannot read weights {wfile}: {exc}") from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise WeightsError(
            f"weights {wfile} do not match the {cfg.arch} network: {first[1] if len(first) > 1 else first[0]}"
        ) from exc
    model.weights_info = weights_info(wfile)
    return model.eval()


def save_pretrained(model, folder: str | os.PathLike, metadata: dict | None = None, card: bool = True) -> Path:
    """Write ``model.safetensors``, ``config.json`` and (``card``) a model card ``README.md`` into
    ``folder``, each atomically (temporary file + rename).

    Args:
        model: a :class:`~picosam2.models.PicoSAM2`.
        folder: created if missing.
        metadata: string key/values stored in the safetensors header (``trained``, ``recipe``...).
        card: also write the model card (kept when the folder already has one).

    Returns:
        ``folder`` as a Path.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    write_atomic(folder / WEIGHTS_FILE, lambda tmp: save_file(state, tmp, metadata=meta))
    config_text = json.dumps(model.config.to_dict(), indent=2) + "\n"
    write_atomic(folder / CONFIG_FILE, lambda tmp: Path(tmp).write_text(config_text))
    if card and not (folder / CARD_FILE).exists():
        text = model_card(model.config, meta)
        write_atomic(folder / CARD_FILE, lambda tmp: Path(tmp).write_text(text))
    return folder


def model_card(config: PicoSAM2Config, metadata: dict) -> str:
    """A short Hugging Face model card (YAML front matter + Markdown) for a weights folder."""
    rows = "\n".join(f"| {k} | {v} |" for k, v in sorted(metadata.items()))
    trained = "" if is_trained(metadata) else "\n**These weights are an untrained placeholder.**\n"
    return f"""---
library_name: picosam2
license: apache-2.0
tags:
- image-segmentation
- segment-anything
- imx500
pipeline_tag: image-segmentation
---

# PicoSAM2 ({config.arch})

Promptable segmentation small enough to run inside the Sony IMX500 sensor: a point or box in,
the mask of the object at its centre out. Input {config.input_size} x {config.input_size} RGB
windows (ImageNet mean/std); the full config is in `config.json`.
{trained}
```python
from picosam2 import Predictor

predictor = Predictor.from_pretrained("hf-hub:OWNER/NAME")  # this repository
masks = predictor.predict("photo.jpg", points=[[320, 240]]).masks
```

| weights metadata | value |
|---|---|
{rows}
"""


def push_to_hub(model, repo_id: str, metadata: dict | None = None, private: bool = False, token=None) -> str:
    """Upload ``model`` to the Hugging Face Hub repository ``repo_id`` (``hf-hub:owner/name``, or
    ``owner/name``; created if missing) as :func:`save_pretrained` writes it; returns the commit URL.

    Raises:
        WeightsError: ``repo_id`` is not ``owner/name`` (checked before anything is sent), or
            ``huggingface_hub`` is missing.
    """
    repo_id = hub_repo_id(repo_id)
    try:
        from huggingface_hub import HfApi
    except ImportError as exc:
        raise WeightsError("pushing to the Hub needs huggingface_hub: pip install 'picosam2[hub]'") from exc
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="picosam2-push-") as tmp:
        save_pretrained(model, tmp, metadata=metadata)
        card = Path(tmp) / CARD_FILE
        card.write_text(card.read_text().replace("OWNER/NAME", repo_id))
        info = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message="Upload PicoSAM2 weights")
    return str(getattr(info, "commit_url", info))
