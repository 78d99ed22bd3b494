"""Training configuration: nested dataclasses, read from YAML, overridden with ``key=value``.

A config file mirrors :class:`TrainConfig`::

    seed: 0
    data:
      train_annotations: data/coco/annotations/instances_train2017.json
      train_images: [data/coco/images/train2017]
    optim:
      lr: 3.0e-4
    loss:
      mode: distill
      alpha: dynamic

Overrides use dotted keys and YAML values: ``optim.lr=1e-3``, ``data.hflip=0``,
``loss.alpha=0.5``, ``data.train_images=[a,b]``. Relative paths in a config file are taken
relative to the current directory (the command line's), not the file; ``${PICOSAM2_DATA}`` in a
path is the data root (the shipped configs name ``${PICOSAM2_DATA}/coco-mini/...``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..data.root import DATA_ROOT_ENV
from ..errors import ConfigError, MissingExtraError
from ..teacher.sam2 import DEFAULT_TEACHER

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass
class DataConfig:
    #: COCO/LVIS-format json of the training instances and the folders holding its images.
    """Where the training data is and how windows and prompts are drawn from it."""

    train_annotations: str = ""
    train_images: list[str] = field(default_factory=list)
    #: folder of packed crops (``picosam2 train --pack-only`` / :func:`build_packed`); when set, training
    #: reads it instead of decoding images. Built on first use when missing.
    packed: str | None = None
    #: windows per instance in the packed set (each a fresh random point and scale).
    samples_per_instance: int = 8
    #: image encoding in packed shards: ``raw`` (fastest) or ``jpeg`` (about 6x smaller).
    packed_format: str = "raw"
    #: train only on packed windows whose side is at most this many image pixels (0 = all),
    #: e.g. 96 to fine-tune a scale-jittered run on the paper's fixed window.
    max_window: int = 0
    jpeg_quality: int = 92
    #: optional validation set (dev-val): paper-protocol crops of the first ``val_limit`` instances.
    val_annotations: str | None = None
    val_images: list[str] = field(default_factory=list)
    val_limit: int = 500
    include_crowd: bool = False
    limit: int | None = None  #: use only the first N training instances
    #: prompt points: ``paper`` (the reference rule only, no randomness), or ``random`` (a random
    #: mask pixel; ``paper_point_prob`` of the windows still use the paper rule).
    point: str = "random"
    paper_point_prob: float = 0.25
    interior_point_prob: float = 0.1
    #: window-size (scale) jitter: with probability ``scale_prob`` the window side is drawn
    #: log-uniformly in [scale_min, scale_max] image pixels (resized to 96), else 96.
    scale_prob: float = 0.0
    scale_min: int = 96
    scale_max: int = 256
    #: draw the jittered window side up to the image's longer side instead of ``scale_max``
    #: (teaches the network windows from 96 px to the whole image: scale-aware clicks).
    scale_to_image: bool = False
    #: probability that a 96 px point window uses the reference clip-and-stretch ("paper") mode.
    paper_mode_prob: float = 0.5
    hflip: float = 0.0
    vflip: float = 0.0
    #: colour jitter strength (brightness, contrast, saturation in [1-s, 1+s]); 0 = off.
    color_jitter: float = 0.0
    num_workers: int = 0
    #: teacher cache folder (``picosam2 teacher-cache``); distillation reads targets from it.
    teacher_cache: str | None = None


@dataclass
class OptimConfig:
    """Optimiser, learning rate and its schedule."""

    name: str = "adamw"
    lr: float = 3e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 1000
    #: ``constant`` (after warm-up; the paper), ``cosine`` or ``linear`` decay to ``min_lr_ratio``.
    schedule: str = "constant"
    min_lr_ratio: float = 0.01
    grad_clip: float = 0.0


@dataclass
class LossConfig:
    #: ``gt``: (BCE + Dice)(student, ground truth). ``distill``: alpha * (MSE + Dice)(student
    #: prob, teacher prob) + (1 - alpha) * (BCE + Dice)(student, ground truth).
    """The training loss: ground truth or distillation, and their weights."""

    mode: str = "gt"
    #: ``dynamic`` (alpha = the teacher's predicted IoU per sample, the paper) or a number in [0, 1].
    alpha: str | float = "dynamic"
    bce_weight: float = 1.0
    dice_weight: float = 1.0
    mse_weight: float = 1.0
    #: weight of the quality-head loss: MSE between the predicted IoU and the full-image IoU the
    #: (detached) mask reaches, object pixels outside the window counted as missed. Networks
    #: without a quality head ignore it.
    quality_weight: float = 1.0


@dataclass
class TeacherConfig:
    """The SAM 2.1 teacher of distillation (cached or online)."""

    #: a Hugging Face Hub repository ``hf-hub:owner/name`` or a local folder of a SAM 2.1 model
    #: for ``transformers.Sam2Model`` (:func:`picosam2.teacher.teacher_source`)
    model: str = DEFAULT_TEACHER
    #: ``crop`` (paper: the teacher sees the same 96 px window, upsampled) or ``full`` (the teacher
    #: sees the whole image with the point; its mask is cut to the window).
    mode: str = "crop"
    batch_size: int = 8
    device: str = "auto"
    dtype: str = "float32"
    #: run the teacher online during training when no cache is given (slow; the cache is better).
    online: bool = False


@dataclass
class TrainConfig:
    """A whole training run: model, data, optimiser, loss, teacher, checkpoints and logging."""

    model: str = "picosam2"
    #: start from these weights (folder or ``default``) instead of random initialisation.
    init_weights: str | None = None
    seed: int = 0
    batch_size: int = 8
    max_steps: int = 10000
    #: ``32`` or ``bf16-mixed`` (CPU with AVX-512 BF16 or AMX / GPU) or ``16-mixed`` (GPU).
    precision: str = "32"
    channels_last: bool = True
    #: CPU threads for torch (0 = leave torch's default).
    threads: int = 0
    accelerator: str = "auto"
    devices: str | int = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    #: exponential moving average of the weights (0 = off); the EMA weights are exported.
    ema_decay: float = 0.0
    ema_start: int = 0
    out_dir: str = "runs/train"
    ckpt_every: int = 500
    keep_checkpoints: int = 3
    val_every: int = 500
    log_every: int = 20
    progress_bar: bool = True
    #: extra metadata written into the exported weights (e.g. point_window_size).
    export_extra: dict = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)

    def to_dict(self) -> dict:
        """The config as nested plain dictionaries (for YAML)."""

        def conv(v):
            if dataclasses.is_dataclass(v):
                return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
            if isinstance(v, tuple):
                return [conv(x) for x in v]
            if isinstance(v, list):
                return [conv(x) for x in v]
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            return v

        return conv(self)


def _from_dict(cls, d: dict, where: str = ""):
    if not isinstance(d, dict):
        raise ConfigError(f"config section {where or 'top'} must be a mapping, got {type(d).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in d.items():
        if key not in names:
            raise ConfigError(f"unknown config key {where + key!r}; known: {', '.join(sorted(names))}")
        default = getattr(cls(), key)
        if dataclasses.is_dataclass(default):
            kwargs[key] = _from_dict(type(default), value or {}, f"{where}{key}.")
        else:
            kwargs[key] = _coerce(value, default, where + key)
    return cls(**kwargs)


def _coerce(value, default, key: str):
    if value is None or default is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r} needs true/false, got {value!r}")
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(default, float) and isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            if isinstance(value, str) and key.endswith("alpha"):
                return value
            raise ConfigError(f"config key {key!r} needs a number, got {value!r}")
        return float(value) if isinstance(default, float) else value
    if isinstance(default, tuple):
        return tuple(value)
    if isinstance(default, list):
        return list(value) if isinstance(value, (list, tuple)) else [value]
    return value


def _yaml():
    try:
        import yaml
    except ImportError as exc:
        raise MissingExtraError("training configs need pyyaml: pip install 'picosam2[train]'") from exc
    return yaml


def resolve_config_path(name: str | Path) -> Path:
    """A config path, or the name of a shipped config (``paper``, ``gt-only``, ``coco-mini``)."""
    p = Path(name)
    if p.exists():
        return p
    shipped = CONFIG_DIR / (str(name) if str(name).endswith(".yaml") else f"{name}.yaml")
    if shipped.exists():
        return shipped
    raise FileNotFoundError(f"config not found: {name} (shipped: {', '.join(shipped_configs())})")


def shipped_configs() -> list[str]:
    """Names of the training configs shipped in the package."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def apply_overrides(d: dict, overrides: list[str]) -> dict:
    """``d`` with ``key.sub=value`` overrides applied (values parsed as YAML).

    Raises:
        ConfigError: an override that is not ``key=value`` or names a non-section.
    """
    yaml = _yaml()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else None
        parts = key.strip().split(".")
        node = d
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        node[parts[-1]] = value
    return d


def expand_data_root(value):
    """``${PICOSAM2_DATA}`` in every string of a config (dicts and lists walked) replaced by the data
    root, when ``PICOSAM2_DATA`` is set; unset, the placeholder stays, so a path that needs it fails
    where it is opened, naming the variable."""
    root = os.environ.get(DATA_ROOT_ENV)
    if not root:
        return value
    if isinstance(value, dict):
        return {k: expand_data_root(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_data_root(v) for v in value]
    if isinstance(value, str):
        return value.replace("${" + DATA_ROOT_ENV + "}", str(Path(root).expanduser()))
    return value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (or start from defaults when ``path`` is None) and apply overrides."""
    yaml = _yaml()
    d: dict = {}
    if path is not None:
        p = resolve_config_path(path)
        try:
            d = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"cannot parse {p}: {exc}".splitlines()[0]) from exc
    d = expand_data_root(apply_overrides(d, list(overrides or [])))
    cfg = _from_dict(TrainConfig, d)
    validate(cfg)
    return cfg


def validate(cfg: TrainConfig) -> None:
    """Check the values that must fit together.

    Raises:
        ConfigError: the first value that does not.
    """
    if cfg.batch_size < 1 or cfg.max_steps < 1:
        raise ConfigError("batch_size and max_steps must be positive")
    if cfg.loss.mode not in ("gt", "distill"):
        raise ConfigError(f"loss.mode must be gt or distill, got {cfg.loss.mode!r}")
    a = cfg.loss.alpha
    if isinstance(a, str) and a != "dynamic":
        try:
            cfg.loss.alpha = float(a)
        except ValueError as exc:
            raise ConfigError(f"loss.alpha must be 'dynamic' or a number, got {a!r}") from exc
    if not isinstance(cfg.loss.alpha, str) and not 0.0 <= float(cfg.loss.alpha) <= 1.0:
        raise ConfigError(f"loss.alpha must be in [0, 1], got {cfg.loss.alpha}")
    if cfg.optim.schedule not in ("constant", "cosine", "linear"):
        raise ConfigError(f"optim.schedule must be constant, cosine or linear, got {cfg.optim.schedule!r}")
    if cfg.data.point not in ("paper", "random"):
        raise ConfigError(f"data.point must be paper or random, got {cfg.data.point!r}")
    if cfg.data.packed_format not in ("raw", "jpeg"):
        raise ConfigError(f"data.packed_format must be raw or jpeg, got {cfg.data.packed_format!r}")
    if cfg.teacher.mode not in ("crop", "full"):
        raise ConfigError(f"teacher.mode must be crop or full, got {cfg.teacher.mode!r}")
    if not cfg.data.train_annotations and not cfg.data.packed:
        raise ConfigError("no training data: set data.train_annotations (and data.train_images) or data.packed")


def dump_config(cfg: TrainConfig) -> str:
    """The config as YAML text."""
    return _yaml().safe_dump(cfg.to_dict(), sort_keys=False)
