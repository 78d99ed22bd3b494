"""picosam2: promptable segmentation small enough to run inside the Sony IMX500 sensor."""

from .models import PicoSAM2, PicoSAM2Config, create_model, from_pretrained, save_pretrained
from .predictor import Prediction, Predictor

__version__ = "0.1.0"

__all__ = [
    "PicoSAM2",
    "PicoSAM2Config",
    "Prediction",
    "Predictor",
    "__version__",
    "create_model",
    "from_pretrained",
    "save_pretrained",
]
