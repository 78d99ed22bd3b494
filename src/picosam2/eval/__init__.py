"""Evaluation: one metric module, the ``paper`` and ``full`` protocols, results files, plots, baselines.

Typical use from Python::

    from picosam2 import Predictor
    from picosam2.data import InstanceSet
    from picosam2.eval import evaluate, build_report

    data = InstanceSet("instances_val2017.json", ["val2017/"])
    result = evaluate(data, Predictor.from_pretrained(), protocol="paper", prompt="point")
    result.summary()["miou"]
"""

from .metrics import PAPER_THRESHOLDS, batch_iou, iou, miou, paper_map, summarize
from .protocols import PROMPTS, PROTOCOLS, EvalResult, Sample, evaluate, make_prompt, make_window
from .results import build_report, format_table, load_results, results_entries, score_results, write_json_atomic

__all__ = [
    "PAPER_THRESHOLDS",
    "PROMPTS",
    "PROTOCOLS",
    "EvalResult",
    "Sample",
    "batch_iou",
    "build_report",
    "evaluate",
    "format_table",
    "iou",
    "load_results",
    "make_prompt",
    "make_window",
    "miou",
    "paper_map",
    "results_entries",
    "score_results",
    "summarize",
    "write_json_atomic",
]
