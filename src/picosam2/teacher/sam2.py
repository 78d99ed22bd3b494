"""SAM 2.1 as a teacher and as an evaluation row, through ``transformers``' ``Sam2Model``.

No ``Sam2Processor`` is needed: the pre- and post-processing SAM 2.1 does for one image is done
here with plain torch, the same way SAM 2's own image predictor does it:

* the RGB image (uint8) is resized to the model's square input (``image_size``, 1024 for the
  released checkpoints; bilinear, no aspect preservation, as SAM 2 does), scaled to 0..1 and
  normalised with the ImageNet mean/std;
* a point ``(x, y)`` in image pixels becomes ``(x * S / W, y * S / H)`` in the ``S x S`` input
  (``Sam2Model`` itself adds the half-pixel shift), label 1 (positive);
* the mask decoder gives 3 masks (``multimask_output=True``) with predicted IoUs; the mask with
  the highest predicted IoU is kept;
* its low-resolution logits (``S/4`` square, 256 for 1024) are resized bilinearly
  (``align_corners=False``) to the output.

Two ways to run it:

:meth:`Sam2Teacher.predict_crops` – **the paper's way**: a batch of window crops (``(N, s, s, 3)``
uint8, ``s`` = 96 for PicoSAM2) is upsampled to the teacher's input, one positive point at the crop
centre (or the given crop-pixel points), mask logits resized back to ``s x s``.

:meth:`Sam2Teacher.predict_full` – **full context**: the whole image and N points, one image
embedding; each point's mask logits are sampled at the pixel centres of its
:class:`picosam2.prompts.Window` (bilinear in the teacher's low-resolution frame; outside the image
the probability is 0), giving ``(N, out, out)`` maps aligned pixel for pixel with
``prompts.crop_image(image, window, out)``.

Both return a :class:`TeacherOutput` (``probs``, ``logits`` at the output size, ``iou`` = the
kept mask's predicted IoU), ready to be the soft target and the dynamic weight ``alpha`` of
distillation. :class:`TeacherWindowModel` adapts the teacher to the evaluation harness
(``predict_windows(image, windows)``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import MissingExtraError, UsageError, WeightsError
from ..models.registry import HUB_PREFIX, hub_repo_id, is_hub_name, looks_like_repo_id

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: the teacher of the paper and of the shipped recipe: SAM 2.1 Hiera-Tiny on the Hugging Face Hub
DEFAULT_TEACHER = HUB_PREFIX + "facebook/sam2.1-hiera-tiny"


def teacher_source(path_or_id: str | os.PathLike) -> tuple[str, bool]:
    """Where a teacher name points, by the rule of the PicoSAM2 weights
    (:func:`picosam2.models.resolve_weights`): ``hf-hub:owner/name`` is a Hugging Face Hub
    repository; anything else is a local ``Sam2Model`` folder, which must exist.

    Returns:
        ``(repo_id, True)`` for a Hub name, ``(folder, False)`` for a local folder.

    Raises:
        WeightsError: a malformed Hub name, or no such folder (a bare ``owner/name`` that is not a
            folder gets a hint to write ``hf-hub:owner/name``; nothing is fetched).
    """
    from pathlib import Path

    name = os.fspath(path_or_id)
    if is_hub_name(name):
        return hub_repo_id(name), True
    path = Path(name).expanduser()
    if not path.exists():
        hint = f" (a Hugging Face Hub repository is written {HUB_PREFIX}{name})" if looks_like_repo_id(name) else ""
        raise WeightsError(f"SAM 2.1 teacher not found: {name}{hint}")
    return str(path), False


@dataclass
class TeacherOutput:
    """Per-prompt teacher answers (float32 numpy arrays)."""

    probs: np.ndarray  #: (N, s, s) mask probabilities (sigmoid of ``logits``)
    logits: np.ndarray  #: (N, s, s) mask logits of the kept mask
    iou: np.ndarray  #: (N,) the kept mask's predicted IoU
    all_iou: np.ndarray  #: (N, 3) the predicted IoUs of the three candidate masks


def _require_transformers():
    try:
        import transformers  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("the SAM 2.1 teacher needs transformers: pip install 'picosam2[eval]'") from exc


class Sam2Teacher:
    """SAM 2.1 (``transformers.Sam2Model``) run on PicoSAM2 windows.

    ``Sam2Teacher(model)`` wraps a loaded ``Sam2Model`` (any size, including a small random one);
    ``Sam2Teacher.from_pretrained(folder_or_hub_name)`` loads one (see :func:`teacher_source`). ``batch_size`` bounds how many
    crops go through the image encoder at once. Runs on the model's device and dtype.
    """

    def __init__(self, model, batch_size: int = 8):
        import torch

        self.torch = torch
        self.model = model.eval()
        self.batch_size = int(batch_size)
        cfg = model.config.prompt_encoder_config
        size = cfg.image_size
        self.image_size = int(size[0] if isinstance(size, (list, tuple)) else size)
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device, dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, device=self.device, dtype=torch.float32).view(1, 3, 1, 1)

    @classmethod
    def from_pretrained(
        cls, path_or_id: str | os.PathLike, device: str | None = None, dtype=None, batch_size: int = 8
    ) -> Sam2Teacher:
        """Load SAM 2.1 from a local ``Sam2Model`` folder (``save_pretrained`` layout) or a Hugging
        Face Hub repository written ``hf-hub:owner/name`` such as :data:`DEFAULT_TEACHER` (the
        local cache first; no download is attempted when ``HF_HUB_OFFLINE=1``). Names follow
        :func:`teacher_source`."""
        name, from_hub = teacher_source(path_or_id)
        _require_transformers()
        from transformers import Sam2Model

        kwargs = {"dtype": dtype} if dtype is not None else {}
        try:
            try:  # a local folder, or a Hub repository already in the local cache: no network
                model = Sam2Model.from_pretrained(name, local_files_only=True, **kwargs)
            except OSError:
                if not from_hub or os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
                    raise
                model = Sam2Model.from_pretrained(name, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any failure is "these are not loadable SAM 2 weights"
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WeightsError(f"cannot load SAM 2.1 teacher from {path_or_id}: {msg}") from exc
        if device:
            model = model.to(device)
        return cls(model, batch_size=batch_size)

    # -- pre/post-processing -----------------------------------------------------------------
    def _pixels(self, images: np.ndarray):
        """(N, h, w, 3) uint8 -> (N, 3, S, S) normalised tensor on the model's device."""
        torch = self.torch
        images = np.ascontiguousarray(images)
        if not images.flags.writeable:
            images = images.copy()
        x = torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = torch.nn.functional.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
            )
        return ((x - self._mean) / self._std).to(self.dtype)

    def _best(self, pred_masks, iou_scores):
        """Keep the mask with the highest predicted IoU: (B, P, 3, h, w), (B, P, 3) -> (B*P, h, w), (B*P,), (B*P, 3)."""
        torch = self.torch
        masks = pred_masks.flatten(0, 1).float()
        scores = iou_scores.flatten(0, 1).float()
        k = scores.argmax(dim=1)
        idx = torch.arange(len(k), device=k.device)
        return masks[idx, k], scores[idx, k], scores

    @staticmethod
    def _output(logits, iou, all_iou) -> TeacherOutput:
        logits = logits.float()
        return TeacherOutput(
            probs=logits.sigmoid().cpu().numpy(),
            logits=logits.cpu().numpy(),
            iou=iou.float().cpu().numpy(),
            all_iou=all_iou.float().cpu().numpy(),
        )

    # -- the two ways to run -------------------------------------------------------------------
    def predict_crops(self, crops: np.ndarray, points=None, out_size: int | None = None) -> TeacherOutput:
        """The paper's teacher: ``crops`` (N, s, s, 3) uint8 window crops (PicoSAM2's model inputs).

        Each crop is upsampled to the teacher's input; ``points`` (N, 2) are positive clicks in crop
        pixels (default: the crop centre ``(s/2, s/2)``, as the reference); 3 masks out, the best by
        predicted IoU kept; logits resized to ``out_size`` (default ``s``)."""
        torch = self.torch
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[-1] != 3 or crops.dtype != np.uint8:
            raise UsageError(f"crops must be (N, s, s, 3) uint8, got {crops.shape} {crops.dtype}")
        n, h, w = crops.shape[:3]
        out = int(out_size or h)
        if points is None:
            pts = np.tile(np.array([[w / 2, h / 2]], dtype=np.float32), (n, 1))
        else:
            pts = np.asarray(points, dtype=np.float32).reshape(n, 2)
        scale = np.array([self.image_size / w, self.image_size / h], dtype=np.float32)
        logits, ious, alls = [], [], []
        with torch.inference_mode():
            for i in range(0, n, self.batch_size):
                pix = self._pixels(crops[i : i + self.batch_size])
                b = pix.shape[0]
                p = torch.from_numpy(pts[i : i + b] * scale).to(self.device, self.dtype).view(b, 1, 1, 2)
                labels = torch.ones(b, 1, 1, dtype=torch.int64, device=self.device)
                res = self.model(pixel_values=pix, input_points=p, input_labels=labels, multimask_output=True)
                best, iou, all_iou = self._best(res.pred_masks, res.iou_scores)
                best = torch.nn.functional.interpolate(
                    best[:, None], size=(out, out), mode="bilinear", align_corners=False
                )
                logits.append(best[:, 0])
                ious.append(iou)
                alls.append(all_iou)
        if not logits:
            z = np.zeros((0, out, out), np.float32)
            return TeacherOutput(z, z.copy(), np.zeros(0, np.float32), np.zeros((0, 3), np.float32))
        return self._output(torch.cat(logits), torch.cat(ious), torch.cat(alls))

    def predict_full(self, image: np.ndarray, points, windows, out_size: int = 96) -> TeacherOutput:
        """Full-context teacher: the whole ``image`` (H, W, 3) uint8 and ``points`` (N, 2) in image
        pixels (one object each); the kept mask of point ``k`` is cut to ``windows[k]`` (a
        :class:`picosam2.prompts.Window`) at ``out_size``: logits sampled bilinearly at the window's
        pixel centres, probability 0 outside the image."""
        torch = self.torch
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise UsageError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        if len(pts) != len(windows):
            raise UsageError(f"{len(pts)} points but {len(windows)} windows")
        height, width = image.shape[:2]
        n = len(pts)
        if n == 0:
            z = np.zeros((0, out_size, out_size), np.float32)
            return TeacherOutput(z, z.copy(), np.zeros(0, np.float32), np.zeros((0, 3), np.float32))
        scale = np.array([self.image_size / width, self.image_size / height], dtype=np.float32)
        with torch.inference_mode():
            pix = self._pixels(image[None])
            embeddings = self.model.get_image_embeddings(pixel_values=pix)
            logits, ious, alls = [], [], []
            for i in range(0, n, 64):
                b = min(64, n - i)
                p = torch.from_numpy(pts[i : i + b] * scale).to(self.device, self.dtype).view(1, b, 1, 2)
                labels = torch.ones(1, b, 1, dtype=torch.int64, device=self.device)
                res = self.model(
                    image_embeddings=embeddings, input_points=p, input_labels=labels, multimask_output=True
                )
                best, iou, all_iou = self._best(res.pred_masks, res.iou_scores)
                logits.append(self._sample_windows(best, windows[i : i + b], width, height, out_size))
                ious.append(iou)
                alls.append(all_iou)
        return self._output(torch.cat(logits), torch.cat(ious), torch.cat(alls))

    def _sample_windows(self, low_res, windows, width: int, height: int, out: int):
        """Bilinear samples of (N, h, w) low-res logits (covering the whole image) at each window's
        ``out x out`` pixel centres; -inf-like (probability 0) outside the image."""
        torch = self.torch
        n = low_res.shape[0]
        u = (torch.arange(out, device=low_res.device, dtype=torch.float32) + 0.5) / out
        grids = []
        inside = []
        for win in windows:
            xs = win.x0 + u * win.width  # image x of each output column's centre
            ys = win.y0 + u * win.height
            gx = (xs / width) * 2 - 1  # align_corners=False: -1/+1 are the image's outer edges
            gy = (ys / height) * 2 - 1
            grids.append(torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1))
            inside.append(((ys >= 0) & (ys < height))[:, None] & ((xs >= 0) & (xs < width))[None, :])
        grid = torch.stack(grids)
        sampled = torch.nn.functional.grid_sample(
            low_res[:, None].float(), grid, mode="bilinear", padding_mode="border", align_corners=False
        )[:, 0]
        return torch.where(torch.stack(inside), sampled, torch.full_like(sampled, -1e4)).view(n, out, out)


class TeacherWindowModel:
    """The teacher in the evaluation harness: ``predict_windows(image, windows, points=None)``
    crops each window with ``prompts.crop_image`` (exactly PicoSAM2's input) and runs
    :meth:`Sam2Teacher.predict_crops`, as the paper's SAM 2.1 rows were run: clicked at the prompt
    point's place in the crop (``Window.to_window_coords``; the crop centre for an unclipped point
    window), or at the crop centre when no points are given (box prompts)."""

    takes_points = True

    def __init__(self, teacher: Sam2Teacher, batch_size: int | None = None, out_size: int = 96):
        self.teacher = teacher
        if batch_size:
            teacher.batch_size = batch_size
        self.out_size = out_size

    def predict_windows(self, image: np.ndarray, windows, points=None) -> np.ndarray:
        """SAM 2.1's (N, 96, 96) window logits for windows of an (H, W, 3) uint8 image (``points``: the clicks, else the window centres)."""
        from ..prompts import crop_image

        if not windows:
            return np.zeros((0, self.out_size, self.out_size), np.float32)
        crops = np.stack([crop_image(image, w, self.out_size) for w in windows])
        clicks = None
        if points is not None:
            clicks = [w.to_window_coords(float(p[0]), float(p[1]), self.out_size) for w, p in zip(windows, points)]
        return self.teacher.predict_crops(crops, points=clicks).logits
