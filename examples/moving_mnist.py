"""Moving MNIST: reconstruct clips from every level of a token-grid tree.

Trains on fresh Moving MNIST clips of the training digits every epoch, chooses
the weights on clips of held-out training digits, evaluates on the fixed,
seeded test clips of the test digits, and prints `Level | Compression |
MSE ± std | PSNR ± std` with the untrained tree, the equal-size PCA and the
group-mean-frame references; saves JSON, markdown, a labelled PNG strip of the
first test clip and `<output>_levels.png`, PSNR against compression.

    python examples/moving_mnist.py --preset smoke
    python examples/moving_mnist.py --preset cpu --data-dir ../shared/data/mnist \
        --run-dir runs/moving_mnist_cpu --output docs/moving_mnist_cpu.json
"""

import argparse

from keras_imfn.distribution import data_parallel
from keras_imfn.experiments import cli
from keras_imfn.experiments import moving_mnist_video as experiment
from keras_imfn.experiments import video_tree


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="MNIST IDX folder (default: Keras download, "
                                           "else the embedded sample)")
    parser.add_argument("--preset", choices=sorted(experiment.PRESETS), default="smoke")
    parser.add_argument("--epochs", type=cli.non_negative_int,
                        help="training epochs (2/3 local, 1/3 end to end)")
    parser.add_argument("--output", type=cli.json_path, default="moving_mnist_results.json")
    parser.add_argument("--run-dir", help="checkpoints; rerun to resume")
    cli.add_data_parallel(parser)
    args = parser.parse_args()

    cli.require("PIL", "data")  # the PNGs, written after training
    cli.require("matplotlib", "data")
    config = dict(experiment.PRESETS[args.preset], preset=args.preset)
    if args.epochs is not None:
        config["local_epochs"] = round(args.epochs * 2 / 3)
        config["end_to_end_epochs"] = args.epochs - config["local_epochs"]
    with data_parallel(args.data_parallel):
        results, model, test = experiment.run(config, args.data_dir, args.run_dir)
    stem = cli.write_results(args.output, results, video_tree.markdown_table(results))
    video_tree.save_strip_png(stem + ".png", model, test, results)
    video_tree.save_level_curve(stem + "_levels.png", results, dataset="Moving MNIST")


if __name__ == "__main__":
    main()
