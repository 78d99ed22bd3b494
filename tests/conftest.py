import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SAMPLES = ROOT / "src" / "picosam2" / "samples"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def trained_like_model():
    """A randomly initialised model with its BN statistics perturbed so outputs are not flat."""
    import torch

    from picosam2.models import create_model

    torch.manual_seed(0)
    m = create_model().eval()
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    return m


def run_cli(*args: str):
    """Run ``picosam2 ARGS`` in this process, as ``python -m picosam2.cli ARGS`` would in its own
    (exit status, stdout, stderr, a traceback on stderr for a bug); returns a CompletedProcess.

    In-process saves each call the interpreter's and torch's start (seconds on a small machine);
    ``PICOSAM2_TEST_SUBPROCESS=1`` runs every call in a subprocess instead, and
    :func:`run_cli_subprocess` does so for the calls that need a process of their own."""
    import os

    if os.environ.get("PICOSAM2_TEST_SUBPROCESS", "") not in ("", "0"):
        return run_cli_subprocess(*args)
    import contextlib
    import io
    import subprocess
    import traceback
    import warnings

    from picosam2.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = [str(a) for a in args]
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        formatwarning = warnings.formatwarning
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse (--help, usage errors), or a command's own exit
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if exc.code is not None and not isinstance(exc.code, int):
                print(exc.code, file=sys.stderr)
        except BaseException:  # a bug (or --debug): the traceback, as the interpreter prints it
            traceback.print_exc()
            code = 1
        finally:
            warnings.formatwarning = formatwarning
            if "torch" in sys.modules:  # a command's --threads / threads= stays with that command
                sys.modules["torch"].set_num_threads(threads or len(os.sched_getaffinity(0)))
            sys.stdout.flush()
            sys.stderr.flush()
    return subprocess.CompletedProcess(["picosam2", *argv], int(code or 0), out.getvalue(), err.getvalue())


def quick_java(monkeypatch) -> None:
    """Run Sony's converter (imxconv-pt, Java) with the JIT's first tier only and the serial
    collector: a conversion takes about a minute, too short for the optimising compiler to pay for
    its own work, so this costs about a third less CPU. The package it writes is the same, byte for
    byte except the date in its manifest."""
    import os

    opts = os.environ.get("JAVA_TOOL_OPTIONS", "")
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", f"{opts} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC".strip())


def run_cli_subprocess(*args: str):
    """Run ``picosam2`` in a subprocess; returns CompletedProcess."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "picosam2.cli", *args], capture_output=True, text=True)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def coco_mini() -> Path:
    """coco-mini under the data root (``$PICOSAM2_DATA``); the test is skipped with a reason elsewhere."""
    import os

    root = os.environ.get("PICOSAM2_DATA")
    if not root or not (Path(root) / "coco-mini" / "annotations").is_dir():
        pytest.skip("coco-mini not found: set PICOSAM2_DATA to the folder holding coco-mini/")
    return Path(root) / "coco-mini"
