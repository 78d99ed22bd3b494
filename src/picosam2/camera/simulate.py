"""``picosam2 camera --simulate``: the camera loop without a camera.

A photo, a folder of photos, a video file or a glob plays the sensor: each frame is the full
sensor array, the window policy picks the ROI, a CPU model (``--weights``, or the active slot of
a device root) runs the network on that ROI cut from the frame, exactly as the ISP would hand it
to the sensor's network, and the loop goes on as on the camera (:class:`~.loop.CameraLoop`). A
single photo plays the same frame until the policy has settled (a sweep and its kept frame).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import UsageError
from .core import FrameGeometry, draw_overlay, roi_tuple, sensor_window_pixels
from .loop import CameraLoop, collect_frame, frame_line, open_collector
from .settings import CameraSettings

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def photo_list(path) -> list[Path]:
    """One photo, or the photos of a folder in name order."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UsageError(f"no photos ({', '.join(IMAGE_SUFFIXES)}) in {p}")
        return files
    if not p.is_file():
        raise FileNotFoundError(f"photo not found: {p}")
    return [p]


class SimulatedFrames:
    """The frames that play the sensor: ``still`` (one photo, repeated) or a sequence of
    ``count`` frames (``None``: not known before reading). Iterating yields ``(name, RGB uint8
    frame)``; ``name`` is ``None`` for video frames."""

    def __init__(self, frames: Iterable, still: bool, count: int | None = None):
        self._frames, self.still, self.count = frames, still, count

    @property
    def one(self) -> bool:
        """One picture (a photo, or a folder of one): ``--out`` is then one overlay PNG."""
        return self.still or self.count == 1

    def __iter__(self) -> Iterator:
        return iter(self._frames)


def open_source(path) -> SimulatedFrames:
    """A photo (still), a folder of photos, or a video file / frame glob (read by the tracking
    command's frame reader)."""
    from ..image_io import load_image

    p = Path(path)
    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
        image = load_image(p)

        def repeat():
            while True:
                yield p.name, image

        return SimulatedFrames(repeat(), still=True, count=1)
    if p.is_dir():
        photos = photo_list(p)
        return SimulatedFrames(((f.name, load_image(f)) for f in photos), still=False, count=len(photos))
    return _video_source(str(path))


def _video_source(path: str) -> SimulatedFrames:
    from ..track.video import FrameSource as Frames  # the reader of `picosam2 track`

    reader = Frames(path)  # a video file (PyAV) or a glob of images; a bad one is one line
    names = [p.name for p in reader.paths] if reader.paths is not None else None
    frames = (((names[k] if names else None), frame) for k, frame in enumerate(reader))
    return SimulatedFrames(frames, still=False, count=len(reader) or None)


def simulate_frames(
    run_window, source: SimulatedFrames, settings: CameraSettings, config=None, calibration=None,
    on_frame=None,
) -> list[dict]:  # fmt: skip
    """The camera loop over ``source`` with ``run_window`` (uint8 window -> the network's outputs)
    playing the sensor. Appends each frame's statistics to ``settings.stats_log``; writes overlays
    to ``settings.out`` (a PNG for a still photo, else a folder of PNGs). ``on_frame(k, name,
    result)`` is called after each frame. Returns one record per frame: ``photo`` (name), ``roi``
    (sensor x, y, w, h), ``mask_pixels``, the drift statistics, ``window_side``, ``scale_reason``,
    ``score`` (the network's), ``scale_score`` (as the policy compared it), ``state``, ``ms`` and
    ``collected`` (the record's file name when ``settings.collect`` kept the frame, else ``None``)."""
    from ..image_io import save_png_atomic
    from ..ops.stats import frame_record
    from .policy import make_policy

    log = _open_stats_log(settings.stats_log)
    collector = open_collector(settings)
    records, loop, limit, last = [], None, settings.frames, None
    try:
        for k, (name, image) in enumerate(source):
            started = time.perf_counter()
            h, w = image.shape[:2]
            geometry = FrameGeometry((w, h), scaler_crop=(0, 0, w, h), sensor_size=(w, h))
            if loop is None:
                policy = make_policy(settings, config, (w, h), calibration=calibration)
                loop = CameraLoop(policy, settings.threshold, settings.transpose)
                limit = limit or (policy.settle_frames if source.still else 0)
            roi = loop.roi(geometry)
            window = sensor_window_pixels(image, roi)
            r = loop.frame(run_window(window), geometry, started=started, frame=image)
            stats = frame_record(window, r.logits, r.score)
            if log is not None:
                log.write(stats)
            rep = r.report
            kept = (
                None
                if collector is None
                else collect_frame(collector, k, image, r, loop.policy.marker, name, settings.collect_every)
            )
            records.append({
                "photo": name, "frame": k, "roi": roi_tuple(r.roi), "mask_pixels": int(r.mask.sum()), **stats,
                "window_side": rep.side, "scale_reason": rep.reason, "score": r.score, "scale_score": rep.score,
                "state": rep.state, "ms": r.ms, "collected": None if kept is None else kept.name,
            })  # fmt: skip
            if settings.out:
                prompt, kind = loop.policy.marker
                last = draw_overlay(image, r.mask, r.roi, r.geometry, prompt, kind, text=rep.text)
                if not source.one:
                    save_png_atomic(last, Path(settings.out) / f"{Path(name).stem if name else f'{k:05d}'}.png")
            if on_frame is not None:
                on_frame(k, name, r)
            if limit and k + 1 >= limit:
                break
    finally:
        if log is not None:
            log.close()
    if settings.out and source.one and last is not None:
        save_png_atomic(last, settings.out)
    return records


def _open_stats_log(stats_log):
    if not stats_log:
        return None
    from ..ops.monitor import StatsLog

    return StatsLog(stats_log)


def load_runner(settings: CameraSettings):
    """The network that plays the sensor: the active slot of ``--root`` (falling back to the
    previous slot as the camera does), else ``--weights`` on CPU. Returns ``(run, config)``."""
    from .runners import cpu_runner, slot_runner

    if settings.root:
        from ..ops.device import Device

        run, slot, version = Device(settings.root).start_network(slot_runner)
        print(f"network: slot {slot} ({version}) of {settings.root}", file=sys.stderr)
        return run, run.config
    return cpu_runner(settings.weights)


def run_simulation(settings: CameraSettings) -> int:
    """``picosam2 camera --simulate PATH``: one line per frame on stdout (:func:`~.loop.frame_line`)."""
    from ..selection import ScoreCalibration

    source = open_source(settings.simulate)
    run, config = load_runner(settings)
    show_name = not source.still

    def on_frame(k, name, r):
        print(frame_line(k, r, name if show_name else None), flush=True)

    records = simulate_frames(run, source, settings, config, ScoreCalibration.from_config(config), on_frame=on_frame)
    if settings.out:
        print(f"wrote {settings.out}")
    if settings.stats_log:
        print(f"appended {len(records)} frames to {settings.stats_log}")
    if settings.collect:
        kept = sum(rec["collected"] is not None for rec in records)
        print(f"collected {kept} of {len(records)} frames in {settings.collect}" + ("" if kept else " (not armed)"))
    return 0


def simulate_photos(
    run_window, photos, prompt=None, kind="center", window_size=96, threshold=0.0, transpose=False,
    stats_log=None, out=None, point_scales=None, calibration=None,
) -> list[dict]:  # fmt: skip
    """The camera loop over ``photos`` (each plays one sensor frame, in order): the records of
    :func:`simulate_frames` for the settings these arguments name (``point_scales``: ``"auto"``
    or sides, swept with ``calibration``; else one ``window_size`` window)."""
    from ..image_io import load_image

    settings = CameraSettings(
        kind=kind, prompt=None if prompt is None else tuple(float(v) for v in prompt), window_size=window_size,
        point_scales=point_scales, threshold=threshold, transpose=transpose, stats_log=stats_log,
        out=str(out) if out else None,
    )  # fmt: skip
    photos = [Path(p) for p in photos]
    source = SimulatedFrames(((p.name, load_image(p)) for p in photos), still=False, count=len(photos))
    records = simulate_frames(run_window, source, settings, calibration=calibration)
    for rec, p in zip(records, photos):
        rec["photo"] = str(p)
    return records
