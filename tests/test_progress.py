"""Progress bars: drawn on a terminal, silent with --quiet and off a terminal (pipes, logs)."""

from __future__ import annotations

import io
import sys

from picosam2.progress import progress_bar, progress_wanted


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _drawn(monkeypatch, stream, **kw) -> str:
    monkeypatch.setattr(sys, "stderr", stream)
    for _ in progress_bar(range(3), desc="windows", unit="window", **kw):
        pass
    return stream.getvalue()


def test_bar_on_a_terminal_only_and_never_with_quiet(monkeypatch):
    assert "windows" in _drawn(monkeypatch, Terminal())
    assert _drawn(monkeypatch, Terminal(), enabled=False) == ""  # --quiet
    assert _drawn(monkeypatch, io.StringIO()) == ""  # a pipe or a log file
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert progress_wanted() and not progress_wanted(quiet=True)


def test_predict_shows_its_windows_on_a_terminal(monkeypatch, samples_dir, trained_like_model):
    from picosam2 import Predictor

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    p = Predictor(trained_like_model, point_scales="auto:4", batch_size=4, progress=True)
    p.predict(samples_dir / "dog.jpg", points=[[100, 100], [300, 200]])  # 8 windows in 2 batches
    # the bar counts the 8 windows (how far it got before closing depends on tqdm's refresh interval)
    assert "windows" in term.getvalue() and "/8 [" in term.getvalue()
    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    Predictor(trained_like_model, point_scales="auto:4", batch_size=4).predict(
        samples_dir / "dog.jpg", points=[[100, 100], [300, 200]]
    )
    assert quiet.getvalue() == ""
