"""Frames in, frames out: a video file, a folder of frames or a glob as RGB arrays, and an MP4
writer for overlays.

Video files are decoded with PyAV (the ``video`` extra: ``pip install 'picosam2[video]'``): its
wheels bundle FFmpeg's libraries, so decoding runs in-process straight into numpy arrays, with no
``ffmpeg`` program to install or pipe through, and the same library writes the overlay MP4
(H.264 when the wheel has libx264, else MPEG-4 Part 2). Folders and globs of images need only
Pillow.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..image_io import load_image

#: image files a folder of frames may hold
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class VideoError(UsageError):
    """A video, folder or glob that yields no readable frames."""


def _natural_key(path: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _import_av():
    try:
        import av
    except ImportError as exc:
        raise VideoError("reading video files needs PyAV: pip install 'picosam2[video]'") from exc
    return av


def is_glob(text: str) -> bool:
    return any(ch in str(text) for ch in "*?[")


def frame_paths(source) -> list[Path] | None:
    """The image files of a folder (natural order) or a glob, or None for a single (video) file."""
    text = str(source)
    if is_glob(text) and not Path(text).exists():
        paths = sorted((Path(p) for p in glob.glob(text)), key=_natural_key)
        paths = [p for p in paths if p.is_file()]
        if not paths:
            raise VideoError(f"no file matches {text}")
        return paths
    path = Path(text)
    if path.is_dir():
        paths = sorted((p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES), key=_natural_key)
        if not paths:
            raise VideoError(f"no image frames ({', '.join(FRAME_SUFFIXES)}) in {path}")
        return paths
    if not path.is_file():
        raise VideoError(f"no such video, folder or glob: {text}")
    return None


class FrameSource:
    """The frames of ``source`` (a video file, a folder of images or a glob), RGB uint8 (H, W, 3).

    ``len()`` is the frame count (a video's count from its header may be an estimate; None-safe:
    0 when unknown); ``fps`` the video's frame rate (None for images)."""

    def __init__(self, source):
        self.source = str(source)
        self.paths = frame_paths(source)
        self.fps: float | None = None
        self._count = len(self.paths) if self.paths is not None else 0
        if self.paths is None:
            av = _import_av()
            try:
                with av.open(self.source) as container:
                    if not container.streams.video:
                        raise VideoError(f"{self.source} has no video stream")
                    stream = container.streams.video[0]
                    self._count = int(stream.frames or 0)
                    self.fps = float(stream.average_rate) if stream.average_rate else None
            except (av.error.FFmpegError, OSError) as exc:
                raise VideoError(f"cannot read video {self.source}: {_first_line(exc)}") from exc

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.paths is not None:
            for p in self.paths:
                yield load_image(p)
            return
        av = _import_av()
        try:
            with av.open(self.source) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    yield frame.to_ndarray(format="rgb24")
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoError(f"cannot decode video {self.source}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class VideoWriter:
    """An MP4 writer (PyAV): ``write(rgb)`` per frame, ``close()`` at the end. Odd frame sizes are
    cut by one pixel (4:2:0 chroma needs even sides)."""

    def __init__(self, path: str | os.PathLike, fps: float = 25.0):
        from fractions import Fraction

        av = _import_av()
        self.av = av
        self.container = av.open(str(path), mode="w", format="mp4")
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self.stream = self.container.add_stream(codec, rate=Fraction(round(float(fps) * 1000), 1000))
        self.stream.pix_fmt = "yuv420p"
        self.size: tuple[int, int] | None = None

    def write(self, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        if self.size is None:
            self.size = (w - w % 2, h - h % 2)
            self.stream.width, self.stream.height = self.size
        w2, h2 = self.size
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h2, :w2]), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def overlay(frame: np.ndarray, masks, windows=None, colors=None, alpha: float = 0.5) -> np.ndarray:
    """``frame`` with each mask tinted in its colour and each window's outline drawn (windows may
    reach past the frame: only their visible part is drawn)."""
    out = frame.astype(np.float32)
    palette = colors or PALETTE
    for k, m in enumerate(masks):
        c = np.asarray(palette[k % len(palette)], np.float32)
        m = np.asarray(m, bool)
        out[m] = out[m] * (1 - alpha) + c * alpha
    out = out.astype(np.uint8)
    h, w = out.shape[:2]
    for k, win in enumerate(windows or []):
        if win is None:
            continue
        c = np.asarray(palette[k % len(palette)], np.uint8)
        x0, y0, x1, y1 = (int(v) for v in win)
        for t in range(2):
            xa, xb, ya, yb = max(x0 + t, 0), min(x1 - 1 - t, w - 1), max(y0 + t, 0), min(y1 - 1 - t, h - 1)
            if xa > xb or ya > yb:
                continue
            for y in (y0 + t, y1 - 1 - t):
                if 0 <= y < h:
                    out[y, xa : xb + 1] = c
            for x in (x0 + t, x1 - 1 - t):
                if 0 <= x < w:
                    out[ya : yb + 1, x] = c
    return out


#: object colours of overlays (RGB)
PALETTE = ((255, 64, 64), (64, 160, 255), (64, 220, 96), (255, 200, 40), (200, 80, 255), (40, 220, 220))
