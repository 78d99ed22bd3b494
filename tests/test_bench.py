import json

import pytest

from conftest import run_cli


def small_sam2_config():
    """A tiny SAM 2 shape (random weights) so the peer code path runs in a test."""
    tr = pytest.importorskip("transformers")
    bb = tr.Sam2HieraDetConfig(
        hidden_size=8,
        num_attention_heads=1,
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[8, 16, 32, 64],
        num_attention_heads_per_stage=[1, 1, 1, 1],
        window_size_per_stage=[4, 4, 4, 4],
        global_attention_blocks=[3],
        image_size=[128, 128],
        window_positional_embedding_background_size=[2, 2],
    )
    vc = tr.Sam2VisionConfig(
        backbone_config=bb,
        backbone_channel_list=[64, 32, 16, 8],
        backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]],
        fpn_hidden_size=32,
    )
    pc = tr.Sam2PromptEncoderConfig(hidden_size=32, image_size=128, patch_size=16, mask_input_channels=4)
    mc = tr.Sam2MaskDecoderConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, mlp_dim=64, iou_head_hidden_dim=32
    )
    return tr.Sam2Config(vision_config=vc, prompt_encoder_config=pc, mask_decoder_config=mc)


def test_peer_row_runs_sam2_and_counts_macs():
    from picosam2.bench.peers import sam21_tiny_latency

    row = sam21_tiny_latency(repeats=1, config=small_sam2_config())
    assert row["input_size"] == 128
    assert row["latency_ms"] > 0
    assert row["params"] > 50_000 and row["macs"] > 1_000_000


def test_full_size_peer_config_is_hiera_tiny_shape():
    tr = pytest.importorskip("transformers")
    bb = tr.Sam2Config().vision_config.backbone_config
    assert bb.hidden_size == 96 and list(bb.blocks_per_stage) == [1, 2, 7, 2]
    assert list(bb.image_size) == [1024, 1024]


@pytest.fixture(scope="module")
def quick_result():
    """``bench --quick`` on one thread, each figure the median of 3 timed calls after 1 warm-up
    call (plus the latency's timed warm-up) instead of 8 to 24 after 10: the tests read the
    result's forms, keys and ratios, which do not depend on how many calls a median takes."""
    from picosam2.bench import suite

    median_ms = suite.median_ms
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(suite, "median_ms", lambda fn, repeats, **kw: median_ms(fn, min(repeats, 3), **{"warmup": 1, **kw}))
        return suite.run_bench(threads=1, quick=True, peers=False, imx500=False)


def test_bench_result_is_consistent(quick_result):
    r = quick_result
    # the paper's 1,262,818 parameters, plus the quality head (at most 2 % more) when the weights have one
    assert 1_262_818 <= r["params"] <= 1.02 * 1_262_818 and 315e6 <= r["macs"] <= 345e6
    sizes = r["sizes_bytes"]
    assert sizes["fp16"] < 0.55 * sizes["fp32"]
    assert sizes["onnx_int8"] < 0.35 * sizes["onnx_fp32"]
    peak = r["peak_gmacs_per_core"]
    for key in ("torch_fp32", "onnx_fp32", "onnx_int8"):
        assert r["latency_ms"][key] > 0
        # one core cannot beat its own measured peak (3x slack for a loaded machine): a latency
        # taken on a batch larger than 1 (16x the work) would break this
        assert r["measured_gmacs"][key] < 3 * (peak["int8_gmacs"] if "int8" in key else peak["fp32_gmacs"])
    assert set(r["measured_gmacs"]) == set(r["latency_ms"])
    assert r["best_int8"] in r["latency_ms"] and "int8" in r["best_int8"]
    assert all(v > 0 for v in r["throughput"].values())
    assert set(r["end_to_end_ms"]) >= {"torch_fp32", "onnx_int8"}
    # the scale-aware clicks, beside the one-window click, on the same forms (no timing targets here)
    assert set(r["auto_click_ms"]) == {"auto", "auto:4"}
    assert r["auto_click_candidates"] == {"auto": 8, "auto:4": 4}  # 96 px up to the photo's 1800 px side
    for spec, ms in r["auto_click_ms"].items():
        assert set(ms) == set(r["end_to_end_ms"]) == set(r["auto_vs_single_click"][spec])
        ratio = ms["onnx_int8"] / r["latency_ms"]["onnx_int8"]
        assert r["auto_vs_one_window"][spec]["onnx_int8"] == pytest.approx(ratio, rel=0.01)
    assert r["peak_gmacs_per_core"]["int8_gmacs"] > 0


def test_bench_cli_rejects_bad_threads():
    r = run_cli("bench", "--threads", "0", "--quick")
    assert r.returncode == 2 and "--threads" in r.stderr


def test_format_table_mentions_every_form(quick_result):
    from picosam2.bench.cli import format_table

    text = format_table(quick_result)
    for key in quick_result["latency_ms"]:
        assert key in text
    json.dumps(quick_result)


def test_median_ms_warms_up_for_calls_and_for_time(monkeypatch):
    import types

    from picosam2.bench import timing

    now = [0.0]  # a clock that only the timed function moves: no dependence on the machine's load
    monkeypatch.setattr(timing, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    calls = []

    def fn():
        calls.append(now[0])
        now[0] += 0.002

    ms = timing.median_ms(fn, repeats=5, warmup=2, warmup_seconds=0.05)
    # 0.05 s of 2 ms calls is 25 warm-up calls, then 5 timed ones
    assert 5 + 24 <= len(calls) <= 5 + 26
    assert ms == pytest.approx(2.0)
    calls.clear()
    timing.median_ms(fn, repeats=5, warmup=3)
    assert len(calls) == 8
