"""Follow objects through video: one 96 x 96 window per object and frame, chosen from the masks
of the frames before it (:mod:`picosam2.track.policy`, pure and portable), run by a
:class:`Tracker` over any backend or :class:`~picosam2.Predictor`.

    from picosam2.track import Tracker
    tracker = Tracker()                                   # shipped weights; or "model-int8.onnx"
    tracker.start(frames[0], point=(320, 200))
    for frame in frames[1:]:
        results = tracker.update(frame)                   # {obj_id: ObjectResult}
"""

from .policy import TrackPolicy, TrackState
from .tracker import ObjectResult, Tracker

__all__ = ["ObjectResult", "TrackPolicy", "TrackState", "Tracker"]
