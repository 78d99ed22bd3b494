"""What runs the network: CPU stand-ins for the sensor, and the configs that tell the camera app
a network's recommended windows. Nothing here touches picamera2."""

from __future__ import annotations

import json
from pathlib import Path


def cpu_runner(weights):
    """``(run, config)``: ``run`` maps a uint8 window (S, S, 3) to what ``IMX500.get_outputs``
    returns (``[mask]``, or ``[mask, iou]`` with a quality head), with a CPU model standing in for
    the sensor; ``weights``: torch weights, plain/INT8 ONNX or the MCT sensor export (``None``:
    the shipped weights)."""
    from ..runtime import load_backend, run_crops

    backend = load_backend(weights)

    def run(win):
        out = run_crops(backend, win)
        return [out.logits] if out.scores is None else [out.logits, out.scores]

    run.config = backend.config
    return run, backend.config


def slot_runner(slot_dir: Path):
    """The device slot's CPU network (its INT8 ONNX) as a runner like :func:`cpu_runner`'s."""
    from ..ops.bundle import CONFIG, INT8_ONNX
    from ..ops.network import SlotNetwork

    net = SlotNetwork(Path(slot_dir) / INT8_ONNX, Path(slot_dir) / CONFIG)

    def run(win):
        logits, scores = net(win)
        return [logits[0]] if scores is None else [logits[0], scores[0]]

    run.config = net.config
    return run


def network_config(network):
    """The config exported beside a sensor package (``network.rpk.json`` or
    ``packerOut.zip.json``), or ``None``."""
    from ..runtime import read_sidecar, sidecar_path

    path = Path(network)
    folder = path if path.is_dir() else path.parent
    for candidate in (path / "network.rpk" if path.is_dir() else path, folder / "packerOut.zip"):
        if sidecar_path(candidate).is_file():
            return read_sidecar(candidate)["config"]
    return None


def slot_config(root):
    """The active slot's network config of a device root (for its recommended windows), or ``None``."""
    from ..models.config import PicoSAM2Config
    from ..ops.bundle import CONFIG

    try:
        return PicoSAM2Config.from_dict(json.loads((Path(root) / "active" / CONFIG).read_text()))
    except (OSError, ValueError):
        return None
