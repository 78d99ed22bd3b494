"""One way to run a PicoSAM2 model, whatever its form.

**Input convention** (the only place it is written down): a batch of prompt windows, RGB, cut
and resized to ``config.input_size`` square (:mod:`picosam2.prompts`), scaled to 0..1 (``/255``),
minus ``config.mean`` and divided by ``config.std`` per channel (ImageNet statistics unless the
config says otherwise), float32, laid out NCHW. :func:`normalize` does it.

**Output**: a :class:`RuntimeOutput`: ``logits`` (N, S, S) float32 mask logits of the object at
each window's centre, and ``scores`` (N,) float32 predicted mask IoU in [0, 1] when the model has a
quality head, else ``None``.

Every form carries its :class:`~picosam2.models.config.PicoSAM2Config` (see :func:`form_metadata`):
safetensors beside ``config.json``; ONNX (fp32, INT8, the IMX500's MCT ONNX) in its
``metadata_props`` under :data:`META_KEY`; an OpenVINO IR in ``rt_info``; LiteRT and the IMX500
package in a sidecar JSON. :func:`load_backend` picks the backend and reads the config. A form
without one runs with the defaults of :class:`PicoSAM2Config` (96 px input, ImageNet mean/std, no
point-window recommendation) and a :class:`MissingConfigWarning`.

Only the chosen runtime is imported: the ONNX, OpenVINO and LiteRT paths never import torch.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import BackendError
from .models.config import PicoSAM2Config

#: metadata key (ONNX ``metadata_props``, OpenVINO ``rt_info``) holding :func:`form_metadata` as JSON
META_KEY = "picosam2_config"
#: older key of the IMX500 export: ``rgb255`` when the network takes 0..255 pixels
INPUT_KEY = "picosam2_input"
#: names of the exported graph's outputs
LOGITS_NAME = "mask_logits"
SCORES_NAME = "iou"

BACKENDS = ("torch", "onnx", "openvino", "tflite")
_EXTRAS = {"onnx": "export", "openvino": "openvino", "tflite": "tflite", "mct": "imx500"}


class MissingConfigWarning(UserWarning):
    """A model form carries no PicoSAM2 config: it runs with the default one."""


@dataclass
class RuntimeOutput:
    """What every backend returns for a batch of N windows."""

    logits: np.ndarray  #: (N, S, S) float32 mask logits
    scores: np.ndarray | None = None  #: (N,) float32 predicted IoU in [0, 1], or None without a quality head

    def __len__(self) -> int:
        return len(self.logits)


@runtime_checkable
class Backend(Protocol):
    """A runnable model: ``backend(x)`` with ``x`` normalised float32 (N, 3, S, S) (see the module
    docstring) returns a :class:`RuntimeOutput`. ``metadata`` is the form's :func:`form_metadata`
    (``{}`` when it carries none; the torch backend gives the weights' provenance only)."""

    name: str
    config: PicoSAM2Config
    metadata: dict

    def __call__(self, x: np.ndarray) -> RuntimeOutput:
        """Run the model on a normalised (N, 3, S, S) float32 batch."""


def normalize(windows: np.ndarray, config: PicoSAM2Config) -> np.ndarray:
    """(N, S, S, 3) uint8 windows -> the normalised float32 (N, 3, S, S) input of ``config``'s model."""
    return normalize_batch(windows, config.mean, config.std)


def normalize_batch(windows: np.ndarray, mean, std) -> np.ndarray:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float32: ``(v / 255 - mean) / std`` per channel."""
    x = np.asarray(windows).astype(np.float32) / 255.0
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def run_crops(backend: Backend, crops: np.ndarray, batch_size: int | None = None) -> RuntimeOutput:
    """The one window runner: uint8 RGB windows (N, S, S, 3) (or one (S, S, 3)) are normalised for
    ``backend``'s config and run ``batch_size`` at a time (``None``: all at once).

    Returns:
        A :class:`RuntimeOutput` with (N, S, S) logits and (N,) scores (``None`` without a quality head).
    """
    crops = np.asarray(crops)
    if crops.ndim == 3:
        crops = crops[None]
    size = backend.config.input_size
    step = len(crops) if not batch_size else int(batch_size)
    outs = [backend(normalize(crops[i : i + step], backend.config)) for i in range(0, len(crops), max(step, 1))]
    return concat_outputs(outs, size)


def concat_outputs(outs: list[RuntimeOutput], size: int) -> RuntimeOutput:
    """Several batches' :class:`RuntimeOutput` as one (an empty list gives zero windows of side ``size``)."""
    if not outs:
        return RuntimeOutput(np.zeros((0, size, size), np.float32))
    scores = None if outs[0].scores is None else np.concatenate([o.scores for o in outs])
    return RuntimeOutput(np.concatenate([o.logits for o in outs]), scores)


def denormalize_to_pixels(x: np.ndarray, config: PicoSAM2Config) -> np.ndarray:
    """The inverse of :func:`normalize`, for networks that take 0..255 RGB (the IMX500 export)."""
    mean = np.asarray(config.mean, np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(config.std, np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray(np.round((x * std + mean) * 255.0), dtype=np.float32)


# -- the config carried by each form --------------------------------------------------------------


def form_metadata(config: PicoSAM2Config, weights_info: dict | None = None, input_kind: str = "normalized") -> dict:
    """The description stored in every exported form: the full config, the weights' provenance
    (``sha256`` of the safetensors file, ``recipe``, ``trained``...), the input convention
    (``normalized`` or ``rgb255``) and the output names."""
    return {
        "config": config.to_dict(),
        "weights": dict(weights_info or {}),
        "input": input_kind,
        "outputs": list(config.output_names),
    }


def parse_form_metadata(text: str | None, source: str) -> dict | None:
    """:func:`form_metadata` back from its JSON text (``None`` stays ``None``), with ``config`` as a
    :class:`PicoSAM2Config`."""
    if not text:
        return None
    try:
        meta = json.loads(text)
        meta["config"] = PicoSAM2Config.from_dict(meta["config"])
    except (ValueError, TypeError, KeyError) as exc:
        raise BackendError(f"bad PicoSAM2 metadata in {source}: {exc}") from exc
    return meta


def sidecar_path(path: str | os.PathLike) -> Path:
    """``model.tflite`` -> ``model.tflite.json``: where forms without a metadata field keep theirs."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def write_sidecar(path: str | os.PathLike, meta: dict) -> Path:
    """Write ``meta`` (from :func:`form_metadata`) beside the model file at ``path``."""
    from .io_utils import write_json_atomic

    return write_json_atomic(meta, sidecar_path(path), indent=2)


def read_sidecar(path: str | os.PathLike) -> dict | None:
    """The form metadata in ``path``'s sidecar JSON (:func:`sidecar_path`), or ``None`` without one."""
    side = sidecar_path(path)
    return parse_form_metadata(side.read_text(), str(side)) if side.is_file() else None


def _resolve_config(meta: dict | None, config: PicoSAM2Config | None, source: str) -> PicoSAM2Config:
    """The config given by the caller, else the form's, else the default with a warning."""
    if config is not None:
        return config
    if meta:
        return meta["config"]
    warnings.warn(
        f"{source} carries no PicoSAM2 config: running with the defaults (input "
        f"{PicoSAM2Config().input_size} px, ImageNet mean/std, no recommended point window)",
        MissingConfigWarning,
        stacklevel=3,
    )
    return PicoSAM2Config()


def _split_outputs(outputs: list, names: list[str]) -> RuntimeOutput:
    """(N, 1, S, S) logits and optional (N, 1) IoU -> :class:`RuntimeOutput`; the IoU output is
    found by its name (``iou``) or, unnamed, as the second of two outputs."""
    idx = names.index(LOGITS_NAME) if LOGITS_NAME in names else 0
    logits = np.asarray(outputs[idx], dtype=np.float32)
    logits = logits.reshape(logits.shape[0], *logits.shape[-2:])
    scores = None
    if SCORES_NAME in names:
        scores = outputs[names.index(SCORES_NAME)]
    elif len(outputs) == 2:
        scores = outputs[1 - idx]
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float32).reshape(len(logits))
    return RuntimeOutput(logits, scores)


def _missing(what: str, extra: str) -> BackendError:
    return BackendError(f"{what} needs an optional dependency: pip install 'picosam2[{extra}]'")


def _runtime(module: str, backend: str):
    """Import a backend's runtime module, or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise _missing(f"the {backend} backend", _EXTRAS[backend]) from exc


def _model_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise BackendError(f"model not found: {path}")
    return path


# -- backends --------------------------------------------------------------------------------------


class TorchBackend:
    """A PyTorch :class:`~picosam2.models.PicoSAM2` (eager) on ``device``; ``channels_last`` may be
    faster on CPU. ``threads`` sets torch's intra-op threads (process-wide)."""

    name = "torch"

    def __init__(self, model, device: str = "cpu", channels_last: bool = False, threads: int | None = None):
        import torch

        self.torch = torch
        if threads:
            torch.set_num_threads(threads)
        self.model = model.to(device).eval()
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.channels_last = channels_last
        self.device = device
        self.config = model.config
        self.metadata = {"weights": dict(getattr(model, "weights_info", {}) or {})}

    def __call__(self, x: np.ndarray) -> RuntimeOutput:
        """Run the PyTorch model on a normalised (N, 3, S, S) float32 batch."""
        torch = self.torch
        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
            if self.channels_last:
                t = t.contiguous(memory_format=torch.channels_last)
            out = self.model(t)
            outs = list(out) if isinstance(out, (tuple, list)) else [out]
            return _split_outputs([o.float().cpu().numpy() for o in outs], [LOGITS_NAME, SCORES_NAME][: len(outs)])


class OnnxBackend:
    """An ONNX file in onnxruntime (CPU): the fp32 and INT8 (QDQ) exports, and the IMX500 export's
    MCT-quantized ONNX (its mct-quantizers custom ops are registered on demand; when the file says
    it takes 0..255 pixels the normalised input is mapped back to pixels)."""

    name = "onnx"

    def __init__(self, path: str | os.PathLike, config: PicoSAM2Config | None = None, threads: int | None = None):
        ort = _runtime("onnxruntime", "onnx")
        self.path = _model_file(path)
        self.session = self._session(ort, threads)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.output_names = [o.name for o in self.session.get_outputs()]
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = parse_form_metadata(props.get(META_KEY), str(path)) or {}
        side = inp.shape[-1] if len(inp.shape) == 4 else None
        if config is None and not self.metadata and isinstance(side, int) and side != PicoSAM2Config().input_size:
            config = PicoSAM2Config(input_size=side)  # a foreign file's own input size
        self.config = _resolve_config(self.metadata, config, str(path))
        #: the batch the file fixes (e.g. 1 in a foreign export), run in chunks of it; None: any
        self.fixed_batch = inp.shape[0] if inp.shape and isinstance(inp.shape[0], int) else None
        input_kind = self.metadata.get("input") or props.get(INPUT_KEY, "normalized")
        self.raw_pixels = input_kind == "rgb255"

    def _session(self, ort, threads):
        def options(opts):
            if threads:
                opts.intra_op_num_threads = threads
                opts.inter_op_num_threads = 1
                opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            return opts

        try:
            return ort.InferenceSession(
                str(self.path), options(ort.SessionOptions()), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own classes for a bad file
            if "mct_quantizers" not in str(exc):
                raise BackendError(f"cannot load ONNX model {self.path}: {str(exc).splitlines()[0]}") from exc
        try:
            from mct_quantizers import get_ort_session_options
        except ImportError as exc:
            raise _missing("this MCT-quantized (IMX500) ONNX model", _EXTRAS["mct"]) from exc
        return ort.InferenceSession(
            str(self.path), options(get_ort_session_options()), providers=["CPUExecutionProvider"]
        )

    def __call__(self, x: np.ndarray) -> RuntimeOutput:
        """Run the ONNX model on a normalised (N, 3, S, S) float32 batch."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.raw_pixels:
            x = denormalize_to_pixels(x, self.config)
        b = self.fixed_batch
        if not b or len(x) == b:
            return _split_outputs(self.session.run(None, {self.input_name: x}), self.output_names)
        parts = []
        for i in range(0, len(x), b):
            chunk = x[i : i + b]
            pad = b - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            parts.append([o[: b - pad] for o in self.session.run(None, {self.input_name: chunk})])
        return _split_outputs([np.concatenate(o) for o in zip(*parts)], self.output_names)


def read_onnx_metadata(path: str | os.PathLike) -> dict | None:
    """:func:`form_metadata` of an ONNX file (``None`` when it has none), read with the ``onnx``
    package (no runtime session)."""
    try:
        import onnx
    except ImportError as exc:
        raise _missing("reading ONNX metadata", _EXTRAS["onnx"]) from exc
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - a bad file is a user error
        raise BackendError(f"cannot read ONNX model {path}: {exc}") from exc
    props = {p.key: p.value for p in proto.metadata_props}
    return parse_form_metadata(props.get(META_KEY), str(path))


def write_onnx_metadata(path: str | os.PathLike, meta: dict) -> None:
    """Store ``meta`` (:func:`form_metadata`) in the ONNX file's ``metadata_props`` under
    :data:`META_KEY` (the file is rewritten in place; other properties are kept)."""
    import onnx

    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    props[META_KEY] = json.dumps(meta)
    props[INPUT_KEY] = meta.get("input", "normalized")
    onnx.helper.set_model_props(proto, props)
    onnx.save(proto, str(path))


class OpenVinoBackend:
    """An ONNX file (fp32 or INT8 QDQ) or an OpenVINO IR (``.xml``) compiled by OpenVINO for the CPU
    (``openvino`` extra; VNNI/AMX INT8 kernels on x86). ``batch_size`` fixes the batch axis. Without
    it, each batch size a call brings is compiled once with that batch fixed (static shapes run
    about twice as fast as a dynamic batch on one thread), up to :attr:`STATIC_BATCHES` sizes;
    others run on the dynamic-batch compilation. ``precision`` sets OpenVINO's inference precision
    (``"f32"`` for full float; by default OpenVINO may compute in bf16 on CPUs with AMX)."""

    name = "openvino"
    #: most batch sizes compiled with a static shape when no ``batch_size`` is given
    STATIC_BATCHES = 8

    def __init__(
        self,
        path: str | os.PathLike,
        config: PicoSAM2Config | None = None,
        threads: int | None = None,
        batch_size: int | None = None,
        precision: str | None = None,
    ):
        ov = _runtime("openvino", "openvino")
        self.path = _model_file(path)
        self._core = ov.Core()
        try:
            model = self._core.read_model(str(self.path))
        except Exception as exc:  # noqa: BLE001
            raise BackendError(f"cannot load {self.path} in OpenVINO: {str(exc).splitlines()[0]}") from exc
        self.metadata = self._metadata(model) or {}
        self.config = _resolve_config(self.metadata, config, str(self.path))
        if self.metadata.get("input") == "rgb255":
            raise BackendError(f"{self.path} takes 0..255 pixels (IMX500 export): run it with the onnx backend")
        self._props = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            self._props.update({"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1})
        if precision:
            self._props["INFERENCE_PRECISION_HINT"] = precision
        self._model = model
        self.fixed_batch = int(batch_size) if batch_size else None
        #: the requests compiled for one batch size each (no fixed batch); ``request`` serves the rest
        self._static: dict[int, object] = {}
        self.request = self._compile(self.fixed_batch)
        self.output_names = [next(iter(o.get_names()), "") for o in self._model.outputs]

    def _compile(self, batch: int | None):
        """An infer request of the model compiled with the batch axis fixed to ``batch`` (None: as read)."""
        model = self._model
        if batch is not None:
            size = self.config.input_size
            model = model.clone()
            model.reshape({model.inputs[0].get_any_name(): [batch, self.config.in_channels, size, size]})
        return self._core.compile_model(model, "CPU", self._props).create_infer_request()

    def _request_for(self, batch: int):
        if self.fixed_batch:
            return self.request
        request = self._static.get(batch)
        if request is None and len(self._static) < self.STATIC_BATCHES:
            request = self._static[batch] = self._compile(batch)
        return self.request if request is None else request

    def _metadata(self, model) -> dict | None:
        if self.path.suffix.lower() == ".onnx":
            return read_onnx_metadata(self.path)
        if model.has_rt_info(META_KEY):
            return parse_form_metadata(str(model.get_rt_info(META_KEY)), str(self.path))
        return None

    def __call__(self, x: np.ndarray) -> RuntimeOutput:
        """Run the OpenVINO model on a normalised (N, 3, S, S) float32 batch."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        result = self._request_for(int(x.shape[0])).infer({0: x})
        return _split_outputs([result[i] for i in range(len(self.output_names))], self.output_names)


class LiteRTBackend:
    """A ``.tflite`` file in the LiteRT interpreter (``tflite`` extra), whatever its own input and
    output types and layouts (int8 quantized, NHWC): the normalised float input is quantized and the
    outputs dequantized with the scales in the file. Its config is in the sidecar ``<file>.json``."""

    name = "tflite"

    def __init__(self, path: str | os.PathLike, config: PicoSAM2Config | None = None, threads: int | None = None):
        interpreter = _runtime("ai_edge_litert.interpreter", "tflite")
        self.path = _model_file(path)
        self.metadata = read_sidecar(self.path) or {}
        self.config = _resolve_config(self.metadata, config, str(self.path))
        self.interp = interpreter.Interpreter(model_path=str(self.path), num_threads=threads)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]
        self.outs = self.interp.get_output_details()
        self.output_names = [SCORES_NAME if len(o["shape"]) == 2 else LOGITS_NAME for o in self.outs]

    @staticmethod
    def _quantize(x: np.ndarray, detail) -> np.ndarray:
        scale, zero = detail["quantization"]
        if detail["dtype"] in (np.int8, np.uint8) and scale:
            info = np.iinfo(detail["dtype"])
            return np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])
        return x.astype(detail["dtype"])

    @staticmethod
    def _dequantize(y: np.ndarray, detail) -> np.ndarray:
        scale, zero = detail["quantization"]
        if detail["dtype"] in (np.int8, np.uint8) and scale:
            return (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)

    def _one(self, x: np.ndarray) -> list[np.ndarray]:
        shape = tuple(self.inp["shape"])
        if shape[-1] == 3 and shape[1] != 3:  # NHWC file
            x = x.transpose(0, 2, 3, 1)
        self.interp.set_tensor(self.inp["index"], self._quantize(np.ascontiguousarray(x), self.inp))
        self.interp.invoke()
        outs = [self._dequantize(self.interp.get_tensor(o["index"]), o) for o in self.outs]
        return [o.squeeze(-1) if o.ndim == 4 and o.shape[-1] == 1 else o for o in outs]  # NHWC logits

    def __call__(self, x: np.ndarray) -> RuntimeOutput:
        """Run the LiteRT model on a normalised (N, 3, S, S) float32 batch, one window at a time."""
        per_window = [self._one(x[i : i + 1]) for i in range(len(x))]
        outputs = [np.concatenate([w[k] for w in per_window]) for k in range(len(self.outs))]
        return _split_outputs(outputs, self.output_names)


# -- choosing one ----------------------------------------------------------------------------------


def backend_for_path(path: str | os.PathLike | None) -> str:
    """The default backend for a model path: ``.onnx`` -> onnx, ``.xml`` -> openvino, ``.tflite`` ->
    tflite, anything else (weights folder, ``.safetensors``, Hub name, ``None``) -> torch."""
    suffix = Path(str(path)).suffix.lower() if path is not None else ""
    return {".onnx": "onnx", ".xml": "openvino", ".tflite": "tflite"}.get(suffix, "torch")


def available_backends() -> list[str]:
    """The backends whose runtime is installed here."""
    import importlib.util

    modules = {"torch": "torch", "onnx": "onnxruntime", "openvino": "openvino", "tflite": "ai_edge_litert"}
    return [b for b in BACKENDS if importlib.util.find_spec(modules[b]) is not None]


def load_backend(
    weights=None,
    backend: str | None = None,
    threads: int | None = None,
    config: PicoSAM2Config | None = None,
    **options,
) -> Backend:
    """Open a model form for inference.

    Args:
        weights: a torch module (:class:`~picosam2.models.PicoSAM2`), a weights folder or
            ``.safetensors`` file, a PyTorch checkpoint (``.pt``: the PicoSAM2 authors' state_dict or
            ours), a shipped or Hub name (``None``: the shipped default), or the path of an exported
            ``.onnx`` (ours, or a foreign one such as the authors' MCT ONNX: its input and batch are
            read from the file, the paper's defaults assumed) / ``.xml`` (OpenVINO IR) / ``.tflite`` file.
        backend: ``torch``, ``onnx``, ``openvino`` or ``tflite``; ``None`` picks it from the path
            (:func:`backend_for_path`).
        threads: intra-op threads of the runtime (``None``: its default).
        config: overrides the config the form carries (for forms that have none).
        **options: backend-specific: ``device``/``channels_last`` (torch), ``batch_size`` and
            ``precision`` (openvino).

    Returns:
        A :class:`Backend`.

    Raises:
        BackendError: unknown backend, missing runtime, or a file it cannot load.
        WeightsError: torch weights that cannot be found or read.
    """
    if weights is not None and not isinstance(weights, (str, os.PathLike)):  # a torch module
        return TorchBackend(weights, threads=threads, **options)
    backend = backend or backend_for_path(weights)
    if backend == "torch":
        if backend_for_path(weights) != "torch":
            raise BackendError(f"{weights} is an exported model: run it with backend {backend_for_path(weights)!r}")
        from .models import from_pretrained

        return TorchBackend(from_pretrained(weights), threads=threads, **options)
    classes = {"onnx": OnnxBackend, "openvino": OpenVinoBackend, "tflite": LiteRTBackend}
    if backend not in classes:
        raise BackendError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if weights is None or backend_for_path(weights) == "torch":
        raise BackendError(f"the {backend} backend runs an exported model file (.onnx, .xml, .tflite), not {weights}")
    return classes[backend](weights, config=config, threads=threads, **options)
