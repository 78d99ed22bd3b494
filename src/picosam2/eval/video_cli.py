"""``picosam2 eval-video``: follow objects through DAVIS-layout sequences and report J, F and J&F."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UsageError

DESCRIPTION = """\
Follow every object of DAVIS-layout sequences (ROOT/JPEGImages/480p/SEQ/*.jpg with
ROOT/Annotations/480p/SEQ/*.png: 0/255 masks or DAVIS-2017 palette PNGs) from a first-frame
prompt, and score the masks the DAVIS way: J (region IoU) and F (boundary F-measure, tolerance
0.008 x the image diagonal) as mean, recall (> 0.5) and decay, J&F, per sequence and overall,
with model windows per object and frame and milliseconds per frame. Followers: `tracker`
(picosam2.track.Tracker), `naive-box` (the previous mask's box grown 20 % as a box prompt),
`naive-click` (a scale-aware click at the previous mask's most interior pixel), `oracle-click`
(a scale-aware click at the true most interior pixel of every frame's ground truth) and
`oracle-window` (one window a frame on that pixel, sized from the true mask by the --policy
margin: the tracker's placement made perfect). `tracker-oracle --oracle PARTS` is the tracker
with parts of its policy read from the ground truth (motion, reacquire, size, centre): it says
which part its gap to `oracle-window` comes from.
Every report also splits the frames by placement (window on the object, off it, lost while the
object is in view, object out of view) with the J of each part.
See docs/tracking.md."""


def add_parser(sub) -> list[str]:
    from ..commands import add_model_arguments
    from .video import FOLLOWERS, INIT_PROMPTS

    p = sub.add_parser("eval-video", help="video evaluation (DAVIS layout): J, F, J&F", description=DESCRIPTION)
    p.add_argument("root", metavar="DAVIS_ROOT", help="folder with JPEGImages/<res>/ and Annotations/<res>/")
    add_model_arguments(p)
    p.add_argument(
        "--init",
        default="click",
        choices=INIT_PROMPTS,
        help="first-frame prompt: click = the first mask's most interior pixel, box = its box, mask = the mask",
    )
    p.add_argument("--follower", default="tracker", choices=FOLLOWERS, help="how the object is followed")
    p.add_argument(
        "--oracle",
        default=None,
        metavar="PARTS",
        help="--follower tracker-oracle only: the parts of the policy read from the truth, "
        "comma-separated from motion, motion-following, reacquire, reacquire-window, reacquire-accept, "
        "size, centre (picosam2.eval.track_oracles says what each reads)",
    )
    p.add_argument(
        "--policy",
        default=None,
        metavar="JSON",
        help="tracker, oracle-window and tracker-oracle: TrackPolicy fields changed from the defaults, "
        'e.g. \'{"motion": "mask"}\' or \'{"margin": 0.8}\'',
    )
    p.add_argument("--sequences", nargs="+", default=None, metavar="SEQ", help="only these sequences")
    p.add_argument("--image-set", default=None, metavar="NAME", help="the sequences of ImageSets/2017/NAME.txt")
    p.add_argument("--resolution", default="480p", help="sub-folder of JPEGImages/ and Annotations/ (default 480p)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N sequences")
    p.add_argument("--out", required=True, metavar="RESULTS.json", help="report to write")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no table")
    p.set_defaults(func=run_eval_video)
    return ["eval-video"]


def policy_changes(text: str) -> dict:
    """The ``--policy`` JSON object, or a one-line error."""
    import json

    try:
        changes = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--policy is not JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(changes, dict):
        raise UsageError('--policy takes a JSON object of TrackPolicy fields, e.g. \'{"motion": "mask"}\'')
    return changes


def policy_from(changes: dict):
    """A :class:`~picosam2.track.TrackPolicy` with the ``--policy`` fields changed."""
    from dataclasses import fields

    from ..track import TrackPolicy

    known = {f.name for f in fields(TrackPolicy)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise UsageError(
            f"--policy: unknown TrackPolicy field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    try:
        return TrackPolicy(**changes)
    except TypeError as exc:
        raise UsageError(f"--policy: {exc}") from exc


def run_eval_video(args) -> int:
    from .. import __version__
    from ..io_utils import write_json_atomic
    from ..predictor import Predictor
    from .video import breakdown, evaluate_tracker, format_table, make_follower, read_conditions, read_davis

    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    if args.sequences and args.image_set:
        raise UsageError("--sequences and --image-set exclude each other")
    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder, not a file")
    if not out.resolve().parent.is_dir():
        raise UsageError(f"--out: folder {out.resolve().parent} does not exist")
    changes = policy_changes(args.policy) if args.policy is not None else None
    policy = policy_from(changes) if changes is not None else None
    if policy is not None and args.follower in ("naive-box", "naive-click", "oracle-click"):
        raise UsageError("--policy applies to --follower tracker, oracle-window and tracker-oracle only")
    oracle = ()
    if args.follower == "tracker-oracle":
        from .track_oracles import oracle_parts

        oracle = oracle_parts(args.oracle or "")
    elif args.oracle is not None:
        raise UsageError("--oracle applies to --follower tracker-oracle only")
    sequences = read_davis(args.root, args.sequences, args.resolution, args.image_set)
    if args.limit:
        sequences = sequences[: args.limit]
    predictor = Predictor.from_pretrained(
        args.weights, backend=args.backend, threads=args.threads, revision=args.revision, point_scales="auto"
    )
    if args.follower.startswith("tracker"):  # fails now, not after the first sequence, without picosam2.track
        make_follower(args.follower, predictor, policy, oracle)

    report = evaluate_tracker(
        lambda: make_follower(args.follower, predictor, policy, oracle),
        sequences,
        init=args.init,
        progress=not args.quiet,
    )
    conditions = read_conditions(args.root)
    data = {}
    if conditions:
        import json

        meta = json.loads((Path(args.root) / "meta.json").read_text())
        data = {k: v for k, v in meta.items() if k != "sequences"}
        for name, s in report["per_sequence"].items():
            s["conditions"] = conditions.get(name, {})
    report = {
        "overall": report["overall"],
        "by_condition": breakdown(report["per_sequence"], conditions) if conditions else {},
        "follower": args.follower,
        "oracle": list(oracle),
        "policy": changes or {},
        "init": args.init,
        "root": Path(args.root).name,  # the folder's name: a results file names no machine path
        "data": data,
        "resolution": args.resolution,
        "weights": str(args.weights) if args.weights else "shipped",
        "backend": args.backend or "default",
        "threads": args.threads,
        "point_scales": "auto",
        "measures": "DAVIS-2017 semi-supervised: first and last frames not scored; F tolerance 0.008 x diagonal",
        "picosam2_version": __version__,
        "per_sequence": report["per_sequence"],
    }
    write_json_atomic(report, out, indent=1)
    if not args.quiet:
        print(format_table(report))
    print(f"report: {out}", file=sys.stderr)
    return 0
