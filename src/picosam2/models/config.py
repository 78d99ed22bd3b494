"""The network's hyper-parameters (:class:`PicoSAM2Config`), in a module that imports no torch, so
the runtimes that never touch PyTorch (onnxruntime, OpenVINO, LiteRT) can carry and read it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..errors import UsageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class PicoSAM2Config:
    """Hyper-parameters of the network; stored next to the weights as JSON."""

    arch: str = "picosam2"
    in_channels: int = 3
    encoder_widths: tuple[int, ...] = (48, 96, 160, 256)
    bottleneck_width: int = 320
    decoder_widths: tuple[int, ...] = (192, 128, 80, 40)
    input_size: int = 96
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    #: a second output, the predicted full-image IoU of the mask (see :class:`picosam2.models.picosam2.QualityHead`).
    quality_head: bool = False
    quality_hidden: int = 48
    extra: dict = field(default_factory=dict)

    @property
    def output_names(self) -> tuple[str, ...]:
        """Names of the network outputs, in order (also the ONNX output names)."""
        return ("mask_logits", "iou") if self.quality_head else ("mask_logits",)

    def to_dict(self) -> dict:
        """The config as a JSON-ready dictionary (tuples as lists)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PicoSAM2Config:
        """A config from :meth:`to_dict`'s dictionary.

        Raises:
            UsageError: a key this version does not know.
        """
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise UsageError(f"unknown config keys: {sorted(unknown)}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kw)
