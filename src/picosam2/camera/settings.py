"""What ``picosam2 camera`` was asked to do, as one plain value.

The command line is parsed once, in :mod:`picosam2.camera.cli`, into a :class:`CameraSettings`;
everything below it (the live app, the simulation, the window policies) takes that value, never
argparse's namespace. Importing this module imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass

#: prompt kinds: a click, a box, or the frame centre (no prompt given)
PROMPT_KINDS = ("point", "box", "center")


@dataclass(frozen=True)
class CameraSettings:
    """Validated settings of one camera run.

    Prompt and sizes are in frame (preview) pixels. ``window_size`` and ``point_scales`` left
    ``None`` mean "what the network recommends" (its config; see :meth:`window_side` and
    :meth:`scales`). ``simulate`` names the photo, folder, video or glob that plays the sensor;
    ``None`` runs the real camera."""

    kind: str = "center"
    prompt: tuple[float, ...] | None = None
    frame_size: tuple[int, int] = (640, 480)
    window_size: int | None = None
    point_scales: str | list[int] | None = None  # as given ("auto", "fixed", "96,192"...); None: not given
    track: bool = False
    threshold: float = 0.0
    transpose: bool = False
    frames: int = 0
    network: str = "network.rpk"
    root: str | None = None
    stats_log: str | None = None
    snapshot: str | None = None
    preview: bool = True
    interactive: bool = False
    simulate: str | None = None
    weights: str | None = None
    out: str | None = None
    collect: str | None = None  # folder the frames go to while the monitor has armed it; None: off
    collect_max: int | None = None  # at most this many kept (None: the monitor's --collect-max)
    collect_every: int = 1  # keep one frame in this many (a live camera's neighbouring frames are alike)

    def __post_init__(self):
        from ..errors import UsageError

        if self.kind not in PROMPT_KINDS:
            raise UsageError(f"unknown prompt kind {self.kind!r}; use one of {', '.join(PROMPT_KINDS)}")
        want = {"point": 2, "box": 4, "center": None}[self.kind]
        if (want is None) != (self.prompt is None) or (want is not None and len(self.prompt) != want):
            raise UsageError(f"a {self.kind} prompt takes {want or 'no'} numbers, got {self.prompt!r}")
        if self.window_size is not None and self.window_size < 1:
            raise UsageError("--window-size must be positive")
        if min(self.frame_size) < 1:
            raise UsageError(f"--size must be positive, got {self.frame_size}")
        if self.frames < 0:
            raise UsageError("--frames must be 0 (no limit) or positive")
        if self.collect_max is not None and self.collect_max < 1:
            raise UsageError("--collect-max must be at least 1")
        if self.collect_every < 1:
            raise UsageError("--collect-every must be at least 1")
        if (self.collect_max is not None or self.collect_every != 1) and not self.collect:
            raise UsageError("--collect-max and --collect-every need --collect DIR")
        if self.point_scales is not None:
            from ..prompts import parse_point_scales

            parse_point_scales(self.point_scales)  # a bad spec fails here, before anything starts

    def window_side(self, config) -> int:
        """The point window side: ``--window-size``, else the network's recommendation."""
        from ..predictor import recommended_window_size

        return self.window_size if self.window_size is not None else recommended_window_size(config)

    def scales(self, config):
        """The point-scale spec: ``--point-scales``, else the network's recommendation unless
        ``--window-size`` asks for one window (``None``: one window)."""
        from ..predictor import recommended_point_scales
        from ..prompts import parse_point_scales

        if self.point_scales is not None:
            return parse_point_scales(self.point_scales)
        return None if self.window_size is not None else parse_point_scales(recommended_point_scales(config))
