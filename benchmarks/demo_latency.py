"""Click-to-mask latency of the web demo, as the page sees it, in headless Chromium.

    .venv/bin/python benchmarks/demo_latency.py [--weights W] [--clicks 12] [--photo dog] [--no-browser-mode]
    .venv/bin/python benchmarks/demo_latency.py --paired 8 [--photo truck] [--json]

Starts the demo app on a free loopback port, opens the page in Debian's /usr/bin/chromium
(Playwright), picks a bundled photo and clicks at spread-out points, first in server mode
(POST /api/segment: upload, decode, network, PNG, drawing), then with "Run in this browser"
(onnxruntime-web, the model's INT8 export). Prints the medians over the clicks after two warm-ups
(JSON with --json). Latency only: with the untrained placeholder weights the masks are empty but
the work is the same.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def clicks(page, box, size, n):
    out = []
    for i in range(n):
        x = (0.1 + 0.8 * ((i * 0.37) % 1.0)) * box["width"]
        y = (0.1 + 0.8 * ((i * 0.61) % 1.0)) * box["height"]
        shown = page.evaluate("() => window.picosam2Demo.masksShown")
        page.mouse.click(box["x"] + x, box["y"] + y)
        page.wait_for_function(f"() => window.picosam2Demo.masksShown > {shown}", timeout=120_000)
        sample = page.evaluate("() => window.picosam2Demo.lastLatency")
        if sample.get("mode") == "browser":
            profile = page.evaluate("() => window.picosam2Demo.lastProfile")
            sample.update({f"{k}_stage": v for k, v in profile.items() if k != "total"})
        out.append(sample)
    return out[2:] if len(out) > 4 else out


def _after(page, action):
    """Run ``action`` and wait for the page to show the mask it causes; that mask's latency."""
    shown = page.evaluate("() => window.picosam2Demo.masksShown")
    action()
    page.wait_for_function(f"() => window.picosam2Demo.masksShown > {shown}", timeout=600_000)
    sample = dict(page.evaluate("() => window.picosam2Demo.lastLatency"))
    if sample.get("mode") == "browser":
        profile = page.evaluate("() => window.picosam2Demo.lastProfile")
        sample.update({f"{k}_stage": v for k, v in profile.items() if k != "total"})
    return sample


def paired(page, box, n, settings):
    """Each click once on the server and once in the page per window-size setting, back to back,
    so both see the same machine load: per setting the median of browser / server round trips."""
    rows = {s: [] for s in settings}
    for i in range(n):
        x = box["x"] + (0.1 + 0.8 * ((i * 0.37) % 1.0)) * box["width"]
        y = box["y"] + (0.1 + 0.8 * ((i * 0.61) % 1.0)) * box["height"]
        if page.evaluate("() => window.picosam2Demo.state.prompts.length"):
            _after(page, lambda: page.uncheck("#local"))  # back to the server: it segments the old click
        else:
            page.uncheck("#local")
        server = _after(page, lambda x=x, y=y: page.mouse.click(x, y))
        page.select_option("#local-scales", settings[0])
        local = [_after(page, lambda: page.check("#local"))]
        for s in settings[1:]:
            local.append(_after(page, lambda s=s: page.select_option("#local-scales", s)))
        if i >= 1:  # the first click warms both sides up
            for s, sample in zip(settings, local):
                rows[s].append((server, sample))
    out = {}
    for s, pairs in rows.items():
        out[s] = {
            "ratio_median": round(statistics.median(b["total"] / a["total"] for a, b in pairs), 2),
            "server_total_ms_median": round(statistics.median(a["total"] for a, _ in pairs), 1),
            "server_network_ms_median": round(statistics.median(a["network"] for a, _ in pairs), 1),
            "browser_total_ms_median": round(statistics.median(b["total"] for _, b in pairs), 1),
            "browser_network_ms_median": round(statistics.median(b["network"] for _, b in pairs), 1),
            "browser_cut_ms_median": round(statistics.median(b["cut_stage"] for _, b in pairs), 1),
            "browser_paste_ms_median": round(statistics.median(b["paste_stage"] for _, b in pairs), 1),
            "windows": pairs[0][1]["windows"],
            "n": len(pairs),
        }
    return out


def summary(samples):
    keys = [k for k in ("total", "server", "network", "windows") if k in samples[0]]
    keys += [k for k in samples[0] if k.endswith("_stage")]
    return {f"{k}_ms_median": round(statistics.median(s[k] for s in samples), 1) for k in keys} | {"n": len(samples)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=None)
    ap.add_argument("--clicks", type=int, default=12)
    ap.add_argument("--photo", default="dog", choices=["dog", "truck", "groceries"])
    ap.add_argument("--no-browser-mode", action="store_true", help="measure server mode only")
    ap.add_argument("--browser-model", default="int8", choices=["int8", "fp32"], help="model precision in the page")
    ap.add_argument(
        "--browser-scales",
        default=None,
        help="window sizes a click tries in the page: server (as the server), auto:4, auto:2 (default: the page's)",
    )
    ap.add_argument(
        "--paired",
        type=int,
        default=0,
        metavar="N",
        help="instead: N clicks, each on the server and then in the page at every window-size setting, "
        "back to back (ratios robust to the machine's load)",
    )
    ap.add_argument("--threads", type=int, default=0, help="wasm threads in the page (default: the page's choice)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from picosam2.demo.app import create_app
    from picosam2.demo.server import ServerThread

    result = {}
    with tempfile.TemporaryDirectory() as cache:
        app = create_app(weights=args.weights, model_cache_dir=cache, browser_model=args.browser_model)
        with ServerThread(app) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(url + (f"?threads={args.threads}" if args.threads else ""))
            page.wait_for_function("() => window.picosam2Demo && window.picosam2Demo.ready")
            page.click(f"#samples button[data-name={args.photo}]")
            page.wait_for_selector("#stage:not(.empty)")
            box = page.locator("#photo").bounding_box()
            size = page.evaluate(
                "() => [window.picosam2Demo.state.photo.width, window.picosam2Demo.state.photo.height]"
            )
            result["photo"] = f"{args.photo} {size[0]}x{size[1]}"
            if args.paired:
                page.check("#local")
                page.wait_for_function(
                    "() => window.picosam2Demo.state.useLocal || window.picosam2Demo.lastError", timeout=600_000
                )
                settings = [o for o in page.eval_on_selector_all("#local-scales option", "os => os.map(o => o.value)")]
                result["precision"] = page.evaluate("() => window.picosam2Demo.state.local.precision")
                result["threads"] = page.evaluate("() => window.picosam2Demo.wasmThreads")
                result["paired"] = paired(page, box, args.paired + 1, settings)
            else:
                result["server_mode"] = summary(clicks(page, box, size, args.clicks))
            if not args.no_browser_mode and not args.paired:
                if args.browser_scales:
                    page.select_option("#local-scales", args.browser_scales)
                result["browser_scales"] = page.input_value("#local-scales")
                page.check("#local")
                page.wait_for_function(
                    "() => window.picosam2Demo.state.useLocal || window.picosam2Demo.lastError", timeout=600_000
                )
                error = page.evaluate("() => window.picosam2Demo.lastError")
                if error:
                    result["browser_mode"] = {"error": error}
                else:
                    result["browser_mode"] = summary(clicks(page, box, size, args.clicks))
                    result["browser_mode"]["precision"] = page.evaluate(
                        "() => window.picosam2Demo.state.local.precision"
                    )
                    result["browser_mode"]["threads"] = page.evaluate("() => window.picosam2Demo.wasmThreads")
            browser.close()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
