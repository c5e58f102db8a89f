"""Moving MNIST: reconstruct clips from every level of a token-grid tree, or predict.

`--task reconstruction` (the default) trains on fresh Moving MNIST clips of the training digits every epoch, chooses
the weights on clips of held-out training digits, evaluates on the fixed,
seeded test clips of the test digits, and prints `Level | Compression |
MSE ± std | PSNR ± std` with the untrained tree, the equal-size PCA and the
group-mean-frame references; saves JSON, markdown, a labelled PNG strip of the
first test clip and `<output>_levels.png`, PSNR against compression.

`--task prediction` predicts the next 10 frames from the first 10: the tree
predictor (`keras_imfn.TreePredictor`, the tree's memory of the context
updated to the memory of the future and decoded) against ConvLSTM, GRU and
Transformer predictors of the same parameter count trained for the same steps,
and the copy-last-frame reference; prints MSE and MAE per frame (summed over
its pixels, as OpenSTL reports them) and SSIM; saves JSON, markdown and a
labelled PNG (context, true future, every prediction of the first test clip).

    python examples/moving_mnist.py --preset smoke
    python examples/moving_mnist.py --preset cpu --data-dir ../shared/data/mnist \
        --run-dir runs/moving_mnist_cpu --output docs/moving_mnist_cpu.json
    python examples/moving_mnist.py --task prediction --preset cpu \
        --data-dir ../shared/data/mnist --run-dir runs/moving_mnist_prediction_cpu \
        --output docs/moving_mnist_prediction_cpu.json
"""

import argparse

from keras_imfn.distribution import data_parallel
from experiments import cli
from experiments import moving_mnist_prediction as prediction
from experiments import moving_mnist_video as experiment
from experiments import video_tree


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="MNIST IDX folder (default: Keras download, "
                                           "else the embedded sample)")
    parser.add_argument("--task", choices=("reconstruction", "prediction"),
                        default="reconstruction")
    parser.add_argument("--preset", choices=sorted(experiment.PRESETS), default="smoke")
    parser.add_argument("--epochs", type=cli.non_negative_int,
                        help="training epochs (reconstruction: 2/3 local, 1/3 end to end; "
                             "prediction: every model's)")
    parser.add_argument("--output", type=cli.json_path, default="moving_mnist_results.json")
    parser.add_argument("--run-dir", help="checkpoints; rerun to resume")
    cli.add_data_parallel(parser)
    args = parser.parse_args()

    cli.require("PIL", "data")  # the PNGs, written after training
    cli.require("matplotlib", "data")
    if args.task == "prediction":
        return predict(args)
    config = dict(experiment.PRESETS[args.preset], preset=args.preset)
    if args.epochs is not None:
        config["local_epochs"] = round(args.epochs * 2 / 3)
        config["end_to_end_epochs"] = args.epochs - config["local_epochs"]
    with data_parallel(args.data_parallel):
        results, model, test = experiment.run(config, args.data_dir, args.run_dir)
    stem = cli.write_results(args.output, results, video_tree.results_table(results))
    video_tree.save_strip_png(stem + ".png", model, test, results)
    video_tree.save_level_curve(stem + "_levels.png", results, dataset="Moving MNIST")


def predict(args):
    config = dict(prediction.PRESETS[args.preset], preset=args.preset)
    if args.epochs is not None:
        config["epochs"] = args.epochs
    with data_parallel(args.data_parallel):
        results, examples = prediction.run(config, args.data_dir, args.run_dir)
    stem = cli.write_results(args.output, results, prediction.results_table(results))
    prediction.save_strip(stem + ".png", results, examples, config["context"])


if __name__ == "__main__":
    main()
