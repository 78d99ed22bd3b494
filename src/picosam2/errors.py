"""User-facing errors. Light: importing this module imports nothing else.

Every error that a user can cause (a bad prompt, a missing or unreadable file, a model form the
installed extras cannot run) derives from :class:`PicoSAM2Error`. The ``picosam2`` command prints
those as one line and exits with status 2; anything else is a bug and shows its traceback.
Each subclass also derives from the built-in class it replaced (``ValueError`` or
``RuntimeError``), so ``except ValueError`` in existing callers keeps working.
"""

from __future__ import annotations


class PicoSAM2Error(Exception):
    """Base class of the errors a user can cause and fix (bad input, missing file or extra)."""


class WeightsError(PicoSAM2Error, ValueError):
    """A weights folder, file or Hub name that cannot be found or read."""


class BackendError(PicoSAM2Error, RuntimeError):
    """A model form that cannot be run here: unknown backend, missing extra, unreadable file."""


class UsageError(PicoSAM2Error, ValueError):
    """Arguments that do not fit together (raised by library calls and the CLI alike)."""


class ConfigError(UsageError):
    """A training or evaluation configuration that cannot be used (unknown key, bad value)."""


class DataError(PicoSAM2Error, ValueError):
    """A dataset, annotation, cache or results file that cannot be read or does not fit."""


class MissingExtraError(BackendError):
    """An optional dependency is not installed; the message names the ``pip install`` extra."""


class ExportError(PicoSAM2Error, RuntimeError):
    """An export or conversion step failed (a converter's exit status, an output that does not
    match the PyTorch network)."""


class EmptyResultError(PicoSAM2Error, RuntimeError):
    """The work ran but had nothing to report (e.g. no instance could be scored)."""
