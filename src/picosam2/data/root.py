"""Where datasets live: one data root, given by an argument or the ``PICOSAM2_DATA`` variable.

The data root is a folder that holds datasets side by side (``coco-mini/``, ``coco/``, video sets).
Nothing in the package, its scripts or its configs names a path of a particular machine: they
take ``--data-root`` or read ``PICOSAM2_DATA``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UsageError

#: the environment variable naming the data root
DATA_ROOT_ENV = "PICOSAM2_DATA"


class DataRootError(UsageError):
    """No data root given, or a dataset missing under it."""


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The data root: ``explicit`` if given, else ``$PICOSAM2_DATA``; a clear error if neither."""
    value = explicit if explicit not in (None, "") else os.environ.get(DATA_ROOT_ENV)
    if not value:
        raise DataRootError(
            f"no data root: pass --data-root DIR or set {DATA_ROOT_ENV} to the folder holding coco-mini/"
        )
    root = Path(value).expanduser()
    if not root.is_dir():
        raise DataRootError(f"data root {root} is not a folder (from {'--data-root' if explicit else DATA_ROOT_ENV})")
    return root


def dataset_dir(name: str, explicit_root: str | os.PathLike | None = None) -> Path:
    """``<data root>/<name>``, checked to exist (e.g. ``dataset_dir("coco-mini")``)."""
    path = data_root(explicit_root) / name
    if not path.is_dir():
        raise DataRootError(f"{name}/ not found under the data root {path.parent}")
    return path
