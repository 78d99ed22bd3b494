"""Following the object with the sensor's window (``picosam2 camera --track``)."""

from __future__ import annotations

from ..errors import UsageError
from .policy import WindowPolicy


class Follow(WindowPolicy):
    """The window follows the object (see :mod:`picosam2.track.policy`)."""

    @classmethod
    def from_settings(cls, settings, config, frame_size, calibration=None):
        raise UsageError("--track needs picosam2.track, which this installation does not have")
