"""``picosam2 export``: weights -> ONNX (fp32 / INT8), the IMX500 package, LiteRT.

Heavy tools (onnxruntime.quantization, MCT, the converter, litert-torch) are imported inside
the run function only.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import UsageError

FORMATS = ("onnx", "onnx-int8", "imx500", "tflite", "tflite-int8")


def add_parser(sub) -> list[str]:
    """Register ``picosam2 export``; returns its name."""
    p = sub.add_parser(
        "export",
        help="export weights to onnx, onnx-int8, imx500 (Raspberry Pi AI Camera) or tflite",
        description=(
            "Export PicoSAM2 weights. onnx: fp32, checked against PyTorch. onnx-int8: onnxruntime static "
            "INT8 (QDQ) calibrated on COCO windows. imx500: MCT quantization for the Sony IMX500 and Sony's "
            "converter; PATH is a folder that receives packerOut.zip, dnnParams.xml and the memory report "
            "(needs the imx500 extra and Java >= 17). tflite / tflite-int8: LiteRT through litert-torch."
        ),
    )
    p.add_argument("--format", "-f", required=True, choices=FORMATS)
    p.add_argument("--out", "-o", required=True, metavar="PATH", help="output file (folder for imx500)")
    p.add_argument(
        "--weights",
        "-w",
        default=None,
        help="weights folder, .safetensors, .pt checkpoint, shipped name or hf-hub:owner/name (default: shipped)",
    )
    g = p.add_argument_group("calibration (onnx-int8, imx500, tflite-int8)")
    g.add_argument("--calib-annotations", metavar="JSON", help="COCO instances json to cut windows from")
    g.add_argument("--calib-images", metavar="DIR", action="append", help="image folder (repeatable)")
    g.add_argument("--calib-count", type=int, default=None, metavar="N", help="calibration windows (default 128)")
    g.add_argument(
        "--calib-method", default="minmax", choices=("minmax", "percentile", "entropy"), help="onnx-int8 ranges"
    )
    g.add_argument("--per-channel", action="store_true", help="onnx-int8: per-channel weight scales")
    s = p.add_argument_group("imx500")
    s.add_argument(
        "--qat-steps",
        type=int,
        default=0,
        metavar="N",
        help="MCT quantization-aware fine-tuning steps after PTQ (self-distillation on the calibration windows)",
    )
    s.add_argument("--qat-lr", type=float, default=1e-4)
    s.add_argument(
        "--no-sensor-normalization",
        action="store_true",
        help="keep the ImageNet normalisation out of the network (input already normalised)",
    )
    s.add_argument("--name", default="picosam2", help="network name inside the package")
    s.add_argument("--no-convert", action="store_true", help="stop after MCT's quantized ONNX (no Java needed)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress display (it only shows on a terminal)")
    p.set_defaults(func=run_export)
    return ["export"]


def _load_model(weights):
    from ..models import from_pretrained, is_trained

    model = from_pretrained(weights)
    if not is_trained(model.weights_info):
        print("warning: these weights are an UNTRAINED placeholder: the exported model means nothing", file=sys.stderr)
    return model


def _check_args(args: argparse.Namespace) -> None:
    if args.calib_count is not None and args.calib_count < 1:
        raise UsageError("--calib-count must be at least 1")
    if args.qat_steps < 0:
        raise UsageError("--qat-steps must be >= 0")
    if args.calib_images and not args.calib_annotations:
        raise UsageError("--calib-images needs --calib-annotations JSON")
    if args.calib_annotations and not args.calib_images:
        raise UsageError("--calib-annotations needs --calib-images DIR")


def run_export(args: argparse.Namespace) -> int:
    """``picosam2 export``: write the chosen form; returns the exit status (1: does not fit the chip)."""
    from pathlib import Path

    _check_args(args)
    out = Path(args.out)
    summary: dict = {"format": args.format, "out": str(out)}
    calib = {
        "calib_count": args.calib_count,
        "calib_annotations": args.calib_annotations,
        "calib_images": args.calib_images,
    }
    status = _export_imx500(args, out, calib, summary) if args.format == "imx500" else _export_file(args, out, calib)
    if args.format != "imx500":
        summary["bytes"] = out.stat().st_size
        if not args.json:
            print(f"wrote {out} ({out.stat().st_size / 2**20:.2f} MB)")
    if args.json:
        print(json.dumps(summary, indent=2), file=sys.stderr if status else sys.stdout)
    return status


def _export_file(args: argparse.Namespace, out, calib: dict) -> int:
    """The single-file forms: onnx, onnx-int8, tflite, tflite-int8."""
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name")
    model = _load_model(args.weights)
    if args.format == "onnx":
        from .onnx_fp32 import export_onnx

        export_onnx(model, out)
    elif args.format == "onnx-int8":
        from .onnx_int8 import export_onnx_int8

        export_onnx_int8(model, out, per_channel=args.per_channel, method=args.calib_method, **calib)
    else:
        from .tflite import export_tflite

        export_tflite(model, out, int8=args.format == "tflite-int8", **calib)
    return 0


def _export_imx500(args: argparse.Namespace, out, calib: dict, summary: dict) -> int:
    from .imx500 import check_prerequisites, export_imx500

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; imx500 writes a folder")
    check_prerequisites(need_converter=not args.no_convert)  # before loading anything
    model = _load_model(args.weights)
    res = export_imx500(
        model,
        out,
        normalize_in_model=not args.no_sensor_normalization,
        qat_steps=args.qat_steps,
        qat_lr=args.qat_lr,
        name=args.name,
        convert_model=not args.no_convert,
        progress=not args.quiet,
        **calib,
    )
    summary.update(res.to_json())
    if not args.json:
        _print_imx500(res)
    if res.memory is not None and not res.memory.fits:
        if not args.json:
            print("error: the network does not fit the chip", file=sys.stderr)
        return 1
    return 0


def _print_imx500(res) -> None:
    print(f"wrote {res.onnx_path}")
    if res.memory is not None:
        print(f"wrote {res.packer_zip}, {res.dnn_params}, {res.memory_report_path}")
        print(res.memory.summary())
    times = ", ".join(f"{k} {v:.1f} s" for k, v in res.seconds.items())
    print(f"times: {times}")
    if res.memory is not None:
        print(f"on the Raspberry Pi: imx500-package -i {res.packer_zip.name} -o rpk  # -> rpk/network.rpk")
