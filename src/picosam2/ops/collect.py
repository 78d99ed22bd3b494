"""Collecting frames for labelling when the monitor flags drift (off unless an operator asks).

Privacy: a camera of this project never sends its frames anywhere; collection is the one place
frames (or the network's input windows) are kept on disk. It runs only when the operator names a
folder (``picosam2 monitor ... --collect DIR`` arms it, the camera's ``--collect DIR`` writes it),
only while the monitor's last verdict is drift, and keeps at most ``max_items`` samples (the
oldest are deleted first), so what leaves the device is a bounded sample the operator chose to
take, for labelling.

Layout of ``DIR``::

    ARMED               present while the monitor's last verdict is drift (JSON: since, statistics, max)
    00000042.png        the frame (or the network's input window) as the camera saw it
    00000042-mask.png   the model's mask of that frame (0/255)
    00000042.json       prompt, ROI, window side, score, time, why collection was armed

:class:`Collector` is what the camera loop calls per frame; :func:`arm` / :func:`disarm` are what
the monitor calls; :func:`to_coco` turns the collected masks into a COCO file a labelling tool can
import as pre-annotations (people accept or correct them, export COCO again, and that export is
what ``picosam2 finetune`` reads).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from . import OpsError

ARMED = "ARMED"
DEFAULT_MAX = 200


def _write_atomic_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def arm(folder, report: dict, max_items: int = DEFAULT_MAX) -> Path:
    """Turn collection on (the monitor's verdict is drift)."""
    if max_items < 1:
        raise OpsError("--collect-max must be at least 1")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    prev = armed(folder)
    info = {"since": (prev or {}).get("since") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "drifting": report.get("drifting", []), "max_items": int(max_items),
            "bundle_version": report.get("bundle_version")}  # fmt: skip
    _write_atomic_bytes(folder / ARMED, (json.dumps(info) + "\n").encode())
    return folder / ARMED


def disarm(folder) -> bool:
    """Turn collection off (the monitor says ok again). Collected samples stay."""
    p = Path(folder) / ARMED
    existed = p.exists()
    p.unlink(missing_ok=True)
    return existed


def armed(folder) -> dict | None:
    """The arming record when collection is on, else None."""
    try:
        return json.loads((Path(folder) / ARMED).read_text())
    except (OSError, ValueError):
        return None


def collected(folder) -> list[Path]:
    """The collected samples' JSON records, oldest first."""
    return sorted(p for p in Path(folder).glob("[0-9]*.json") if p.stem.isdigit())


class Collector:
    """Per-frame sink of the camera loop: keeps a frame only while the folder is armed, at most
    ``max_items`` (the arming record's, else ``max_items``), deleting the oldest first."""

    def __init__(self, folder, max_items: int | None = None, check_every: int = 10):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_items = max_items
        self.check_every = max(1, check_every)
        self._frames = 0
        self._armed = None
        existing = collected(self.folder)
        self._next = int(existing[-1].stem) + 1 if existing else 0

    def active(self) -> dict | None:
        if self._frames % self.check_every == 0:
            self._armed = armed(self.folder)
        self._frames += 1
        return self._armed

    def add(self, image: np.ndarray, mask: np.ndarray, record: dict) -> Path | None:
        """Keep one frame (uint8 RGB), its mask (bool, same size) and ``record`` (prompt, roi...)
        when armed; returns the record's path, or None when collection is off."""
        from PIL import Image

        info = self.active()
        if info is None:
            return None
        limit = self.max_items or int(info.get("max_items", DEFAULT_MAX))
        stem = f"{self._next:08d}"
        self._next += 1
        for suffix, arr in (("", np.asarray(image, dtype=np.uint8)), ("-mask", np.asarray(mask, bool) * np.uint8(255))):
            tmp = self.folder / f".{stem}{suffix}.tmp.png"
            Image.fromarray(arr).save(tmp, compress_level=1)  # 3x faster than the default: the camera loop waits
            os.replace(tmp, self.folder / f"{stem}{suffix}.png")
        rec = {**record, "t": round(time.time(), 3), "armed_since": info.get("since"), "drifting": info.get("drifting"),
               "image": f"{stem}.png", "mask": f"{stem}-mask.png"}  # fmt: skip
        path = self.folder / f"{stem}.json"
        _write_atomic_bytes(path, (json.dumps(rec) + "\n").encode())
        self._rotate(limit)
        return path

    def _rotate(self, limit: int) -> None:
        records = collected(self.folder)
        for old in records[: max(0, len(records) - limit)]:
            for p in (old, old.with_suffix(".png"), old.with_name(old.stem + "-mask.png")):
                p.unlink(missing_ok=True)


def to_coco(folder, out, category: str = "object") -> dict:
    """The collected frames and the model's masks as a COCO file (``file_name`` relative to
    ``folder``), for a labelling tool to import as pre-annotations."""
    from PIL import Image

    from ..data.labels import write_coco

    entries = []
    for rec_path in collected(folder):
        rec = json.loads(rec_path.read_text())
        mask = np.asarray(Image.open(Path(folder) / rec["mask"])) > 127
        if mask.any():
            entries.append({"file_name": rec["image"], "masks": [mask]})
    if not entries:
        raise OpsError(f"{folder} holds no collected frame with a mask")
    write_coco(out, entries, categories=[{"id": 1, "name": category, "supercategory": ""}],
               info={"description": f"frames collected on drift from {Path(folder).name}, masks predicted"})  # fmt: skip
    return {"images": len(entries)}
