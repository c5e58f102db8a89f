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
    python examples/moving_mnist.py --preset cpu --run-dir runs/moving_mnist_cpu \
        --output docs/moving_mnist_cpu.json --save-preset keras_imfn/presets/moving_mnist_t16 \
        --table docs/moving_mnist_cpu.json    # the tree the run chose, as a preset
    python examples/moving_mnist.py --evaluate-preset moving_mnist_t16 \
        --data-dir ../shared/data/mnist       # a shipped tree on its table's test clips
"""

import argparse

import keras

from keras_imfn.distribution import data_parallel
from experiments import cli
from experiments import moving_mnist_prediction as prediction
from experiments import moving_mnist_video as experiment
from experiments import video_tree
from experiments.presets import committed_table
from experiments.reporting import markdown_table


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
    cli.add_preset_arguments(parser, "the tree that the finished run of --run-dir chose (the "
                             "weights its --output reports)", "rows")
    cli.add_data_parallel(parser)
    args = parser.parse_args()
    if args.evaluate_preset:
        print(evaluation_report(args.evaluate_preset, args.data_dir))
        return

    if args.task == "prediction" and (args.save_preset or args.table):
        parser.error("--save-preset saves the tree of the reconstruction table")
    config = dict(experiment.PRESETS[args.preset], preset=args.preset)
    if args.epochs is not None:
        config["local_epochs"] = round(args.epochs * 2 / 3)
        config["end_to_end_epochs"] = args.epochs - config["local_epochs"]
    if args.save_preset:
        if not (args.run_dir and args.table):
            parser.error("--save-preset saves the tree of --run-dir (its results at --output), "
                         "reproducing the rows of --table: give both")
        rows = experiment.save_preset(config, args.run_dir, args.output, args.save_preset,
                                      args.table)
        print(f"Saved {args.save_preset}: its run scored PSNR "
              + ", ".join(f"{row['psnr']:.2f}" for row in rows[1:])
              + f" dB at L0-L{len(rows) - 2}.")
        return
    cli.require("PIL", "data")  # the PNGs, written after training
    cli.require("matplotlib", "data")
    if args.task == "prediction":
        return predict(args)
    with data_parallel(args.data_parallel):
        results, model, test = experiment.run(config, args.data_dir, args.run_dir)
    stem = cli.write_results(args.output, results, video_tree.results_table(results))
    video_tree.save_strip_png(stem + ".png", model, test, results)
    video_tree.save_level_curve(stem + "_levels.png", results, dataset="Moving MNIST")


def evaluation_report(name, data_dir=None):
    """A preset's rows on its table's test clips, beside its run's and the table's."""
    scored, metadata = experiment.evaluate_preset(name, data_dir)
    run = metadata["experiment"]
    columns = [("this evaluation", scored["rows"]), ("its run", metadata["metrics"])]
    table = committed_table(metadata)
    note = ""
    if table is not None:
        if table["config"] == run["config"]:
            columns.append((metadata["table"], experiment.level_rows(table)))
        else:
            note = f"\n\n{metadata['table']} has another configuration: not compared."
    if ("embedded" in scored["source"]) != ("embedded" in run["source"]):
        note += (f"\n\nNot the digits of its run ({run['source']}): these clips are not its "
                 "test clips; give --data-dir, the MNIST IDX files.")
    rows = []
    for level, row in enumerate(scored["rows"]):
        label = "leaf (tokenizer)" if row["level"] == "leaf" else f"L{row['level']}"
        rows.append([label, f"{row['compression']}-to-1"]
                    + [f"{rows_of[level]['mse']:.6f}" for _, rows_of in columns]
                    + [f"{rows_of[level]['psnr']:.2f}" for _, rows_of in columns])
    return (f"Preset {name}: {metadata['description']} {metadata['parameter_count']:,} "
            f"parameters, the weights of {video_tree.chosen_weights(run['selected'])} (chosen "
            f"on validation clips), loaded in {scored['load_seconds']:.1f} s.\n"
            f"{scored['test_clips']} test clips of {run['config']['frames']} frames (seed "
            f"{run['test_seed']}) of the test digits from {scored['source']}, on "
            f"{keras.backend.backend()}; its run: {run['source']}, on {run['backend']}.\n\n"
            + markdown_table(["Level", "Compression"]
                             + [f"MSE, {what}" for what, _ in columns]
                             + [f"PSNR (dB), {what}" for what, _ in columns], rows) + note)


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
