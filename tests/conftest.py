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
