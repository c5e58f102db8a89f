"""Online memory: the teacher, its exact streaming cell and distilled students.

For each T, trains a `TreeMemory` teacher (d = 8 T) on MNIST digit sequences
as the `cpu` table trains IMFN, streams it exactly with `TreeMemoryCell`,
distils students (`IMFNStudent`) under each variant, and prints per T the
test pixel MSE and SSIM of every model's final memory (decoded by the
teacher's decoder), the ratio to the teacher, the state size, the streaming
step time at t = 10 and t = T (side by side) and the training time. Writes
JSON, markdown and a labelled PNG.

    python examples/online_memory.py --preset smoke
    python examples/online_memory.py --preset cpu --data-dir ../shared/data/mnist \
        --run-dir runs/online_cpu --output docs/online_memory.json
"""

import argparse

from keras_imfn.distribution import data_parallel
from experiments import cli
from experiments import online_memory as experiment


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
    cli.add_data_parallel(parser)
    args = parser.parse_args()
    cli.require("PIL", "data")  # the PNG, written after training
    config = dict(experiment.PRESETS[args.preset], preset=args.preset)
    for key in ("teacher_steps", "student_steps"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    with data_parallel(args.data_parallel):
        results, pictures = experiment.run(config, args.data_dir, args.run_dir, args.lengths,
                                           variants=args.variants)
    stem = cli.write_results(args.output, results, experiment.results_table(results))
    experiment.save_png(stem + ".png", results, pictures)


if __name__ == "__main__":
    main()
