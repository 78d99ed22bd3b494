"""SAM 2.1 teacher (``transformers.Sam2Model``): distillation targets and the evaluation row.

Importing this package does not import ``transformers``; loading weights does
(:meth:`Sam2Teacher.from_pretrained`). See :mod:`picosam2.teacher.sam2` for the exact pre- and
post-processing.

    from picosam2.teacher import Sam2Teacher
    teacher = Sam2Teacher.from_pretrained("hf-hub:facebook/sam2.1-hiera-tiny")  # or a local folder
    out = teacher.predict_crops(crops)          # (N, 96, 96, 3) uint8 PicoSAM2 inputs
    out.probs, out.iou                          # (N, 96, 96) soft targets, (N,) predicted IoU
    out = teacher.predict_full(image, points, windows)   # whole-image context, cut to windows
"""

from .sam2 import (
    DEFAULT_TEACHER,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Sam2Teacher,
    TeacherOutput,
    TeacherWindowModel,
    teacher_source,
)

__all__ = [
    "DEFAULT_TEACHER",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Sam2Teacher",
    "TeacherOutput",
    "TeacherWindowModel",
    "teacher_source",
]
