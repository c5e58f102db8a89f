"""Peak memory of reading every UCF-101 window: in memory (`load_clips`) vs streamed (`ClipStream`).

Each way runs in its own fresh worker process, side by side in one run, on
the same videos and clip settings (default: every window, one starting at
every frame, 16 frames of 64x64, the split's train list), with its own empty
cache folder so both decode the videos:

* ``in_memory``: ``ucf101.load_clips(..., clips_per_video=None)``, the whole
  subset as one float32 array, then a pass over it in batches;
* ``stream``: ``ucf101.ClipStream(...)``, then a pass over all its batches.

A worker reports its peak resident memory (``ru_maxrss``) after importing
Keras and the package (the baseline) and at the end, and the clips it served
(with a checksum, equal between the two). The table gives the peak above the
baseline and the bytes of the clips themselves.

    python benchmarks/ucf_loader_memory.py --data-dir ../shared/data/ucf101-mini
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

WAYS = ("in_memory", "stream")


def peak_rss_bytes():
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in kB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def worker(args):
    _common.select_backend(args.backend)
    import numpy as np

    from keras_imfn.datasets import ucf101

    baseline = peak_rss_bytes()
    settings = dict(subset=args.subset, frames=args.frames, size=args.size, hop=args.hop,
                    cache_dir=args.cache_dir, progress=False)
    clips = total = 0
    if args.worker == "in_memory":
        array, _, _ = ucf101.load_clips(args.data_dir, clips_per_video=None, **settings)
        for start in range(0, len(array), args.batch_size):
            batch = array[start : start + args.batch_size]
            clips, total = clips + len(batch), total + float(batch.sum(dtype="float64"))
    else:
        stream = ucf101.ClipStream(args.data_dir, batch_size=args.batch_size, shuffle=False,
                                   **settings)
        for index in range(len(stream)):
            batch = stream[index]
            clips, total = clips + len(batch), total + float(batch.sum(dtype="float64"))
    clip_bytes = clips * args.frames * args.size * args.size * 3 * np.dtype("float32").itemsize
    print(json.dumps({"baseline_bytes": baseline, "peak_bytes": peak_rss_bytes(),
                      "clips": clips, "checksum": total, "clip_bytes": clip_bytes}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True,
                        help="folder holding UCF-101/ and ucfTrainTestlist/")
    parser.add_argument("--subset", default="train", choices=("train", "test"))
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--hop", type=int, default=1, help="frames between window starts")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--backend", help="Keras backend (default: $KERAS_BACKEND, else jax)")
    parser.add_argument("--output", default=_common.default_output("ucf_loader_memory.json"))
    parser.add_argument("--worker", choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    backend = _common.select_backend(args.backend)
    rows = {}
    for way in WAYS:
        with tempfile.TemporaryDirectory() as cache_dir:
            command = [sys.executable, os.path.abspath(__file__), "--worker", way,
                       "--cache-dir", cache_dir, "--data-dir", args.data_dir,
                       "--subset", args.subset, "--frames", str(args.frames),
                       "--size", str(args.size), "--hop", str(args.hop),
                       "--batch-size", str(args.batch_size), "--backend", backend]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                raise SystemExit(f"the {way} worker failed:\n{done.stderr[-3000:]}")
            rows[way] = json.loads(done.stdout.strip().splitlines()[-1])
            rows[way]["above_baseline_bytes"] = rows[way]["peak_bytes"] - rows[way]["baseline_bytes"]
    if rows["in_memory"]["clips"] != rows["stream"]["clips"] or abs(
        rows["in_memory"]["checksum"] - rows["stream"]["checksum"]
    ) > 1e-6 * abs(rows["in_memory"]["checksum"]):
        raise SystemExit(f"the two ways served different clips: {rows}")
    batch_bytes = args.batch_size * args.frames * args.size * args.size * 3 * 4
    ratio = rows["in_memory"]["above_baseline_bytes"] / max(rows["stream"]["above_baseline_bytes"], 1)
    config = {key: getattr(args, key) for key in ("subset", "frames", "size", "hop", "batch_size")}
    config["data_dir"] = _common.portable_path(args.data_dir)
    result = {"config": dict(config, output=args.output), "command": _common.command_line(),
              "environment": _common.environment(), "rows": rows, "batch_bytes": batch_bytes,
              "in_memory_over_stream": ratio}
    mib = 2**20
    table = _common.markdown_table(
        ["way", "clips", "clips' bytes (MiB)", "peak above baseline (MiB)", "peak (MiB)"],
        [[way, row["clips"], f"{row['clip_bytes'] / mib:.1f}",
          f"{row['above_baseline_bytes'] / mib:.1f}", f"{row['peak_bytes'] / mib:.1f}"]
         for way, row in rows.items()],
    )
    markdown = (f"`{result['command']}`\n\n{table}\n\nOne batch of {args.batch_size} clips is "
                f"{batch_bytes / mib:.1f} MiB; reading every window in memory peaks "
                f"{ratio:.1f}x as high above the baseline as streaming them.\n")
    _common.write_outputs(args.output, result, markdown)


if __name__ == "__main__":
    main()
