"""Predictor: an image plus prompts in, full-size masks out.

Usage::

    from picosam2 import Predictor
    predictor = Predictor.from_pretrained()          # the shipped default weights
    result = predictor.predict("photo.jpg", points=[[320, 240]], boxes=[[10, 20, 200, 180]])
    result.masks      # (N, H, W) bool, one per prompt: points first, then boxes
    result.logits     # (N, 96, 96) float32 window logits
    result.windows    # N Window rectangles in image pixels

Prompt shapes (all in full-image pixels, x to the right, y down):

* ``points``: ``(N, 2)`` array-like of ``[x, y]``. **Each point is its own prompt** and gives
  its own mask (PicoSAM2 takes one positive click per object; there are no negative points).
* ``boxes``: ``(M, 4)`` array-like of ``[x0, y0, x1, y1]`` (corners, XYXY).

All prompts of one image go through the network in one batch. :meth:`Predictor.set_image`
keeps an image so that it is converted once and prompted many times.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .image_io import load_image
from .prompts import MODEL_SIZE, PromptError, Window, crop_image, window_for_prompt, window_mask

#: Default cap on prompts per :meth:`Predictor.predict` call (``max_prompts``; the CLI's
#: ``--max-prompts``). Memory does not grow with the count (masks are made one window at a
#: time); the cap bounds the time, which is the model's cost per window.
MAX_PROMPTS = 1000


class UntrainedWeightsWarning(UserWarning):
    """The weights in use were never trained: masks are meaningless."""


def normalize_batch(windows: np.ndarray, mean, std) -> np.ndarray:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float32, normalised with ``mean``/``std`` (0..1 scale)."""
    x = windows.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


class TorchBackend:
    """Runs a PyTorch PicoSAM2 module on CPU (or ``device``)."""

    name = "torch"

    def __init__(self, model, device: str = "cpu"):
        import torch

        self.torch = torch
        self.model = model.to(device).eval()
        self.device = device
        self.config = model.config

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device)
            return self.model(x)[:, 0].float().cpu().numpy()


class OnnxBackend:
    """Runs an exported ONNX model (fp32 or INT8 QDQ) through onnxruntime. Also runs the IMX500
    export's MCT-quantized ONNX (``picosam2 export --format imx500``): its mct-quantizers custom
    ops are registered, and when its metadata says it takes 0..255 pixels
    (``picosam2_input=rgb255``) the normalised batch is mapped back to pixels."""

    name = "onnx"

    def __init__(self, path: str | os.PathLike, config=None, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeError("the onnx backend needs onnxruntime: pip install 'picosam2[export]'") from None
        from .models import PicoSAM2Config

        opts = ort.SessionOptions()
        try:
            self.session = ort.InferenceSession(
                str(path), self._threads(opts, threads), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001
            if "mct_quantizers" not in str(exc):
                raise ValueError(f"cannot load ONNX model {path}: {exc}") from None
            try:
                from mct_quantizers import get_ort_session_options
            except ImportError:
                raise RuntimeError("this is an MCT (IMX500) model: pip install 'picosam2[imx500]'") from None
            opts = self._threads(get_ort_session_options(), threads)
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.config = config or PicoSAM2Config()
        meta = self.session.get_modelmeta().custom_metadata_map
        self.raw_pixels = meta.get("picosam2_input") == "rgb255"

    @staticmethod
    def _threads(opts, threads):
        if threads:
            opts.intra_op_num_threads = threads
        return opts

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.raw_pixels:
            mean = np.asarray(self.config.mean, np.float32).reshape(1, -1, 1, 1)
            std = np.asarray(self.config.std, np.float32).reshape(1, -1, 1, 1)
            batch = np.ascontiguousarray(np.round((batch * std + mean) * 255.0), dtype=np.float32)
        out = self.session.run(None, {self.input_name: batch})[0]
        return np.asarray(out, dtype=np.float32)[:, 0]


class OpenVinoBackend:
    """Runs an exported ONNX model (fp32 or INT8 QDQ) through OpenVINO (``openvino`` extra), which
    on x86 uses VNNI INT8 kernels and was the fastest CPU runtime in ``benchmarks/RESULTS.md``."""

    name = "openvino"

    def __init__(self, path: str | os.PathLike, config=None, threads: int | None = None):
        try:
            import openvino as ov
        except ImportError:
            raise RuntimeError("the openvino backend needs OpenVINO: pip install 'picosam2[openvino]'") from None
        from .models import PicoSAM2Config

        core = ov.Core()
        props = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            props["INFERENCE_NUM_THREADS"] = threads
        try:
            self.compiled = core.compile_model(str(path), "CPU", props)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"cannot load ONNX model {path} in OpenVINO: {exc}") from None
        self.request = self.compiled.create_infer_request()
        self.config = config or PicoSAM2Config()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        out = self.request.infer({0: batch})[0]
        return np.asarray(out, dtype=np.float32)[:, 0]


BACKENDS = {"torch": TorchBackend, "onnx": OnnxBackend, "openvino": OpenVinoBackend}


@dataclass
class Prediction:
    """The answer to one :meth:`Predictor.predict` call. Masks are made on demand from the
    window logits, one window at a time: :meth:`union`, :meth:`mask` and :meth:`parts` cost
    memory in the image's size whatever the number of prompts; :attr:`masks` stacks them all."""

    logits: np.ndarray  #: (N, S, S) float32 window logits
    windows: list[Window] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  #: "point" or "box", per prompt
    image_size: tuple[int, int] = (0, 0)  #: (width, height)
    threshold: float = 0.0

    def __len__(self) -> int:
        return len(self.windows)

    def parts(self):
        """Per prompt, ``(slices, bool patch)``: the mask is the patch at ``slices`` and False
        elsewhere (``None`` when the window misses the image)."""
        for lg, win in zip(self.logits, self.windows):
            yield window_mask(lg, win, self.image_size, self.threshold)

    def mask(self, k: int) -> np.ndarray:
        """Full-size (H, W) boolean mask of prompt ``k``."""
        width, height = self.image_size
        out = np.zeros((height, width), bool)
        part = window_mask(self.logits[k], self.windows[k], self.image_size, self.threshold)
        if part is not None:
            out[part[0]] = part[1]
        return out

    @property
    def masks(self) -> np.ndarray:
        """(N, H, W) bool, one full-size mask per prompt (N times the image: prefer :meth:`union`,
        :meth:`mask` or :meth:`parts` for many prompts)."""
        width, height = self.image_size
        return np.stack([self.mask(k) for k in range(len(self))]) if len(self) else np.zeros((0, height, width), bool)

    def union(self) -> np.ndarray:
        """(H, W) bool: the union of all prompts' masks."""
        width, height = self.image_size
        out = np.zeros((height, width), bool)
        for part in self.parts():
            if part is not None:
                out[part[0]] |= part[1]
        return out


def _as_prompt_array(values, width: int, name: str) -> np.ndarray:
    if values is None:
        return np.zeros((0, width), dtype=np.float64)
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise PromptError(f"{name} must be numbers, got {values!r}") from None
    if arr.size == 0:
        return np.zeros((0, width), dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == width:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != width:
        raise PromptError(f"{name} must have shape (N, {width}), got {arr.shape}")
    return arr


class Predictor:
    """Prompted segmentation with a PicoSAM2 model.

    ``window_size``: side in image pixels of a point prompt's window (96 = the paper; larger
    sees more context and is resized to the model input); ``None`` takes the weights'
    recommended ``config.extra["point_window_size"]`` when they give one, else 96. ``point_mode``: ``centered``
    (padding keeps the point centred) or ``paper`` (the reference clip-and-stretch).
    ``box_padding``: margin added on each side of a box, as a fraction of its longer side.
    ``max_prompts``: most prompts per call (:data:`MAX_PROMPTS`; ``None``: no cap); more raise
    :class:`PromptError`.
    """

    def __init__(
        self,
        model=None,
        backend=None,
        window_size: int | None = None,
        point_mode: str = "centered",
        box_padding: float = 0.1,
        threshold: float = 0.0,
        batch_size: int = 64,
        max_prompts: int | None = MAX_PROMPTS,
    ):
        if backend is None:
            if model is None:
                raise ValueError("give a model or a backend")
            backend = TorchBackend(model)
        self.backend = backend
        self.config = backend.config
        self.input_size = self.config.input_size
        if window_size is None:
            window_size = int((getattr(self.config, "extra", None) or {}).get("point_window_size", MODEL_SIZE))
        self.window_size = window_size
        self.point_mode = point_mode
        self.box_padding = box_padding
        self.threshold = threshold
        self.batch_size = batch_size
        self.max_prompts = max_prompts
        self._image: np.ndarray | None = None

    @classmethod
    def from_pretrained(cls, weights=None, backend: str = "torch", warn_untrained: bool = True, **kwargs) -> Predictor:
        """``weights``: a folder/file of safetensors weights or ``None`` for the shipped default;
        with ``backend="onnx"`` or ``"openvino"``, the path of an ``.onnx`` file."""
        if backend in ("onnx", "openvino"):
            if weights is None or not str(weights).endswith(".onnx"):
                raise ValueError(f"the {backend} backend needs --weights MODEL.onnx (see `picosam2 export`)")
            if not Path(weights).exists():
                raise ValueError(f"ONNX model not found: {weights}")
            return cls(backend=BACKENDS[backend](weights), **kwargs)
        if backend != "torch":
            raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        from .models import from_pretrained, weights_metadata

        if warn_untrained and weights_metadata(weights).get("trained", "true").lower() == "false":
            warnings.warn(
                "these weights are an UNTRAINED placeholder: the masks mean nothing",
                UntrainedWeightsWarning,
                stacklevel=2,
            )
        return cls(from_pretrained(weights), **kwargs)

    def set_image(self, image) -> np.ndarray:
        self._image = load_image(image)
        return self._image

    def windows(self, image_size, points=None, boxes=None) -> tuple[list[Window], list[str]]:
        pts = _as_prompt_array(points, 2, "points")
        bxs = _as_prompt_array(boxes, 4, "boxes")
        if self.max_prompts is not None and len(pts) + len(bxs) > self.max_prompts:
            raise PromptError(
                f"{len(pts) + len(bxs)} prompts: at most {self.max_prompts} per call (raise the cap with --max-prompts)"
            )
        wins = [window_for_prompt(p, image_size, "point", self.window_size, self.point_mode) for p in pts]
        wins += [window_for_prompt(b, image_size, "box", box_padding=self.box_padding) for b in bxs]
        return wins, ["point"] * len(pts) + ["box"] * len(bxs)

    def predict_windows(self, image: np.ndarray, windows: list[Window]) -> np.ndarray:
        """Window logits (N, S, S) for windows of an HWC uint8 image."""
        size = self.input_size
        out = []
        for i in range(0, len(windows), self.batch_size):
            crops = np.stack([crop_image(image, w, size) for w in windows[i : i + self.batch_size]])
            out.append(self.backend(normalize_batch(crops, self.config.mean, self.config.std)))
        return np.concatenate(out) if out else np.zeros((0, size, size), np.float32)

    def predict(self, image=None, points=None, boxes=None) -> Prediction:
        if image is None:
            if self._image is None:
                raise ValueError("no image: pass one or call set_image first")
            arr = self._image
        else:
            arr = load_image(image)
        height, width = arr.shape[:2]
        wins, kinds = self.windows((width, height), points, boxes)
        if not wins:
            raise PromptError("give at least one point or box")
        logits = self.predict_windows(arr, wins)
        return Prediction(
            logits=logits, windows=wins, kinds=kinds, image_size=(width, height), threshold=self.threshold
        )
