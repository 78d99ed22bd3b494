"""Weights by name: the shipped table and Hugging Face Hub names, offline against a local cache."""

import json
import os
import subprocess
import sys

import pytest

from conftest import SAMPLES

pytest.importorskip("huggingface_hub")

REV_MAIN = "a" * 40
REV_OLD = "b" * 40


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """A cache laid out as huggingface_hub writes it: ``models--owner--name/snapshots/<commit>/``
    and ``refs/main`` naming the commit. ``main`` recommends 128 px point windows, the older
    commit 160 px."""
    from picosam2.models import from_pretrained, save_pretrained, weights_metadata

    cache = tmp_path_factory.mktemp("hf")
    repo = cache / "models--picotest--tiny"
    model = from_pretrained()
    for rev, window in ((REV_MAIN, 128), (REV_OLD, 160)):
        model.config.extra = {"point_window_size": window}
        save_pretrained(model, repo / "snapshots" / rev, metadata=weights_metadata())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REV_MAIN)
    return cache


def _offline_env(cache):
    env = dict(os.environ, HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1")
    env.pop("HF_HOME", None)
    return env


def _python(code: str, cache) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_offline_env(cache))


def test_from_pretrained_resolves_a_hub_name_and_pins_revisions(hub_cache):
    code = (
        "from picosam2 import Predictor\n"
        "p = Predictor.from_pretrained('hf-hub:picotest/tiny')\n"
        f"old = Predictor.from_pretrained('hf-hub:picotest/tiny', revision={REV_OLD!r})\n"
        f"r = p.predict({str(SAMPLES / 'dog.jpg')!r}, points=[[570, 200]])\n"
        "print(p.window_size, old.window_size, int(r.union().sum()), p.backend.metadata['weights']['sha256'][:8])\n"
    )
    r = _python(code, hub_cache)
    assert r.returncode == 0, r.stderr
    main_window, old_window, pixels, sha = r.stdout.split()
    assert (main_window, old_window) == ("128", "160")
    assert int(pixels) > 5000 and len(sha) == 8


def test_cli_weights_hub_name_offline(hub_cache, tmp_path):
    out = tmp_path / "m.png"
    args = [
        "predict",
        str(SAMPLES / "dog.jpg"),
        "--point",
        "570,200",
        "--weights",
        "hf-hub:picotest/tiny",
        "--out",
        str(out),
    ]
    r = subprocess.run(
        [sys.executable, "-m", "picosam2.cli", *args], capture_output=True, text=True, env=_offline_env(hub_cache)
    )
    assert r.returncode == 0, r.stderr
    assert out.exists()
    missing = [*args[:5], "hf-hub:picotest/absent", "--out", str(tmp_path / "x.png")]
    r = subprocess.run(
        [sys.executable, "-m", "picosam2.cli", *missing], capture_output=True, text=True, env=_offline_env(hub_cache)
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "picotest/absent" in r.stderr
    assert not (tmp_path / "x.png").exists()


def test_shipped_table_and_model_card(tmp_path):
    from picosam2.models import (
        DEFAULT_WEIGHTS_DIR,
        create_model,
        list_pretrained,
        resolve_weights,
        save_pretrained,
    )

    assert list_pretrained()[0] == "picosam2-coco-mini"
    assert resolve_weights("picosam2-coco-mini") == resolve_weights(None) == DEFAULT_WEIGHTS_DIR
    folder = save_pretrained(create_model(), tmp_path / "w", metadata={"trained": "false", "recipe": "none"})
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    card = (folder / "README.md").read_text()
    assert (
        card.startswith("---\nlibrary_name: picosam2")
        and "untrained placeholder" in card
        and "| recipe | none |" in card
    )
    assert json.loads((folder / "config.json").read_text())["arch"] == "picosam2"


def test_hub_names_are_explicit_and_a_mistyped_path_is_not_found(tmp_path, monkeypatch):
    from picosam2.models import create_model, from_pretrained, save_pretrained
    from picosam2.models.registry import WeightsError, is_hub_name, resolve_weights

    monkeypatch.chdir(tmp_path)
    save_pretrained(create_model(), tmp_path / "owner" / "name")
    assert resolve_weights("owner/name").resolve() == tmp_path / "owner" / "name"  # a folder, never the Hub
    assert is_hub_name("hf-hub:owner/other") and not is_hub_name("owner/other")
    with pytest.raises(
        WeightsError, match=r"weights not found: owner/nmae \(a Hugging Face Hub .* hf-hub:owner/nmae\)"
    ):
        resolve_weights("owner/nmae")  # a typo: no network, no Hub error
    with pytest.raises(WeightsError, match="weights not found: owner/other$"):
        resolve_weights("./owner/other")
    with pytest.raises(WeightsError, match="hf-hub:owner/name"):
        resolve_weights("hf-hub:not a repo")
    with pytest.raises(WeightsError, match="revision applies to Hub names"):
        resolve_weights("owner/name", revision="main")
    from picosam2.models.registry import push_to_hub

    with pytest.raises(WeightsError, match="a Hub name is hf-hub:owner/name"):  # refused before anything is sent
        push_to_hub(create_model(), "hf-hub:no-owner")
    (tmp_path / "owner" / "name" / "config.json").unlink()  # weights without their config: refused
    with pytest.raises(WeightsError, match="no config.json"):
        from_pretrained("owner/name")
