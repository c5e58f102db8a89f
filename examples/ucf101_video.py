"""UCF-101 video: reconstruct clips from every level of a token-grid tree.

Trains on the split's train videos, evaluates on its test videos, prints
`Level | Compression | MSE ± std | PSNR ± std` (std across test clips) with
the equal-size PCA and group-mean-frame references, and saves JSON, markdown
a PNG strip (original frames on top, then levels L0, L1, ..., each row labelled
with its PSNR) and `<output>_levels.png`, PSNR against compression.

    python examples/ucf101_video.py --data-dir ../shared/data/ucf101-mini --preset smoke
    python examples/ucf101_video.py --data-dir /data/UCF101 --preset cpu --output docs/ucf101_cpu.json
"""

import argparse

from keras_imfn.distribution import data_parallel
from experiments import cli
from experiments import ucf101_video as experiment
from experiments import video_tree


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True,
                        help="folder holding UCF-101/ and ucfTrainTestlist/")
    parser.add_argument("--preset", choices=sorted(experiment.PRESETS), default="smoke")
    parser.add_argument("--frames", type=cli.positive_int,
                        help="frames per clip (a power of two, >= 2)")
    parser.add_argument("--size", type=cli.positive_int,
                        help="frame side in pixels (a multiple of the patch size)")
    parser.add_argument("--split", type=int, default=1, choices=(1, 2, 3))
    parser.add_argument("--epochs", type=cli.non_negative_int,
                        help="training epochs (2/3 local, 1/3 end to end)")
    parser.add_argument("--validation-groups", type=cli.non_negative_int,
                        help="last training groups held out to choose the weights (0: none, "
                             "the weights after the last epoch)")
    parser.add_argument("--output", type=cli.json_path, default="ucf101_results.json")
    parser.add_argument("--run-dir", help="checkpoints; rerun to resume")
    parser.add_argument("--cache-dir", help="decoded-clip cache")
    parser.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                        help="stream every window from disk instead of loading the clips "
                             "(the paper preset's default)")
    cli.add_data_parallel(parser)
    args = parser.parse_args()

    cli.require("cv2", "data")  # decoding the videos
    cli.require("PIL", "data")  # the PNGs, written after training
    cli.require("matplotlib", "data")
    config = dict(experiment.PRESETS[args.preset], preset=args.preset)
    for key in ("frames", "size", "validation_groups", "stream"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    if args.epochs is not None:
        config["local_epochs"] = round(args.epochs * 2 / 3)
        config["end_to_end_epochs"] = args.epochs - config["local_epochs"]
    with data_parallel(args.data_parallel):
        results, model, test = experiment.run(
            config, args.data_dir, args.split, run_dir=args.run_dir, cache_dir=args.cache_dir
        )
    stem = cli.write_results(args.output, results, video_tree.results_table(results))
    video_tree.save_strip_png(stem + ".png", model, test, results)
    video_tree.save_level_curve(stem + "_levels.png", results)


if __name__ == "__main__":
    main()
