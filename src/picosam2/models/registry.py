"""Model registry and weight files.

Weights are stored as ``model.safetensors`` plus ``config.json`` in one folder, so loading a
model reads plain tensors and a small JSON file and never runs code from the weights.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from torch import nn

from .picosam2 import PicoSAM2, PicoSAM2Config

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights" / "picosam2-coco-mini"

_REGISTRY: dict[str, Callable[[dict], nn.Module]] = {}
_CONFIGS: dict[str, Callable[..., PicoSAM2Config]] = {}


class WeightsError(ValueError):
    """Raised when a weights folder or file cannot be read."""


def register_model(name: str, config_factory: Callable[..., PicoSAM2Config]) -> None:
    """Register an architecture name with a function returning its default config."""
    _CONFIGS[name] = config_factory


def list_models() -> list[str]:
    return sorted(_CONFIGS)


def create_model(name: str = "picosam2", **overrides) -> PicoSAM2:
    """A randomly initialised model of a registered architecture."""
    if name not in _CONFIGS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    cfg = _CONFIGS[name](**overrides)
    return PicoSAM2(cfg)


register_model("picosam2", lambda **kw: PicoSAM2Config(arch="picosam2", **kw))
register_model(
    "picosam2-q",
    lambda **kw: PicoSAM2Config(arch="picosam2-q", **{"quality_head": True, **kw}),
)
register_model(
    "picosam2-128",
    lambda **kw: PicoSAM2Config(arch="picosam2-128", **{"input_size": 128, **kw}),
)


def save_pretrained(model: PicoSAM2, folder: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``folder`` (atomically per file)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as tmp:
        tmp_name = tmp.name
    try:
        save_file(state, tmp_name, metadata=meta)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, folder / WEIGHTS_FILE)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    cfg_tmp = folder / (CONFIG_FILE + ".tmp")
    cfg_tmp.write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    os.replace(cfg_tmp, folder / CONFIG_FILE)
    return folder


def _resolve(name_or_path: str | os.PathLike | None) -> tuple[Path, Path]:
    if name_or_path is None or str(name_or_path) in ("default", "picosam2-coco-mini"):
        folder = DEFAULT_WEIGHTS_DIR
    else:
        folder = Path(name_or_path)
    if folder.is_file():
        return folder, folder.parent / CONFIG_FILE
    if not folder.exists():
        raise WeightsError(f"weights not found: {folder}")
    return folder / WEIGHTS_FILE, folder / CONFIG_FILE


def weights_metadata(name_or_path: str | os.PathLike | None = None) -> dict:
    """The metadata dictionary stored in a safetensors file (e.g. ``trained``)."""
    from safetensors import safe_open

    wfile, _ = _resolve(name_or_path)
    try:
        with safe_open(str(wfile), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise WeightsError(f"cannot read weights {wfile}: {exc}") from None


def from_pretrained(name_or_path: str | os.PathLike | None = None, map_location: str = "cpu") -> PicoSAM2:
    """Load a model from a folder (``model.safetensors`` + ``config.json``), a ``.safetensors``
    file with a ``config.json`` beside it, or the name ``default`` (the shipped weights)."""
    from safetensors.torch import load_file

    wfile, cfile = _resolve(name_or_path)
    try:
        cfg = PicoSAM2Config.from_dict(json.loads(cfile.read_text())) if cfile.exists() else PicoSAM2Config()
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"bad config {cfile}: {exc}") from None
    model = PicoSAM2(cfg)
    try:
        state = load_file(str(wfile), device=map_location)
    except Exception as exc:  # noqa: BLE001
        raise WeightsError(f"cannot read weights {wfile}: {exc}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise WeightsError(
            f"weights {wfile} do not match the {cfg.arch} network: {first[1] if len(first) > 1 else first[0]}"
        ) from None
    return model.eval()
