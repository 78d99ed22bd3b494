"""The monitor's reference, recorded through the camera loop itself.

The drift statistics (:mod:`picosam2.ops.stats`) depend on how a frame's window is cut: a window
that the camera's point-scale sweep cuts at 300 px and resizes to 96 px is sharper per pixel than
a 96 px instance window, and a centre prompt gives other masks than a click on an object. A
reference made of windows cut any other way than the device's compares two different things, and
a healthy device reports drift. So the reference is the statistics log of ``picosam2 camera
--simulate PHOTOS --weights NETWORK --stats-log LOG`` on the release's reference photos, run on the
bundle's own INT8 network with the settings the cameras use (:func:`camera_reference`), or a log a
camera recorded (:func:`reference_from_log`). Both store ``"path": "camera"`` and the camera
arguments; :func:`reference_note` warns about references made another way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from . import OpsError
from .monitor import build_reference, read_recent

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: the reference path the monitor trusts
CAMERA_PATH = "camera"


def photos_of(annotations=None, images=(), folder=None, limit: int | None = None) -> list[Path]:
    """Reference photos: the files of a folder, or the images an annotation file lists (found in
    ``images``), sorted by name; at most ``limit``."""
    if folder is not None:
        folder = Path(folder)
        if not folder.is_dir():
            raise OpsError(f"reference photos: {folder} is not a folder")
        photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    else:
        try:
            listed = json.loads(Path(annotations).read_text())["images"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OpsError(f"cannot read the images of {annotations}: {exc}") from exc
        photos = []
        for im in sorted(listed, key=lambda im: str(im.get("file_name", ""))):
            name = str(im.get("file_name", ""))
            found = next((Path(d) / name for d in images if (Path(d) / name).is_file()), None)
            if found is not None:
                photos.append(found)
    if limit is not None:
        photos = photos[:limit]
    if len(photos) < 2:
        raise OpsError(f"the monitor's reference needs at least 2 photos, found {len(photos)}")
    return photos


def run_camera_log(network, photos, log: Path, camera_args=()) -> list[dict]:
    """``picosam2 camera --simulate`` over ``photos`` (in order) with ``network`` (an .onnx, a
    weights folder), appending to ``log``; returns the log's records."""
    with tempfile.TemporaryDirectory(prefix="picosam2-reference-") as tmp:
        for i, p in enumerate(photos):  # the camera loop takes a folder; keep the given order
            os.symlink(Path(p).resolve(), Path(tmp) / f"{i:06d}{Path(p).suffix.lower()}")
        cmd = [sys.executable, "-m", "picosam2.cli", "camera", "--simulate", tmp, "--weights", str(network)]
        cmd += ["--stats-log", str(log), *camera_args]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise OpsError(f"camera loop failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return read_recent(log, 0)


def camera_reference(network, photos, camera_args=(), source: str | None = None) -> dict:
    """The monitor's reference: the camera loop's statistics of ``photos`` on ``network``."""
    with tempfile.TemporaryDirectory(prefix="picosam2-reference-log-") as tmp:
        records = run_camera_log(network, photos, Path(tmp) / "stats.log", camera_args)
    ref = build_reference(records, source=source or f"camera loop on {len(photos)} photos")
    return {**ref, "path": CAMERA_PATH, "camera_args": list(camera_args)}


def reference_from_log(log, camera_args=(), source: str | None = None) -> dict:
    """The reference from a statistics log recorded by ``picosam2 camera --stats-log``."""
    records = read_recent(log, 0)
    if len(records) < 2:
        raise OpsError(f"{log} holds {len(records)} frames; a reference needs more")
    ref = build_reference(records, source=source or f"camera log {Path(log).name} ({len(records)} frames)")
    return {**ref, "path": CAMERA_PATH, "camera_args": list(camera_args)}


def reference_note(reference: dict) -> str | None:
    """A warning for references not recorded through the camera loop (older bundles)."""
    if reference.get("path") == CAMERA_PATH:
        return None
    return (
        "warning: this bundle's reference was not recorded through the camera loop "
        f"({reference.get('source', '?')}); its windows are cut differently from the camera's, so drift "
        "may be a false alarm: rebuild the bundle with --reference-photos or --reference-log"
    )
