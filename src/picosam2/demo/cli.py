"""``picosam2 demo``: the web demo on loopback. Heavy imports (FastAPI, uvicorn) happen in
:func:`run_demo`, so building the ``picosam2`` parser stays cheap."""

from __future__ import annotations

import sys


def add_parser(sub) -> list[str]:
    p = sub.add_parser(
        "demo",
        help="web page: click on a photo to segment the object there",
        description="Start the web demo (FastAPI + uvicorn) and open it in the browser. Pick a bundled photo "
        "or upload one; click to segment, shift-click for another object, drag for a box. Listens on "
        "loopback unless --host says otherwise.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free port)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    p.add_argument(
        "--weights",
        default=None,
        help="weights folder, .safetensors, .pt checkpoint, shipped name, hf-hub:owner/name, or an exported "
        ".onnx (then no in-browser model) (default: the shipped weights)",
    )
    p.add_argument(
        "--browser-model",
        default="int8",
        choices=["int8", "fp32"],
        help="precision of the ONNX model offered for in-browser inference (default int8; fp32 where the "
        "INT8 exporter is unavailable)",
    )
    p.add_argument(
        "--annotations",
        metavar="OUT.json",
        help='show "Save as annotation": the masks on the page are appended to this COCO file, the photos '
        "stored beside it in images/ (for picosam2 finetune; docs/field-learning.md)",
    )
    p.set_defaults(func=run_demo)
    return ["demo"]


def run_demo(args) -> int:
    from ..errors import MissingExtraError

    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("the demo needs FastAPI and uvicorn: pip install 'picosam2[demo]'") from exc
    import webbrowser

    from .app import create_app
    from .server import bind_socket, is_loopback, make_server, url_for

    sock = bind_socket(args.host, args.port)  # a busy port fails here, before the model loads
    try:
        hosts = None
        if not is_loopback(args.host):
            hosts = ["*"]
            print(
                f"warning: listening on {args.host}: anyone who can reach this machine can use the demo",
                file=sys.stderr,
            )
        app = create_app(
            weights=args.weights, browser_model=args.browser_model, allowed_hosts=hosts, annotations=args.annotations
        )
        url = url_for(sock)
        if app.state.trained is False:
            print("warning: these weights are an UNTRAINED placeholder: the masks mean nothing", file=sys.stderr)
        server = make_server(app, log_level="warning")
        if app.state.annotations is not None:
            print(f"Save as annotation appends to {app.state.annotations.path}", file=sys.stderr)
        print(f"picosam2 demo on {url}  (Ctrl+C stops it)", flush=True)
        if not args.no_browser:
            import threading

            def open_when_ready():
                import time

                for _ in range(200):
                    if server.started:
                        try:
                            webbrowser.open(url)
                        except Exception as exc:  # noqa: BLE001 - no browser is not an error
                            print(f"note: could not open a browser ({exc}); open {url} yourself", file=sys.stderr)
                        return
                    time.sleep(0.05)

            threading.Thread(target=open_when_ready, daemon=True).start()
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
