"""Weights from other files: the PicoSAM2 authors' checkpoint, our training checkpoints, ONNX.

The authors' released checkpoint (``PicoSAM2_student_epoch1.pt``, pbonazzi/picosam2) is a plain
PyTorch ``state_dict`` of their ``PicoSAM2`` module. It is our network without the quality head,
tensor for tensor, under other names:

=====================================  ==========================================
their name                             ours
=====================================  ==========================================
``encoder_stage{i}.{k}.*`` (i = 1..4)  ``encoder.{i-1}.{k}.*``
``down{i}.weight``                     ``downsample.{i-1}.weight``
``bottleneck.{k}.*``                   ``bottleneck.{k}.*``
``up{i}.1.{k}.*`` (after the x2 up)    ``decoder.{i-1}.{k}.*``
``skip_conn{i}.*`` (i = 4..1)          ``skip.{4-i}.*``
``output_head.*``                      ``head.*``
=====================================  ==========================================

Their forward pass is ours: each decoder level is nearest x2 upsampling, a separable block, plus
the 1x1 projection of the encoder feature of that resolution; the head is a 1x1 convolution to
one logit. Input: 96 x 96 RGB, ImageNet mean/std (:class:`~picosam2.models.config.PicoSAM2Config`'s
defaults), so their weights need no config of their own.

Readers here never run code from a file: ``.pt``/``.pth``/``.ckpt`` go through
``torch.load(..., weights_only=True)``; ONNX files are read as protobuf. Every mapping is strict:
a key that maps nowhere, a tensor the network lacks or a tensor of another shape is refused with
a one-line :class:`~picosam2.errors.WeightsError`.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import WeightsError
from ..io_utils import sha256_file
from .config import PicoSAM2Config

#: file suffixes read as PyTorch checkpoints (``torch.load(weights_only=True)``)
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
#: the layouts :func:`detect_layout` tells apart
LAYOUTS = {
    "paper": "the PicoSAM2 authors' PicoSAM2 state_dict (pbonazzi/picosam2)",
    "picosam2": "a picosam2 PicoSAM2 state_dict",
    "onnx": "an ONNX graph",
}

_PAPER_RULES = [
    (re.compile(r"^encoder_stage([1-4])\.(.+)$"), lambda m: f"encoder.{int(m[1]) - 1}.{m[2]}"),
    (re.compile(r"^down([1-4])\.(weight)$"), lambda m: f"downsample.{int(m[1]) - 1}.{m[2]}"),
    (re.compile(r"^bottleneck\.(.+)$"), lambda m: f"bottleneck.{m[1]}"),
    (re.compile(r"^up([1-4])\.1\.(.+)$"), lambda m: f"decoder.{int(m[1]) - 1}.{m[2]}"),
    (re.compile(r"^skip_conn([1-4])\.(weight|bias)$"), lambda m: f"skip.{4 - int(m[1])}.{m[2]}"),
    (re.compile(r"^output_head\.(weight|bias)$"), lambda m: f"head.{m[1]}"),
]


def is_torch_checkpoint(path) -> bool:
    """Whether ``path`` names a PyTorch checkpoint file (by its suffix)."""
    return Path(str(path)).suffix.lower() in TORCH_SUFFIXES


def paper_name(key: str) -> str | None:
    """Our name of one of the authors' state_dict keys, or None when it maps nowhere."""
    for pattern, target in _PAPER_RULES:
        m = pattern.match(key)
        if m:
            return target(m)
    return None


# -- reading ---------------------------------------------------------------------------------------


def read_torch_file(path) -> dict:
    """The tensors of a PyTorch checkpoint, read with ``weights_only=True`` (no code runs).

    A Lightning checkpoint (``state_dict`` inside) gives its EMA network when it has one, else its
    ``model``; a ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper gives what it wraps; a
    ``module.`` prefix (DataParallel) is dropped."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights not found: {path}")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsafe content"
        raise WeightsError(f"{path} holds more than tensors and is not read (weights_only): {first}") from exc
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file is the same user error
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"cannot read {path} as a PyTorch checkpoint: {first}") from exc
    for wrapper in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"{path} is not a state_dict (a dict of tensors)")
    state = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        state[str(key)] = value
    for prefix in ("ema_model.", "model."):  # a training checkpoint: its (EMA) network
        sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if sub:
            return sub
    if all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state


def detect_layout(state: dict, source: str = "weights") -> str:
    """``paper`` (the authors' names) or ``picosam2`` (ours), from the keys."""
    keys = set(state)
    if any(k.startswith(("encoder_stage1.", "output_head.")) for k in keys):
        return "paper"
    if any(k.startswith(("encoder.0.", "head.")) for k in keys):
        return "picosam2"
    example = sorted(keys)[0] if keys else "nothing"
    raise WeightsError(f"{source}: not a PicoSAM2 state_dict in a known layout (first key {example!r})")


def _check_state(state: dict, config: PicoSAM2Config, source: str, names: dict | None = None) -> dict:
    """``state`` when its keys and shapes are exactly those of ``config``'s network; else one line."""
    from .picosam2 import PicoSAM2

    expected = PicoSAM2(config).state_dict()
    names = names or {}

    def theirs(k):
        return f"{names[k]!r} (ours {k!r})" if k in names and names[k] != k else repr(k)

    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise WeightsError(f"{source}: tensor {missing[0]!r}{more} of the {config.arch} network is missing")
    if extra:
        more = f" and {len(extra) - 1} more" if len(extra) > 1 else ""
        raise WeightsError(f"{source}: unexpected tensor {theirs(extra[0])}{more}")
    if wrong:
        k = wrong[0]
        raise WeightsError(
            f"{source}: tensor {theirs(k)} has shape {list(state[k].shape)}, the network expects "
            f"{list(expected[k].shape)}"
        )
    return {k: state[k].to(expected[k].dtype) for k in expected}


def map_state(state: dict, source: str = "weights") -> tuple[dict, PicoSAM2Config, str]:
    """``(our state_dict, config, layout)`` of a state_dict in either layout, strictly checked.

    The authors' layout gets the paper's config (no quality head); ours gets a quality head when
    its tensors are there."""
    layout = detect_layout(state, source)
    if layout == "paper":
        mapped, names = {}, {}
        for key, value in state.items():
            ours = paper_name(key)
            if ours is None:
                raise WeightsError(f"{source}: tensor {key!r} maps to no tensor of the PicoSAM2 network")
            if ours in mapped:
                raise WeightsError(f"{source}: tensors {names[ours]!r} and {key!r} both map to {ours!r}")
            mapped[ours], names[ours] = value, key
        config = PicoSAM2Config()
        return _check_state(mapped, config, source, names), config, layout
    has_head = any(k.startswith("quality.") for k in state)
    config = PicoSAM2Config(arch="picosam2-q", quality_head=True) if has_head else PicoSAM2Config()
    return _check_state(dict(state), config, source), config, layout


def load_checkpoint(path, map_location: str = "cpu"):
    """A :class:`~picosam2.models.PicoSAM2` (eval mode) from a PyTorch checkpoint in either layout;
    its ``weights_info`` holds :func:`checkpoint_metadata` and the file's sha256."""
    from .picosam2 import PicoSAM2

    state, config, layout = map_state(read_torch_file(path), str(path))
    model = PicoSAM2(config)
    model.load_state_dict(state, strict=True)
    model.weights_info = {**source_metadata(path, layout), "sha256": sha256_file(path)}
    return model.to(map_location).eval()


def source_metadata(path, layout: str) -> dict:
    """Weights metadata of a file read through a conversion: where the tensors came from."""
    return {"trained": "true", "source_file": Path(str(path)).name, "source_layout": layout}


def checkpoint_metadata(path) -> dict:
    """:func:`source_metadata` of a PyTorch checkpoint (its layout read from its keys)."""
    state = read_torch_file(path)
    return source_metadata(path, detect_layout(state, str(path)))


# -- ONNX ------------------------------------------------------------------------------------------


def _onnx_tensors(path) -> tuple[list[dict], dict]:
    """Per ``Conv`` node of an ONNX file: its weight, bias (or None), group and the
    ``BatchNormalization`` right after it (or None). Weights are followed back through
    ``DequantizeLinear``, ``Identity``/``Cast`` and one-input quantizer nodes to an initializer."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise WeightsError("reading ONNX weights needs the onnx package: pip install 'picosam2[export]'") from exc
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001
        raise WeightsError(f"cannot read ONNX model {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from exc
    graph = proto.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {}
    for node in graph.node:
        for out in node.output:
            producer[out] = node
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    inits[node.output[0]] = numpy_helper.to_array(attr.t)
    consumers: dict[str, list] = {}
    for node in graph.node:
        for inp in node.input:
            consumers.setdefault(inp, []).append(node)

    def value(name: str, depth: int = 0):
        if name in inits:
            return np.asarray(inits[name], dtype=np.float64)
        node = producer.get(name)
        if node is None or depth > 8:
            return None
        if node.op_type == "DequantizeLinear":
            q = value(node.input[0], depth + 1)
            scale = value(node.input[1], depth + 1)
            zero = value(node.input[2], depth + 1) if len(node.input) > 2 and node.input[2] else 0.0
            if q is None or scale is None:
                return None
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            if np.ndim(scale) == 1 and q.ndim > 1:
                shape = [1] * q.ndim
                shape[axis] = -1
                scale = scale.reshape(shape)
                zero = np.reshape(zero, shape) if np.ndim(zero) == 1 else zero
            return (q - zero) * scale
        if node.input and node.input[0]:
            return value(node.input[0], depth + 1)  # Identity, Cast, a weight quantizer
        return None

    convs = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        weight = value(node.input[1])
        if weight is None:
            raise WeightsError(f"{path}: the weights of Conv node {node.name!r} are not constants of the file")
        bias = value(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        bn = None
        after = consumers.get(node.output[0], [])
        if len(after) == 1 and after[0].op_type == "BatchNormalization":
            b = after[0]
            eps = next((a.f for a in b.attribute if a.name == "epsilon"), 1e-5)
            bn = [value(n) for n in b.input[1:5]] + [eps]
        convs.append({"name": node.name, "weight": weight, "bias": bias, "group": group, "bn": bn})
    props = {p.key: p.value for p in proto.metadata_props}
    return convs, props


def read_onnx_state(path) -> tuple[dict, PicoSAM2Config]:
    """Our state_dict and config from an ONNX export of the network (ours, the authors' MCT ONNX,
    any exporter): every ``Conv`` is matched to ours by its weight's shape (unique in this network).
    A sensor export's input normalisation (a 1x1 depthwise convolution) is left out: the config's
    mean/std do that. Biases a quantizer added where the network has none (MCT's bias correction
    on the stride-2 convolutions) are dropped with a warning.
    Exporters fold each BatchNorm into the convolution before it, so the BatchNorms come back as
    identities carrying the folded bias; the network computes the same function. Quantized weights
    come back dequantized."""
    import torch

    from .picosam2 import PicoSAM2

    convs, props = _onnx_tensors(path)
    meta = None
    if "picosam2_config" in props:
        try:
            meta = json.loads(props["picosam2_config"])
        except ValueError:
            meta = None
    n_head = sum(1 for c in convs if c["weight"].ndim == 4 and c["weight"].shape[1] > 320)
    if meta and isinstance(meta.get("config"), dict):
        config = PicoSAM2Config.from_dict(meta["config"])
    else:
        config = PicoSAM2Config(arch="picosam2-q", quality_head=True) if n_head else PicoSAM2Config()
    model = PicoSAM2(config)
    # our convolutions by weight shape, each with the BatchNorm that follows it (None: none)
    slots: dict[tuple, tuple] = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Sequential):
            kids = list(module.named_children())
            for (n1, m1), (n2, m2) in zip(kids, kids[1:]):
                if isinstance(m1, torch.nn.Conv2d) and isinstance(m2, torch.nn.BatchNorm2d):
                    slots[tuple(m1.weight.shape)] = (f"{name}.{n1}", f"{name}.{n2}")
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d) and tuple(module.weight.shape) not in slots:
            slots[tuple(module.weight.shape)] = (name, None)
    expected = model.state_dict()
    state: dict = {}
    dropped: list[float] = []
    for conv in convs:
        shape = tuple(conv["weight"].shape)
        if shape == (config.in_channels, 1, 1, 1) and conv["group"] == config.in_channels:
            continue  # the input normalisation of a sensor export (0..255 pixels in): the config's mean/std
        if shape not in slots:
            raise WeightsError(f"{path}: Conv {conv['name']!r} with weights {list(shape)} has no place in the network")
        conv_name, bn_name = slots.pop(shape)
        w, b = conv["weight"], conv["bias"]
        if conv["bn"] is not None:
            gamma, beta, mean, var, eps = conv["bn"]
            if any(v is None for v in (gamma, beta, mean, var)):
                raise WeightsError(f"{path}: the BatchNormalization after {conv['name']!r} has non-constant inputs")
            k = gamma / np.sqrt(var + eps)
            w = w * k.reshape(-1, 1, 1, 1)
            b = beta + ((b if b is not None else 0.0) - mean) * k
        if bn_name is None:
            if b is not None and f"{conv_name}.bias" not in expected:
                if np.abs(b).max() > 1e-6:  # a quantizer's bias correction (MCT): dropped, said once
                    dropped.append(float(np.abs(b).max()))
                b = None
            state[f"{conv_name}.weight"] = torch.from_numpy(w.astype(np.float32))
            if f"{conv_name}.bias" in expected:
                if b is None:
                    b = np.zeros(shape[0])
                state[f"{conv_name}.bias"] = torch.from_numpy(np.asarray(b, np.float32))
            continue
        state[f"{conv_name}.weight"] = torch.from_numpy(w.astype(np.float32))
        # identity BatchNorm (var + eps = 1 exactly in float32 terms) carrying the folded bias
        c = shape[0]
        eps = model.get_submodule(bn_name).eps
        state[f"{bn_name}.weight"] = torch.ones(c)
        state[f"{bn_name}.bias"] = torch.from_numpy(np.asarray(b if b is not None else np.zeros(c), np.float32))
        state[f"{bn_name}.running_mean"] = torch.zeros(c)
        state[f"{bn_name}.running_var"] = torch.full((c,), 1.0 - eps)
        state[f"{bn_name}.num_batches_tracked"] = torch.tensor(0)
    if slots:
        shape, (conv_name, _) = next(iter(slots.items()))
        raise WeightsError(f"{path}: no Conv for {conv_name!r} (weights {list(shape)}) in the file")
    if dropped:
        import warnings

        warnings.warn(
            f"{path}: {len(dropped)} convolution bias(es) the network has no place for were dropped (largest "
            f"|b| {max(dropped):.3g}; a quantizer's bias correction): the weights approximate the file",
            stacklevel=2,
        )
    return _check_state(state, config, str(path)), config


# -- the command ------------------------------------------------------------------------------------


def read_source(path) -> tuple[dict, PicoSAM2Config, str]:
    """``(our state_dict, config, layout)`` of any source :func:`convert` takes."""
    if not Path(str(path)).exists():
        from .registry import resolve_weights

        path = resolve_weights(path)  # a shipped or Hub name; raises WeightsError when there is none
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        state, config = read_onnx_state(path)
        return state, config, "onnx"
    if is_torch_checkpoint(path):
        return map_state(read_torch_file(path), str(path))
    from .registry import from_pretrained

    model = from_pretrained(path)  # a weights folder or .safetensors
    return model.state_dict(), model.config, "picosam2"


def convert(source, out, force: bool = False, drop_quality_head: bool = False) -> Path:
    """Write ``source`` (the authors' ``.pt``, one of our checkpoints or weights, or an ONNX file)
    as a weights folder ``out``: ``model.safetensors``, ``config.json`` and a model card naming the
    source file and its sha256. Built in a temporary folder beside ``out`` and renamed into place,
    so a failure leaves no partial folder. ``drop_quality_head`` keeps the network without its
    quality head (as the paper's), with the paper's defaults for clicks (one 96 px window).

    Raises:
        WeightsError: an unreadable source, a key that maps nowhere, a missing tensor, a shape that
            does not fit, or ``out`` already holding files (unless ``force``).
    """
    from .picosam2 import PicoSAM2
    from .registry import CARD_FILE, model_card, save_pretrained

    state, config, layout = read_source(source)
    source, out = Path(str(source)), Path(out)
    if not source.exists():
        from .registry import resolve_weights

        source = resolve_weights(str(source))
    if drop_quality_head and config.quality_head:
        import dataclasses

        state = {k: v for k, v in state.items() if not k.startswith("quality.")}
        config = dataclasses.replace(config, arch="picosam2", quality_head=False, extra={})
    if out.exists() and not out.is_dir():
        raise WeightsError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise WeightsError(f"--out {out} is not empty (use --force to replace it)")
    if not out.parent.is_dir():
        raise WeightsError(f"--out: folder {out.parent} does not exist")
    model = PicoSAM2(config)
    model.load_state_dict(state, strict=True)
    weights_file = source / "model.safetensors" if source.is_dir() else source
    digest = sha256_file(weights_file) if weights_file.is_file() else None
    meta = {**source_metadata(source, layout), "source_sha256": digest or "(folder)"}
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        save_pretrained(model.eval(), tmp, metadata=meta, card=False)
        card = model_card(config, meta) + _source_section(source, layout, digest, config)
        (tmp / CARD_FILE).write_text(card)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _source_section(source: Path, layout: str, digest: str | None, config: PicoSAM2Config) -> str:
    head = (
        "This network has a quality head: scale-aware clicks choose their window by its score."
        if config.quality_head
        else "This network has no quality head (as in the paper): one 96 px window per click by default; "
        "scale-aware clicks (`--point-scales auto`) choose their window by the border rule "
        "(the smallest window whose mask ends inside it) unless `picosam2 calibrate-scores` adds a calibration."
    )
    return f"""
## Source

Converted by `picosam2 convert` from `{source.name}` ({LAYOUTS[layout]}).

- sha256 of the source file: `{digest or "(a folder)"}`
- input: {config.input_size} x {config.input_size} RGB, mean {list(config.mean)}, std {list(config.std)}

{head}
"""


def add_parser(sub) -> list[str]:
    p = sub.add_parser(
        "convert",
        help="the PicoSAM2 authors' .pt, our checkpoints or an ONNX -> a weights folder",
        description="Convert weights to a picosam2 weights folder (model.safetensors, config.json, a model card "
        "naming the source and its sha256). SRC: the PicoSAM2 authors' checkpoint (PicoSAM2_student_epoch1.pt), "
        "one of our training checkpoints (.ckpt/.pt), a weights folder, or an ONNX export (ours or the authors' "
        "MCT-quantized one: BatchNorms come back folded, quantized weights dequantized). Every tensor is mapped "
        "and shape-checked; PyTorch files are read with weights_only=True.",
    )
    p.add_argument("source", metavar="SRC", help=".pt/.pth/.ckpt, .onnx, weights folder or .safetensors")
    p.add_argument("--out", required=True, metavar="FOLDER", help="weights folder to write (must be new or empty)")
    p.add_argument("--force", action="store_true", help="replace FOLDER when it already holds files")
    p.add_argument(
        "--drop-quality-head",
        action="store_true",
        help="write the network without its quality head (as the paper's; clicks fall back to the border rule)",
    )
    p.set_defaults(func=run)
    return ["convert"]


def run(args) -> int:
    import sys

    out = convert(args.source, args.out, force=args.force, drop_quality_head=args.drop_quality_head)
    from .registry import from_pretrained

    model = from_pretrained(out)
    n = sum(p.numel() for p in model.parameters())
    head = "with a quality head" if model.config.quality_head else "no quality head"
    print(f"{out}: {n:,} parameters, {head}, from {Path(args.source).name}", file=sys.stderr)
    return 0
