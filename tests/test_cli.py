import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli


def test_info_json():
    r = run_cli("info", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert 1.24e6 <= info["params"] <= 1.32e6
    assert 315e6 <= info["macs"] <= 345e6
    assert info["input_size"] == 96
    assert isinstance(info["weights"], str)


def test_predict_writes_mask_and_overlay(tmp_path, samples_dir):
    out, ov = tmp_path / "m.png", tmp_path / "o.png"
    r = run_cli(
        "predict",
        str(samples_dir / "dog.jpg"),
        "--point",
        "570,200",
        "--box",
        "480,130,670,270",
        "--out",
        str(out),
        "--overlay",
        str(ov),
    )
    assert r.returncode == 0, r.stderr
    m = np.asarray(Image.open(out))
    assert m.shape == (534, 800) and set(np.unique(m)) <= {0, 255}
    assert Image.open(ov).size == (800, 534)


def test_predict_per_prompt_files(tmp_path, samples_dir):
    out = tmp_path / "m.png"
    r = run_cli(
        "predict",
        str(samples_dir / "dog.jpg"),
        "--point",
        "570,200",
        "--point",
        "300,300",
        "--out",
        str(out),
        "--per-prompt",
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m-0.png").exists() and (tmp_path / "m-1.png").exists()
    assert not out.exists()


@pytest.mark.parametrize(
    "args,msg",
    [
        (["MISSING.jpg", "--point", "1,1"], "not found"),
        (["CORRUPT", "--point", "1,1"], "cannot read"),
        (["DOG", "--point", "5000,10"], "outside"),
        (["DOG", "--point", "5,x"], "--point"),
        (["DOG", "--point", "5"], "--point"),
        (["DOG", "--box", "1,2,3"], "--box"),
        (["DOG", "--box", "30,30,10,10"], "empty"),
        (["DOG", "--point", "1,1", "--weights", "NOWEIGHTS"], "weights"),
        (["DOG", "--point", "1,1", "--weights", "BADWEIGHTS"], "cannot read"),
        (["DOG"], "at least one"),
    ],
)
def test_predict_bad_input_exit_2_no_file(tmp_path, samples_dir, args, msg):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"garbage")
    badw = tmp_path / "badw"
    badw.mkdir()
    (badw / "model.safetensors").write_bytes(b"xx")
    (badw / "config.json").write_text("{}")
    subst = {
        "MISSING.jpg": str(tmp_path / "missing.jpg"),
        "CORRUPT": str(corrupt),
        "DOG": str(samples_dir / "dog.jpg"),
        "NOWEIGHTS": str(tmp_path / "nothing"),
        "BADWEIGHTS": str(badw),
    }
    out = tmp_path / "out.png"
    r = run_cli("predict", *[subst.get(a, a) for a in args], "--out", str(out), "--overlay", str(tmp_path / "ov.png"))
    assert r.returncode == 2
    err_lines = [line for line in r.stderr.strip().splitlines() if not line.startswith("warning:")]
    assert len(err_lines) == 1, r.stderr
    assert msg in err_lines[0]
    assert "Traceback" not in r.stderr
    assert not out.exists() and not (tmp_path / "ov.png").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_error_policy_user_errors_one_line_bugs_traceback(tmp_path, monkeypatch):
    """PicoSAM2Error and OSError: one line, exit 2; --debug: the traceback; other exceptions are bugs."""
    from picosam2 import cli
    from picosam2.errors import PicoSAM2Error, UsageError
    from picosam2.prompts import PromptError

    assert issubclass(PromptError, PicoSAM2Error) and issubclass(PromptError, ValueError)
    r = run_cli("predict", str(tmp_path / "missing.jpg"), "--point", "1,1", "--out", str(tmp_path / "m.png"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = run_cli("--debug", "predict", str(tmp_path / "missing.jpg"), "--point", "1,1", "--out", str(tmp_path / "m.png"))
    assert r.returncode != 0 and "Traceback" in r.stderr
    # a wrapped error: one line, and --debug shows the library error it came from
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    r = run_cli("predict", str(bad), "--point", "1,1", "--out", str(tmp_path / "m.png"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot read image" in r.stderr
    r = run_cli("--debug", "predict", str(bad), "--point", "1,1", "--out", str(tmp_path / "m.png"))
    assert "UnidentifiedImageError" in r.stderr and "direct cause" in r.stderr and "ImageError" in r.stderr

    def bug(args):
        raise KeyError("a bug")

    parser_args = ["predict", "x.jpg", "--point", "1,1", "--out", str(tmp_path / "m.png")]
    monkeypatch.setattr(cli, "build_parser", _patched_parser(cli.build_parser, bug))
    with pytest.raises(KeyError, match="a bug"):
        cli.main(parser_args)
    assert cli.is_user_error(UsageError("x")) and cli.is_user_error(FileNotFoundError(2, "No such file", "x"))
    assert not cli.is_user_error(TypeError("x")) and not cli.is_user_error(IndexError("x"))
    # plain ValueError / RuntimeError come from libraries or bugs: they keep their traceback
    assert not cli.is_user_error(ValueError("x")) and not cli.is_user_error(RuntimeError("x"))


def _patched_parser(build, func):
    def build_with(*a, **k):
        parser = build(*a, **k)
        for action in parser._subparsers._group_actions:
            action.choices["predict"].set_defaults(func=func)
        return parser

    return build_with
