"""Validation trials for the UCF-101 `cpu` preset, on held-out training groups.

The test videos are never read: the tree trains on the training videos
outside the last `validation_groups` groups and is scored on those after
every epoch (mean PSNR over the levels, as the experiment selects its
weights). Appends one JSON line per trial (the whole curve) to `--output`.

    python examples/tuning/ucf101_validation.py --data-dir ../shared/data/ucf101-mini \\
        --local-epochs 0 --end-to-end-epochs 12 --tag e2e_only
    # only the linear skips and the tokenizer train, end to end
    python examples/tuning/ucf101_validation.py --data-dir ../shared/data/ucf101-mini \
        --local-epochs 0 --end-to-end-epochs 12 --linear-only --tag linear_e2e
"""

import sys
import os
import argparse
import json
import time

from keras_imfn import KeepBestWeights
# The experiment drivers live in examples/experiments, beside this folder.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments.evaluation import level_errors
from keras_imfn.training import train_local_then_end_to_end
from experiments import ucf101_video as experiment
from experiments import video_tree


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--tag", required=True, help="name of this trial in the output")
    parser.add_argument("--output", default="ucf101_validation.jsonl")
    parser.add_argument("--cache-dir", help="decoded-clip cache")
    parser.add_argument("--local-epochs", type=int)
    parser.add_argument("--end-to-end-epochs", type=int)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--fine-tune-learning-rate", type=float, default=3e-4)
    parser.add_argument("--share-weights", action="store_true")
    parser.add_argument("--linear-only", action="store_true",
                        help="freeze the sweepers' MLPs at their zero start: only the linear "
                             "skips and the tokenizer train (a linear tree, trained)")
    args = parser.parse_args()

    config = dict(experiment.PRESETS["cpu"], share_weights=args.share_weights)
    for key in ("local_epochs", "end_to_end_epochs"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    train, validation, summary = experiment.load_training(
        args.data_dir, 1, config, cache_dir=args.cache_dir)
    model = video_tree.build_tree(config, train)
    if args.linear_only:
        for sweeper in model.merges + model.inverses:
            sweeper.mlp.trainable = False
    best = KeepBestWeights(video_tree.validation_score(validation))
    started = time.time()
    train_local_then_end_to_end(
        model, train, config["local_epochs"], config["end_to_end_epochs"],
        learning_rate=args.learning_rate, fine_tune_learning_rate=args.fine_tune_learning_rate,
        batch_size=config["batch_size"], verbose=0, callbacks=[best])
    best.restore_best()
    levels = [row["psnr"] for row in level_errors(model, validation, 4)[1:]]
    line = dict(tag=args.tag, settings=vars(args), held_out=summary["validation"]["groups"],
                seconds=time.time() - started, best_at=best.best_at, best_mean_psnr=best.best_score, best_levels_psnr=levels,
                curve=best.history)
    print(json.dumps({k: v for k, v in line.items() if k != "curve"}))
    with open(args.output, "a") as f:
        f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
