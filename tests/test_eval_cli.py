"""``picosam2 eval`` end to end on the tiny real COCO fixture, and its error paths."""

import json
import shutil

import numpy as np
import pytest

from conftest import run_cli


@pytest.fixture(scope="module")
def tiny_paths(fixtures_dir):
    root = fixtures_dir / "coco_tiny"
    return str(root / "instances.json"), str(root / "images")


def test_eval_paper_and_rescore_results(tiny_paths, tmp_path):
    ann, images = tiny_paths
    out, preds, plots = tmp_path / "r.json", tmp_path / "p.json", tmp_path / "plots"
    r = run_cli(
        "eval", "--annotations", ann, "--images", images, "--protocol", "paper", "--baseline", "disk",
        "--limit", "20", "--out", str(out), "--results-out", str(preds), "--plots", str(plots),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert report["protocol"] == "paper" and report["prompt"] == "point" and report["count"] == 20
    assert report["model"] == "baseline: disk" and report["picosam2_version"]
    assert report["miou"] == pytest.approx(np.mean(list(report["per_instance"].values())))
    assert 0 < report["miou"] < 1 and set(report["by_size"]) == {"small", "medium", "large"}
    assert report["skipped"]["missing_images"] == 0
    assert "mIoU" in r.stdout and "small" in r.stdout  # the table
    assert "eval paper" not in r.stderr and "\r" not in r.stderr  # no progress bar off a terminal
    assert sorted(p.name for p in plots.iterdir()) == ["gallery_best.png", "gallery_worst.png", "miou_by_size.png"]
    entries = json.loads(preds.read_text())
    assert len(entries) == 20 and {"image_id", "category_id", "segmentation", "score", "annotation_id"} <= set(
        entries[0]
    )

    again = tmp_path / "r2.json"
    r = run_cli("eval", "--annotations", ann, "--results", str(preds), "--limit", "20", "--out", str(again))
    assert r.returncode == 0, r.stderr
    rescored = json.loads(again.read_text())
    assert rescored["per_instance"] == report["per_instance"] and rescored["miou"] == report["miou"]


def test_eval_full_box_with_default_weights(tiny_paths, tmp_path):
    ann, images = tiny_paths
    out = tmp_path / "r.json"
    r = run_cli(
        "eval", "--annotations", ann, "--images", images, "--protocol", "full", "--prompt", "box",
        "--limit", "8", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert report["model"] == "picosam2" and report["backend"] == "torch" and report["weights"]
    assert report["prompt_rule"] == "box" and report["count"] == 8 and len(report["per_instance"]) == 8


def expect_error(capsys, tmp_path, *args, match):
    """Error paths run in-process through ``picosam2.cli.main`` (the code the command runs, without a
    torch import per case); the subprocess tests above cover the installed entry point."""
    from picosam2.cli import main

    out = tmp_path / "report.json"
    capsys.readouterr()
    assert main(["eval", *args, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert match in err, err
    assert err.strip().splitlines()[-1].startswith("picosam2 eval: error:")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report")]  # no temporary left over


def test_eval_error_paths(tiny_paths, tmp_path, capsys):
    ann, images = tiny_paths
    err = [capsys, tmp_path]
    expect_error(*err, "--annotations", str(tmp_path / "nope.json"), "--images", images, match="not found")
    expect_error(*err, "--annotations", ann, match="--images")
    expect_error(*err, "--annotations", ann, "--images", images, "--limit", "0", match="--limit")
    expect_error(
        *err, "--annotations", ann, "--images", images, "--baseline", "disk", "--teacher", "x", match="exclude"
    )
    expect_error(*err, "--annotations", ann, "--images", images, "--backend", "onnx", match="onnx")
    expect_error(*err, "--annotations", ann, "--results", str(tmp_path / "none.json"), match="results file not found")
    (tmp_path / "bad.json").write_text('{"not": "a list"}')
    expect_error(*err, "--annotations", ann, "--results", str(tmp_path / "bad.json"), match="not a COCO results")
    r = run_cli("eval", "--annotations", ann, "--images", images)  # the real command: --out is required
    assert r.returncode == 2 and "--out" in r.stderr


def test_missing_images_error_names_first_and_count(tiny_paths, tmp_path, capsys):
    from picosam2.cli import main

    ann, images = tiny_paths
    js = json.loads(open(ann).read())
    partial = tmp_path / "imgs"
    partial.mkdir()
    names = [img["file_name"] for img in js["images"]]
    for name in names[2:]:
        shutil.copy(f"{images}/{name}", partial / name)
    first_two = {img["id"] for img in js["images"][:2]}
    n_missing = sum(1 for a in js["annotations"] if a["image_id"] in first_two and not a["iscrowd"])
    args = ["--annotations", ann, "--images", str(partial), "--baseline", "disk", "--protocol", "full"]
    expect_error(capsys, tmp_path, *args, match=f"2 image file(s) not found ({n_missing} instances), first: {names[0]}")
    out = tmp_path / "r.json"
    assert main(["eval", *args, "--skip-missing", "--out", str(out), "--quiet"]) == 0
    report = json.loads(out.read_text())
    assert report["skipped"]["missing_images"] == n_missing > 0
    assert report["count"] == 45 - n_missing
