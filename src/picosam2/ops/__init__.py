"""Field operations: signed versioned deployment bundles (:mod:`.bundle`), A/B installs on a
device with health checks and rollback (:mod:`.device`, :mod:`.health`), and drift monitoring
of the camera's per-frame statistics (:mod:`.stats`, :mod:`.monitor`). See docs/operations.md.

Nothing here imports torch or :mod:`picosam2.train` at module level: a camera only needs numpy,
onnxruntime and (for signed bundles) ``cryptography``.
"""

from ..errors import PicoSAM2Error


class OpsError(PicoSAM2Error, ValueError):
    """A refused bundle, install or monitor input: one line for the user, exit status 2."""
