"""What a reference follower gets on the frames where another follower's window was on, off or lost.

Both reports are ``picosam2 eval-video`` results files on the same set (same sequences, same
objects, same frames): ``FOLLOWER`` sorts each scored frame by its placement (``on``, ``off``,
``lost``, ``absent-empty``, ``absent-mask``), and for each placement this prints and writes the
follower's mean J on those frames next to the reference's mean J on the very same frames. With the
tracker as the follower and the oracle window as the reference it says, for example, whether the
object could still be segmented on the frames the tracker had lost.

    python scripts/compare_placement.py benchmarks/track/results-devval-tracker.json \\
        benchmarks/video/results-devval-oracle-window.json --out placement-devval.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path


def compare(follower: dict, reference: dict) -> dict:
    """Per placement of ``follower``'s frames: share, the follower's J and the reference's J."""
    sums: dict[str, list[float]] = {}
    total = 0
    for name, seq in follower["per_sequence"].items():
        other = reference["per_sequence"].get(name)
        if other is None:
            raise ValueError(f"sequence {name!r} is in the follower's report but not in the reference's")
        for oid, obj in seq["objects"].items():
            ref = other["objects"].get(oid)
            places, own = obj.get("placement_per_frame"), obj["J_per_frame"]
            if ref is None or places is None:
                raise ValueError(f"sequence {name!r} object {oid}: missing in the reference or without placements")
            if len(ref["J_per_frame"]) != len(own):
                raise ValueError(f"sequence {name!r} object {oid}: the reports score different frames")
            for place, j, r in zip(places, own, ref["J_per_frame"]):
                s = sums.setdefault(place, [0, 0.0, 0.0])
                s[0] += 1
                s[1] += j
                s[2] += r
                total += 1
    return {
        place: {"share": round(n / total, 4), "J": round(j / n, 4), "reference_J": round(r / n, 4), "frames": n}
        for place, (n, j, r) in sorted(sums.items(), key=lambda kv: -kv[1][0])
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("follower", type=Path, help="eval-video report whose placements sort the frames")
    ap.add_argument("reference", type=Path, help="eval-video report on the same set")
    ap.add_argument("--out", type=Path, help="write the comparison here (JSON)")
    args = ap.parse_args(argv)
    try:
        follower, reference = (json.loads(p.read_text()) for p in (args.follower, args.reference))
        by_place = compare(follower, reference)
    except (OSError, ValueError, KeyError) as exc:
        print(f"compare_placement: {exc}", file=sys.stderr)
        return 2
    result = {
        "follower": follower.get("follower"),
        "follower_oracle": follower.get("oracle"),
        "reference": reference.get("follower"),
        "set": follower.get("root"),
        "follower_report": args.follower.name,
        "reference_report": args.reference.name,
        "by_placement": by_place,
    }
    for place, v in by_place.items():
        print(f"{place:13s} {v['share']:6.1%} of frames  J {v['J']:.3f}  reference J {v['reference_J']:.3f}")
    if args.out:
        fd, tmp = tempfile.mkstemp(dir=args.out.parent or ".", prefix=args.out.name, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
