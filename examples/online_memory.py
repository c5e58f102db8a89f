"""Online memory: the teacher, its exact streaming cell and distilled students.

For each T, trains a `TreeMemory` teacher (d = 8 T) on MNIST digit sequences
as the `cpu` table trains IMFN (from T=32 on, its tree sized by its levels'
work), streams it exactly with `TreeMemoryCell`, distils students
(`IMFNStudent`) under each variant, and prints per T the test pixel MSE and
SSIM of every model's final memory (decoded by the teacher's decoder), the
ratio to the teacher, the state size, the streaming step time at t = 10 and
t = T (side by side) and the training time. Writes JSON, markdown and a
labelled PNG.

    python examples/online_memory.py --preset smoke
    python examples/online_memory.py --preset cpu --data-dir ../shared/data/mnist \
        --run-dir runs/online_cpu --output docs/online_memory.json
    python examples/online_memory.py --preset cpu --data-dir ../shared/data/mnist \
        --run-dir runs/online_cpu --output docs/online_memory.json --report-only
                                        # while it trains: the finished models' rows
    python examples/online_memory.py --preset cpu --run-dir runs/online_cpu --lengths 16 \
        --variants learned-path+g --output docs/online_memory_t16.json \
        --save-preset presets/online_t16 --table docs/online_memory_t16.json
                                        # a run's teacher and student, as a preset
    python examples/online_memory.py --evaluate-preset presets/online_t16 \
        --data-dir ../shared/data/mnist    # scored on its table's test sequences
"""

import argparse

import keras

from keras_imfn.distribution import data_parallel
from experiments import cli
from experiments import online_memory as experiment
from experiments.presets import committed_table
from experiments.reporting import markdown_table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(experiment.PRESETS), default="smoke")
    parser.add_argument("--data-dir", help="directory of the MNIST IDX files")
    parser.add_argument("--lengths", type=cli.comma_list(cli.positive_int),
                        help="override the preset's sequence lengths")
    parser.add_argument("--variants", type=cli.comma_list(choices=experiment.VARIANTS),
                        help="the students to distil (default: every variant)")
    parser.add_argument("--teacher-steps", type=cli.positive_int,
                        help="override the preset's teacher training steps (recorded in the JSON)")
    parser.add_argument("--student-steps", type=cli.positive_int,
                        help="override the preset's student training steps (recorded in the JSON)")
    parser.add_argument("--run-dir", help="finished teachers and students; rerun to resume")
    parser.add_argument("--output", type=cli.json_path, default="online_memory.json",
                        help="JSON path (.md, .png beside)")
    cli.add_report_only(parser)
    cli.add_preset_arguments(parser, "the teacher of --run-dir and its student (one of "
                             "--lengths, one of --variants; its results at --output)",
                             "teacher and student rows", model="DistillationTrainer")
    cli.add_data_parallel(parser)
    args = parser.parse_args()
    if args.evaluate_preset:
        print(evaluation_report(args.evaluate_preset, args.data_dir))
        return
    config = dict(experiment.PRESETS[args.preset], preset=args.preset)
    for key in ("teacher_steps", "student_steps"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    if args.save_preset:
        if not (args.run_dir and args.table):
            parser.error("--save-preset saves a teacher and student of --run-dir (its results "
                         "at --output), reproducing the rows of --table: give --run-dir and --table "
                         "(and that run's --output; give both)")
        if len(args.lengths or ()) != 1 or len(args.variants or ()) != 1:
            parser.error("--save-preset saves one teacher and one student: give one "
                         "--lengths and one --variants")
        metrics = experiment.save_preset(config, args.run_dir, args.output, args.lengths[0],
                                         args.variants[0], args.save_preset, args.table)
        print(f"Saved {args.save_preset}: its run scored test MSE "
              f"{metrics['teacher']['mse']:.6f} (teacher), {metrics['student']['mse']:.6f} "
              f"(student, {metrics['ratio']:.3f} times the teacher's).")
        return
    cli.check_report_only(parser, args)
    cli.require("PIL", "data")  # the PNG, written after training
    with data_parallel(args.data_parallel):
        results, pictures = experiment.run(config, args.data_dir, args.run_dir, args.lengths,
                                           variants=args.variants, train=not args.report_only)
    stem = cli.write_results(args.output, results, experiment.results_table(results),
                             cli.pending_note(results))
    if pictures:  # none while every teacher is unfinished (--report-only)
        experiment.save_png(stem + ".png", results, pictures)


def evaluation_report(name, data_dir=None):
    """A preset's teacher and student rows on its table's test sequences,
    beside its run's and the table's."""
    scored, metadata = experiment.evaluate_preset(name, data_dir)
    run = metadata["experiment"]
    columns = [("this evaluation", scored), ("its run", metadata["metrics"])]
    table, note = committed_table(metadata), ""
    if table is not None:
        rows = table["lengths"].get(str(run["length"]), {})
        student = rows.get(metadata["table_row"])
        ran = {k: v for k, v in table["config"].items() if k != "source"}
        same = [experiment.length_config(c, run["length"]) for c in (ran, run["config"])]
        if same[0] != same[1]:
            note = f"\n\n{metadata['table']} has another configuration: not compared."
        elif student is None:
            note = (f"\n\n{metadata['table']} has no row {metadata['table_row']} at "
                    f"T={run['length']}: not compared.")
        else:
            columns.append((metadata["table"], {"teacher": rows["teacher"]["test"],
                                                "student": student["test"],
                                                "ratio": student["test"]["ratio"]}))
    if ("embedded" in scored["source"]) != ("embedded" in str(run["source"])):
        note += (f"\n\nNot the digits of its run ({run['source']}): these sequences are not "
                 "its test sequences; give --data-dir, the MNIST IDX files.")
    lines = []
    for row, label in (("teacher", "teacher"), ("student", metadata["table_row"])):
        for what, metrics in columns:
            m = metrics[row]
            ratio = 1.0 if row == "teacher" else metrics["ratio"]
            lines.append([f"{label}, {what}", f"{m['mse']:.6f}", f"{m['psnr']:.2f}",
                          f"{m['ssim']:.4f}", f"{ratio:.3f}"])
    return (f"Preset {name}: {metadata['description']} {metadata['parameter_count']:,} "
            f"parameters (teacher and student), loaded in {scored['load_seconds']:.1f} s.\n"
            f"{scored['test_sequences']} test sequences of {run['length']} digits (seed "
            f"{run['test_seed']}) of the test digits from {scored['source']}, on "
            f"{keras.backend.backend()}; its run: {run['source']}, on {run['backend']}.\n\n"
            + markdown_table(["", "MSE", "PSNR (dB)", "SSIM", "MSE / teacher"], lines) + note)


if __name__ == "__main__":
    main()
