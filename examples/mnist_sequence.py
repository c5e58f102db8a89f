"""MNIST sequences: IMFN against Transformer, Mamba and GRU compressors.

Compresses T digits into one d-vector and reconstructs them; prints
`Model | MSE ± std | PSNR ± std | SSIM ± std | Params` over seeds, with the
mean-image and equal-budget PCA rows, and saves JSON, markdown and a PNG of
reconstructions (one row per model, labelled with its MSE and PSNR).

    python examples/mnist_sequence.py --preset smoke
    python examples/mnist_sequence.py --preset cpu --data-dir ../shared/data/mnist \
        --output docs/mnist_cpu.json
    python examples/mnist_sequence.py --combine gpu.json imfn.json --output table.json
    python examples/mnist_sequence.py --evaluate-preset mnist_t16_d128 \
        --data-dir ../shared/data/mnist     # a shipped tree on its table's test split
"""

import argparse
import json
import os
import sys

import keras

from keras_imfn.distribution import data_parallel
from experiments import cli
from experiments import mnist_sequence as experiment
from experiments.presets import committed_table
from experiments.reporting import markdown_table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(experiment.PRESETS), default="smoke")
    parser.add_argument("--data-dir", help="directory of the MNIST IDX files")
    parser.add_argument("--models", type=cli.comma_list(choices=experiment.MODELS),
                        default=",".join(experiment.MODELS))
    parser.add_argument("--seeds", type=cli.positive_int,
                        help="override the preset's number of seeds")
    parser.add_argument("--epochs", type=cli.positive_int,
                        help="override the training length, in epochs of the preset's "
                             "steps_per_epoch (IMFN splits them into local and end to end "
                             "as the preset does)")
    parser.add_argument("--output", type=cli.json_path, default="results.json",
                        help="JSON path (.md, .png beside)")
    parser.add_argument("--run-dir", help="per-(model, seed) results; rerun to resume")
    cli.add_report_only(parser)
    parser.add_argument("--combine", nargs="+", metavar="JSON",
                        help="train nothing: one table from these results files (a model "
                             "in a later file replaces the same model of an earlier one)")
    cli.add_preset_arguments(parser, "the IMFN tree of --run-dir (seed 0, finished)", "row")
    cli.add_data_parallel(parser)
    args = parser.parse_args()
    if args.evaluate_preset:
        print(evaluation_report(args.evaluate_preset, args.data_dir))
        return
    if args.combine:
        runs = []
        for path in args.combine:
            with open(path) as f:
                runs.append(json.load(f))
        results = experiment.combine(runs)
        results["command"] = " ".join(["python"] + sys.argv)
        table = experiment.results_table(results)
        print(table)
        with open(args.output, "w") as f:
            json.dump(results, f, indent=2)
        sources = "\n".join(f"- `{run['command']}` (backend {run['backend']}): "
                             f"{', '.join(run['models'])}" for run in results["runs"])
        with open(os.path.splitext(args.output)[0] + ".md", "w") as f:
            f.write(f"`{results['command']}`, rows from:\n\n{sources}\n\n{table}\n")
        return

    cli.check_report_only(parser, args)
    cli.require("PIL", "data")  # the PNG, written after training
    config = dict(experiment.PRESETS[args.preset], preset=args.preset)
    if args.seeds is not None:
        config["seeds"] = args.seeds
    if args.epochs is not None:
        steps = args.epochs * config["steps_per_epoch"]
        local_share = config["local_steps"] / (config["local_steps"] + config["end_to_end_steps"])
        config["local_steps"] = round(steps * local_share)
        config["end_to_end_steps"] = steps - config["local_steps"]
    if args.save_preset:
        if not (args.run_dir and args.table):
            parser.error("--save-preset saves a tree of --run-dir, reproducing a row of "
                         "--table: give both")
        row = experiment.save_preset(config, args.run_dir, args.save_preset, args.table)
        print(f"Saved {args.save_preset}: its run scored MSE {row['mse']:.6f}, "
              f"SSIM {row['ssim']:.4f}.")
        return
    with data_parallel(args.data_parallel):
        results, originals, examples = experiment.run(
            config, args.models, data_dir=args.data_dir, run_dir=args.run_dir,
            train=not args.report_only)
    stem = os.path.splitext(args.output)[0]
    rows = experiment.save_reconstructions_png(stem + ".png", originals, examples, results)
    cli.write_results(args.output, results, experiment.results_table(results),
                      f"\nPNG rows, top to bottom: {', '.join(rows)}\n{cli.pending_note(results)}")


def evaluation_report(name, data_dir=None):
    """A preset's row on its table's test split, beside its run's and the table's."""
    row, metadata = experiment.evaluate_preset(name, data_dir)
    seed = metadata.get("seed", 0)
    lines = [["this evaluation", row["mse"], row["psnr"], row["ssim"]],
             [f"its training run (seed {seed})", *(metadata["metrics"][k]
                                                   for k in ("mse", "psnr", "ssim"))]]
    table, config = committed_table(metadata), metadata["experiment"]["config"]
    shape = ("sequence_length", "memory_dim", "test_sequences")
    note = ""
    if table is not None and any(table["config"].get(k) != config[k] for k in shape):
        note = f"\n\n{metadata['table']} has another configuration: not compared."
    elif table is not None:
        table_row = table["models"][metadata["table_row"]]
        lines.append([f"{metadata['table']}, seed {seed}",
                      *(table_row[k]["per_seed"][seed] for k in ("mse", "psnr", "ssim"))])
    rows = [[what, f"{mse:.6f}", f"{psnr:.2f}", f"{ssim:.4f}", f"{mse / lines[-1][1]:.3f}"]
            for what, mse, psnr, ssim in lines]
    return (f"Preset {name}: {metadata['description']} {metadata['parameter_count']:,} "
            f"parameters, loaded in {row['load_seconds']:.1f} s.\n"
            f"{row['test_sequences']} test sequences of "
            f"{config['sequence_length']} digits (seed {metadata['experiment']['test_seed']}) "
            f"from {row['source']}, on {keras.backend.backend()}.\n\n"
            + markdown_table(["", "MSE", "PSNR (dB)", "SSIM", "MSE / last row"], rows) + note)


if __name__ == "__main__":
    main()
