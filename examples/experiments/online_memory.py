"""The online-memory experiment: the teacher, its exact streaming cell and students.

For each sequence length T, a `TreeMemory` teacher of `d = 8 T` (8 numbers
per digit) is trained on MNIST digit sequences as the `cpu` table trains its
IMFN (`mnist_sequence.train_imfn`), from T = `sized_from` on with its tree
sized by its levels' work (`teacher_config`), then read online three ways:

* the exact cell (`TreeMemoryCell`): the teacher streamed, state
  `(log2 T + 1) d + 1` numbers;
* students (`IMFNStudent`, state `d + 1`) distilled with a
  `DistillationTrainer` under each variant of `VARIANTS`; a segmented
  variant distils the student from the subtree of one segment and streams it
  in a `SegmentedCell` (state `S d + 2` for `S` segments);
* and, for reference, the equal-size PCA and the mean image.

The training digits are split: the last `HELD_OUT` are validation digits,
on which a variant is chosen; test digits score the table. Every model
decodes its final memory with the teacher's decoder.

A run writes each finished teacher (weights) and each finished variant (its
weights and a JSON line) into `run_dir`, so a stopped run resumes where it
stopped.

`save_preset` saves a finished run's teacher and one of its students as a
`DistillationTrainer` preset (its run's rows in the metadata);
`evaluate_preset` scores a preset on the same test sequences.
"""

import json
import math
import os
import time

import keras
import numpy as np

from keras_imfn import DataEpochSync
from keras_imfn import DistillationTrainer
from keras_imfn import FusedAdam
from keras_imfn import IMFNStudent
from keras_imfn import SegmentedCell
from keras_imfn import StopOnNonFiniteLoss
from keras_imfn import StopOnStalledTraining
from keras_imfn import TreeMemoryCell
from keras_imfn.datasets import mnist

from experiments import mnist_sequence
from experiments import presets
from experiments import reporting
from experiments.evaluation import in_batches
from experiments.evaluation import per_step_error
from experiments.run_dir import Run
from experiments.run_dir import git_commit

# The last training digits held out for validation (`mnist.split_validation`).
HELD_OUT = 1000
VARIANTS = {
    # The teacher's inverse path alone (no training).
    "inverse-path": dict(inverse_path=True, learn_inverses=False, train=False),
    # The path walked with the student's own copies of the inverses, trained
    # with the MLP (the merges and the leaf encoder stay the teacher's).
    "learned-path+g": dict(inverse_path=True, learn_inverses=True, train=True),
    # The best variant of the earlier report: the student's own MLP update.
    "mlp": dict(inverse_path=False, learn_inverses=False, train=True),
    # Constant cost: the MLP update plus a rank-16 path map per leaf position
    # (`IMFNStudent`'s `path_rank`), started in closed form
    # (`DistillationTrainer.adapt`, `adapt_student`), then trained; a narrow
    # MLP (d / 4 wide, one block) beside it, which at T=16 scored as the
    # default's 2d and two blocks and keeps a step at d=1024 cheap. Chosen on
    # validation (docs/tuning/student_design.md).
    "path-map+g": dict(inverse_path=False, learn_inverses=False, train=True, path_rank=16,
                       hidden_fraction=0.25, num_blocks=1, adapt=True),
    # The teacher's inverse path as the base that a trained MLP corrects.
    "inverse-path+g": dict(inverse_path=True, learn_inverses=False, train=True),
    # A wider state (`SegmentedCell`): 2 or 4 segments, each read by a
    # learned-path+g student of the segment's subtree, the teacher's top
    # levels over them; a finished segment no longer drifts.
    "learned-path+g-seg2": dict(inverse_path=True, learn_inverses=True, train=True, segments=2),
    "learned-path+g-seg4": dict(inverse_path=True, learn_inverses=True, train=True, segments=4),
}
# What each one-vector student is, for a preset's description.
STUDENTS = {
    "inverse-path": "the teacher's inverse path alone (untrained: its MLP correction "
                    "starts at zero)",
    "learned-path+g": "the teacher's inverse path walked with the student's own trained "
                      "copies of the inverses, corrected by a trained MLP",
    "mlp": "its own trained MLP update",
    "path-map+g": "its own trained MLP update plus a learned low-rank path map per leaf "
                  "position (a step of constant cost)",
    "inverse-path+g": "the teacher's inverse path corrected by a trained MLP",
}
# Every trained variant: trajectory (weighted toward late steps) + pixel +
# teacher-forced one-step losses, the best mix of the earlier report.
TRAINER_ARGS = dict(step_weighting="linear", pixel_loss_weight=1.0, one_step_loss_weight=1.0)

# The training sequences a path map is started on (`DistillationTrainer.adapt`),
# and their seed.
ADAPT_SEQUENCES = 1024
ADAPT_SEED = 30_000
# The seed of the test sequences (the validation ones: 20_000).
TEST_SEED = 10_000
# The script a preset's metadata names as the maker of its models.
DRIVER = "examples/online_memory.py"

PRESETS = {
    "smoke": dict(lengths=(4,), numbers_per_step=8, teacher_steps=4, student_steps=4,
                  batch_size=8, steps_per_epoch=2, test_sequences=16, sized_from=4),
    # The teacher as the MNIST `cpu` table trains IMFN (3,000 end-to-end steps
    # of batch 64 from the closed-form start); students 1,200 steps of 32.
    # From T=32 on, the teacher's tree is sized by its levels' work
    # (`mnist_sequence.sized_tree`, chosen on validation at T=32 and 64:
    # docs/tuning/tree_sizing.md); at T=16 it keeps the `cpu` table's tree,
    # a sweeper of width 2d per level (the narrow design was not tried there).
    "cpu": dict(lengths=(16, 32, 64), numbers_per_step=8, teacher_steps=3000,
                student_steps=1200, batch_size=32, steps_per_epoch=100, test_sequences=256,
                sized_from=32),
    # The source's shape, T=128 and d=1024: the teacher is the MNIST
    # `paper-cpu` table's IMFN (`teacher_preset`: that preset's tree, steps,
    # batch, seed and training digits, unchanged), scored on that table's 500
    # test sequences; students 1,200 steps of 32.
    "paper-cpu": dict(lengths=(128,), numbers_per_step=8, teacher_preset="paper-cpu",
                      student_steps=1200, batch_size=32, steps_per_epoch=50,
                      test_sequences=500),
    # What the tests run of `paper-cpu`'s code path: the MNIST `paper-smoke`
    # teacher (per-level widths, held-out digits), a few steps each.
    "paper-smoke": dict(lengths=(8,), numbers_per_step=8, teacher_preset="paper-smoke",
                        student_steps=4, batch_size=8, steps_per_epoch=2, test_sequences=8),
}


def teacher_config(config, length):
    """The MNIST `cpu` preset at length T and d = numbers_per_step * T, with
    the tree sized by its levels' work from T = `config["sized_from"]` on; or,
    where `config` names a `teacher_preset`, that MNIST preset unchanged."""
    dim = config["numbers_per_step"] * length
    if "teacher_preset" in config:
        tconfig = dict(mnist_sequence.PRESETS[config["teacher_preset"]])
        if (tconfig["sequence_length"], tconfig["memory_dim"]) != (length, dim):
            raise ValueError(
                f"The MNIST preset {config['teacher_preset']!r} trains T="
                f"{tconfig['sequence_length']}, d={tconfig['memory_dim']}; this online run "
                f"asks for T={length}, d={dim}: use its length, {tconfig['sequence_length']}.")
        if "teacher_steps" in config:  # --teacher-steps
            tconfig["end_to_end_steps"] = config["teacher_steps"]
        return tconfig
    tconfig = dict(mnist_sequence.PRESETS["cpu"], sequence_length=length, memory_dim=dim,
                   end_to_end_steps=config["teacher_steps"],
                   steps_per_epoch=min(config["steps_per_epoch"], config["teacher_steps"]))
    if sized(config, length):
        tconfig.update(mnist_sequence.sized_tree(length, dim))
    return tconfig


def sized(config, length):
    """Whether `config`'s teacher of length T has its tree sized by its levels' work."""
    return length >= config.get("sized_from", math.inf)


def length_config(config, length):
    """What a run of length T depends on: `config` less `sized_from` where
    it does not size T's teacher (so T=16 runs made before it stay valid)."""
    if sized(config, length):
        return config
    return {key: value for key, value in config.items() if key != "sized_from"}


def final_memories(model, x, batch_size=64):
    """The last-step memory `(n, d)` of `model` (an RNN or a trainer) on `x`."""
    return in_batches(model, x, batch_size)[:, -1]


def trajectories(model, x, batch_size=64):
    return in_batches(model, x, batch_size)


def decoded(teacher, memories, batch_size=64):
    return np.clip(in_batches(teacher.decode, memories, batch_size), 0.0, 1.0)


def step_seconds(cell, x, steps, repeats=5):
    """Median seconds of one `cell.step` at each step index in `steps` (1-based),
    measured side by side: the calls alternate between the indices."""
    states = cell.get_initial_state(batch_size=len(x))
    saved = {}
    for t in range(max(steps)):
        if t + 1 in steps:
            saved[t + 1] = states
        _, states = cell.step(x[:, t], states)
    times = {t: [] for t in steps}
    for t in steps:  # warm up
        keras.ops.convert_to_numpy(cell.step(x[:, t - 1], saved[t])[0])
    for _ in range(repeats):
        for t in steps:
            started = time.perf_counter()
            keras.ops.convert_to_numpy(cell.step(x[:, t - 1], saved[t])[0])
            times[t].append(time.perf_counter() - started)
    return {t: float(np.median(v)) for t, v in times.items()}


def train_teacher(length, config, train_digits, run, seed, log):
    """The teacher of length T, trained as the `cpu` table trains IMFN, or loaded."""
    tconfig = teacher_config(config, length)
    keras.utils.set_random_seed(seed)
    teacher = mnist_sequence.build_model("imfn", tconfig)
    seconds = run.trained(
        f"T{length}/teacher", f"T{length}-teacher.weights.h5", teacher,
        lambda timer: mnist_sequence.train_imfn(
            teacher, tconfig, train_digits, seed,
            checkpoint_dir=run.path(f"T{length}-teacher-backup"), callbacks=timer),
        log)
    return teacher, seconds


def student_for(teacher, variant, **overrides):
    options = dict(VARIANTS[variant], **overrides)
    student_args = {key: options[key] for key in ("path_rank", "hidden_dim", "num_blocks")
                    if key in options}
    if "hidden_fraction" in options:  # the MLP's width as a fraction of d
        student_args["hidden_dim"] = max(1, round(options["hidden_fraction"] * teacher.memory_dim))
    return IMFNStudent.from_teacher(teacher, inverse_path=options["inverse_path"],
                                    learn_inverses=options["learn_inverses"], **student_args)


def make_trainer(tree, variant, **overrides):
    """The variant's `DistillationTrainer` of `tree`, built (untrained);
    `overrides` replace entries of the variant's `VARIANTS` options."""
    trainer = DistillationTrainer(tree, student=student_for(tree, variant, **overrides),
                                  **TRAINER_ARGS)
    trainer(np.zeros((1, tree.sequence_length) + tree.feature_shape, "float32"))
    return trainer


def adapt_student(trainer, train_digits, seed=0):
    """Starts a path-map student in closed form (`DistillationTrainer.adapt`)
    on `ADAPT_SEQUENCES` training sequences, at least two per number of its memory."""
    count = max(ADAPT_SEQUENCES, 2 * trainer.teacher.memory_dim)
    x = mnist.sample_sequences(train_digits, trainer.teacher.sequence_length, count,
                               seed=ADAPT_SEED + seed)
    return trainer.adapt(x)


def compile_trainer(trainer):
    """Compiles a trainer as the students train (its weights files hold this
    optimizer's state)."""
    trainer.compile(optimizer=FusedAdam(1e-3, clipnorm=1.0))


def table_test_sequences(test_digits, length, config, seed=TEST_SEED):
    """The table's fixed test sequences of length T, of the test digits."""
    return mnist.sample_sequences(test_digits, length, config["test_sequences"], seed=seed)


def segment_teacher(teacher, variant):
    """The tree the variant's student follows: the teacher, or for a segmented
    variant the subtree of one segment."""
    segments = VARIANTS[variant].get("segments", 1)
    if segments == 1:
        return teacher
    return teacher.subtree(teacher.num_levels - (segments.bit_length() - 1))


def streamer_for(teacher, trainer, variant):
    """The variant's online model: its student, or the student in a `SegmentedCell`."""
    segments = VARIANTS[variant].get("segments", 1)
    if segments == 1:
        return trainer.student
    return SegmentedCell(teacher, trainer.student, teacher.padded_length // segments)


def train_student(teacher, variant, config, train_digits, run, seed, log):
    """A `DistillationTrainer` for `variant`, trained (or loaded); and its seconds.

    A segmented variant's trainer distils the subtree of one segment, on
    sequences of one segment's length."""
    tree = segment_teacher(teacher, variant)
    length = teacher.sequence_length
    keras.utils.set_random_seed(seed)
    trainer = make_trainer(tree, variant)
    if not VARIANTS[variant]["train"]:
        return trainer, 0.0
    per_epoch = min(config["steps_per_epoch"], config["student_steps"])
    data = mnist.MNISTSequences(train_digits, tree.sequence_length, config["batch_size"],
                                per_epoch, seed=seed)
    compile_trainer(trainer)
    callbacks = [DataEpochSync(data)]  # a resumed run redraws no batch
    if run.run_dir is not None:
        callbacks.append(keras.callbacks.BackupAndRestore(
            run.path(f"T{length}-{variant}-backup")))

    def train(timer):
        backup = run.path(f"T{length}-{variant}-backup")
        if VARIANTS[variant].get("adapt") and not (backup and os.path.isdir(backup)):
            # (a resumed fit's backup holds the fitted start and what followed)
            started = time.perf_counter()
            adapt_student(trainer, train_digits, seed)
            timer[0].record("adapt", time.perf_counter() - started)
        trainer.fit(data, epochs=-(-config["student_steps"] // per_epoch),
                    callbacks=timer + callbacks + [StopOnNonFiniteLoss(),
                                                   StopOnStalledTraining()],
                    verbose=0)

    seconds = run.trained(f"T{length}/{variant}/trained", f"T{length}-{variant}.weights.h5",
                          trainer, train, log)
    return trainer, seconds


def score_memories(teacher, memories, x):
    restored = decoded(teacher, memories)
    return mnist_sequence.score(x, restored), restored


def run_length(length, config, digits, run, seed=0, log=print, variants=None, train=True):
    """Every row for one sequence length T; returns (rows, examples, pending).

    With `train=False` nothing trains: the rows are those of the finished
    models in `run`, and `pending` names the keys still to train (all of
    them, and no rows, while the teacher is unfinished)."""
    padded = 1 << (length - 1).bit_length()  # the tree's leaves
    runnable = []
    for variant in variants or VARIANTS:
        segments = VARIANTS[variant].get("segments", 1)
        if segments > 1 and padded // segments < 2:
            log(f"T={length} {variant}: not run, {segments} segments of T={length} "
                "would be shorter than 2 steps")
        else:
            runnable.append(variant)
    variants = runnable
    pending = []
    if not train:  # each model's key in the run directory, and its weights file
        pending = [key for key, weights in [
            (f"T{length}/teacher", f"T{length}-teacher.weights.h5")] + [
            (f"T{length}/{v}/trained", f"T{length}-{v}.weights.h5")
            for v in variants if VARIANTS[v]["train"]] if not run.finished(key, weights)]
        if f"T{length}/teacher" in pending:
            return {}, {}, pending
        variants = [v for v in variants if f"T{length}/{v}/trained" not in pending]
    (train_digits, validation_digits, test_digits) = digits
    validation = mnist.sample_sequences(validation_digits, length, config["test_sequences"],
                                        seed=20_000)
    test = table_test_sequences(test_digits, length, config)
    teacher, teacher_seconds = train_teacher(length, config, train_digits, run, seed, log)
    cell = TreeMemoryCell(teacher)
    exact = keras.layers.RNN(cell, return_sequences=True)
    targets = {name: trajectories(teacher.trajectory, x)
               for name, x in (("validation", validation), ("test", test))}
    rows, examples = {}, {"original": test[0]}
    for name, model, seconds in [("teacher", None, teacher_seconds), ("exact cell", exact, 0.0)]:
        row = {"model": name, "state_numbers": cell.state_numbers if model else None,
               "train_seconds": seconds}
        for split, x in (("validation", validation), ("test", test)):
            memories = targets[split][:, -1] if model is None else final_memories(model, x)
            row[split], restored = score_memories(teacher, memories, x)
            if model is not None:
                row[split]["trajectory_error"] = per_step_error(
                    trajectories(model, x), targets[split])
        examples[name] = restored[0]
        rows[name] = row
    students = {}
    for variant in variants:
        trainer, seconds = train_student(teacher, variant, config, train_digits, run, seed, log)
        streamer = streamer_for(teacher, trainer, variant)
        online = keras.layers.RNN(streamer, return_sequences=True)
        row = {"model": f"student: {variant}", "state_numbers": sum(streamer.state_size),
               "train_seconds": seconds}
        for split, x in (("validation", validation), ("test", test)):
            predicted = trajectories(online, x)
            row[split], restored = score_memories(teacher, predicted[:, -1], x)
            row[split]["trajectory_error"] = per_step_error(predicted, targets[split])
        examples[row["model"]] = restored[0]
        rows[row["model"]] = row
        students[row["model"]] = streamer
        log(f"T={length} {variant}: validation MSE {row['validation']['mse']:.5f}, "
            f"test {row['test']['mse']:.5f} (teacher {rows['teacher']['test']['mse']:.5f})")
    for name, row in rows.items():
        for split in ("validation", "test"):
            row[split]["ratio"] = row[split]["mse"] / rows["teacher"][split]["mse"]
    # Streaming step time at t = 10 and t = T, side by side, one sequence batch.
    steps = sorted({min(10, length), length})
    for name, streamer in [("exact cell", cell)] + list(students.items()):
        rows[name]["step_seconds"] = {str(t): s for t, s in step_seconds(
            streamer, test[:8], steps).items()}
    references = mnist_sequence.reference_rows(
        train_digits, test, dict(memory_dim=teacher.memory_dim, sequence_length=length))
    for name, row in references.items():
        examples[name] = row.pop("examples")[0]
        rows[name] = {"model": name, "test": {k: row[k] for k in ("mse", "psnr", "ssim")},
                      "state_numbers": None, "train_seconds": 0.0}
        rows[name]["test"]["ratio"] = row["mse"] / rows["teacher"]["test"]["mse"]
    choose_students(rows)
    return rows, examples, pending


def choose_students(rows):
    """Marks `chosen_on_validation` on each row of `rows` (`{name: row}`): the
    student of least validation MSE of each state size (a wider state is
    another trade, so the students of `d + 1` numbers are chosen apart). A
    student whose validation error is not a number (it diverged) is never
    chosen."""
    students = [r for r in rows.values() if r["model"].startswith("student")
                and math.isfinite(r["validation"]["mse"])]
    chosen = [min((r for r in students if r["state_numbers"] == size),
                  key=lambda r: r["validation"]["mse"])
              for size in sorted({r["state_numbers"] for r in students})]
    for row in rows.values():
        row["chosen_on_validation"] = any(row is r for r in chosen)


def run(config, data_dir=None, run_dir=None, lengths=None, seed=0, log=print, variants=None,
        train=True):
    """The experiment over `lengths` (default: the preset's) and the students of
    `variants` (default: every one of `VARIANTS`); returns the results and pictures.

    `train=False` reports what `run_dir` holds and trains nothing: the rows
    of the finished models, the rest listed in the results' `pending` (a long
    run's partial outputs, to commit while it goes on)."""
    commit = git_commit()  # the code that runs, before it can change
    (train_digits, _), (test_digits, _), source = mnist.load_digits(data_dir, verbose=False)
    train_digits, validation_digits = mnist.split_validation(train_digits, HELD_OUT)
    digits = (train_digits, validation_digits, test_digits)
    results = {"config": dict(config, source=source), "lengths": {}, "pending": [],
               "commit": commit}
    pictures = {}
    for length in lengths or config["lengths"]:
        state = Run(None if run_dir is None else os.path.join(run_dir, f"T{length}"),
                    length_config(config, length), read_only=not train)
        rows, examples, pending = run_length(length, config, digits, state, seed, log,
                                             variants, train)
        results["pending"] += pending
        if rows:
            results["lengths"][str(length)] = rows
            pictures[length] = examples
    return results, pictures


def save_preset(config, run_dir, results_path, length, variant, directory, table):
    """Saves a finished run's teacher and student as a preset
    (`DistillationTrainer.save_to_preset`).

    The teacher of length `length` and the student of `variant` in the run
    directory `run_dir` (of `run` with this `config`) are written to
    `directory`, the metadata holding the configuration and the test seed
    (so `evaluate_preset` scores it on the same sequences), the rows its run
    scored (`results_path`, the JSON the run wrote, `--output`), and `table`
    (the committed table's JSON, relative to the repository, whose rows it
    reproduces). Only a student of one vector can be saved: a segmented
    variant streams in a `SegmentedCell`, not in its trainer. The untrained
    "inverse-path" is saved too: it has no weights file, its trainer is made
    from the teacher (its MLP correction starts at zero), as the run made it.

    Returns:
        The run's test rows, as the metadata's `metrics`: `teacher` and
        `student` (MSE, PSNR, SSIM) and the student's MSE `ratio` to the teacher's.
    """
    if variant not in STUDENTS:
        raise ValueError(
            f"Cannot save the variant {variant!r} as a preset: "
            + (f"a segmented student streams in a SegmentedCell (the teacher's top levels "
               f"over its segments), not in its trainer; one of {list(STUDENTS)} can be saved."
               if variant in VARIANTS else f"expected one of {list(STUDENTS)}."))
    presets.check_table(table)
    path = os.path.join(run_dir, f"T{length}")
    if not os.path.isdir(path):
        raise ValueError(f"{run_dir} holds no run of T={length}: train it first (same preset).")
    state = Run(path, length_config(config, length), read_only=True)
    name, trained = f"student: {variant}", VARIANTS[variant]["train"]
    # (its row in the results, its key in the run directory, its weights file)
    pieces = [("teacher", f"T{length}/teacher", state.path(f"T{length}-teacher.weights.h5"))]
    if trained:
        pieces.append((name, f"T{length}/{variant}/trained",
                       state.path(f"T{length}-{variant}.weights.h5")))
    for _, key, weights in pieces:
        if key not in state.rows or not os.path.isfile(weights):
            raise ValueError(f"{path} has no finished {key}: train it first (same preset).")
    if not os.path.isfile(results_path):
        raise ValueError(f"No results at {results_path}: give the JSON that the run of "
                         f"{run_dir} wrote when it finished (its --output).")
    with open(results_path) as f:
        results = json.load(f)
    ran = dict(results["config"])
    source = ran.pop("source", None)
    rows = results["lengths"].get(str(length), {})
    # The run directory's training seconds in the rows: the JSON of this run.
    if length_config(ran, length) != state.config or name not in rows or any(
            rows[row]["train_seconds"] != state.rows[key]["train_seconds"]
            for row, key, _ in pieces):
        raise ValueError(
            f"{results_path} is not the results of the run in {run_dir} with this preset "
            f"(its config {results['config']}, rows at T={length}: {sorted(rows)}): give "
            f"the --output, --preset and --variants of that run.")
    teacher = mnist_sequence.build_model("imfn", teacher_config(config, length))
    teacher.load_weights(pieces[0][2])
    keras.utils.set_random_seed(0)  # as the run made it (an untrained student's MLP)
    trainer = make_trainer(teacher, variant)
    if trained:
        compile_trainer(trainer)
        # The file holds the optimizer's state too: load it, not skip it.
        trainer.optimizer.build(trainer.trainable_variables)
        trainer.load_weights(pieces[1][2])
    metrics = {row: {k: rows[key]["test"][k] for k in ("mse", "psnr", "ssim")}
               for row, key in (("teacher", "teacher"), ("student", name))}
    metrics["ratio"] = rows[name]["test"]["ratio"]
    d, state_numbers = teacher.memory_dim, sum(trainer.student.state_size)
    trainer.save_to_preset(directory, metadata={
        "description": (
            f"Teacher and student of the online-memory table: MNIST digit sequences of "
            f"{length} digits (28 x 28, pixels in [0, 1]) in d = {d} numbers, {d // length} "
            f"per digit. The teacher is a TreeMemory; the student (IMFNStudent, "
            f"\"{variant}\": {STUDENTS[variant]}) reads a sequence one digit at a time on "
            f"a state of {state_numbers} numbers (its memory and a step counter): stream it "
            f"with keras.layers.RNN(trainer.student) or trainer.student.step, and decode "
            f"its memory with trainer.teacher.decode."),
        "data": ("MNIST digit sequences, each digit drawn at random from the training digits "
                 f"(less the last {HELD_OUT}, held out to choose a variant)"),
        "table": table,
        "table_row": name,
        "seed": 0,
        "experiment": {"driver": DRIVER, "config": config, "length": length,
                       "variant": variant, "test_seed": TEST_SEED, "source": source,
                       "backend": results["backend"], "commit": results.get("commit"),
                       "command": results["command"]},
        "metrics": metrics,
    })
    return metrics


def evaluate_preset(name_or_directory, data_dir=None, source="auto"):
    """Scores a preset of `save_preset` on its table's test sequences.

    Returns:
        `(scored, metadata)`: `scored` holds the `teacher` and `student` rows
        (MSE, PSNR, SSIM of the decoded final memory), the student's MSE
        `ratio` to the teacher's, the digits' `source`, the number of
        `test_sequences` and the seconds `from_preset` took (`load_seconds`);
        `metadata` the preset's (`metrics`: its run's rows, in the same
        form; `table`: the table it reproduces).
    """
    trainer, metadata, load_seconds = presets.load(
        name_or_directory, DRIVER, "the online-memory table", cls=DistillationTrainer)
    experiment = metadata["experiment"]
    _, (test_digits, _), used = mnist.load_digits(data_dir, source=source, verbose=False)
    test = table_test_sequences(test_digits, experiment["length"], experiment["config"],
                                experiment["test_seed"])
    teacher = trainer.teacher
    online = keras.layers.RNN(trainer.student, return_sequences=True)
    scored = {}
    for row, memories in (("teacher", final_memories(teacher.trajectory, test)),
                          ("student", final_memories(online, test))):
        scored[row], _ = score_memories(teacher, memories, test)
        scored[row].pop("per_sequence_std")
    scored["ratio"] = scored["student"]["mse"] / scored["teacher"]["mse"]
    return dict(scored, source=used, test_sequences=len(test),
                load_seconds=load_seconds), metadata


def results_table(results):
    """One table: per T, every row's test MSE, SSIM, ratio, state and costs."""
    rows = []
    for length, by_name in results["lengths"].items():
        for row in by_name.values():
            test = row["test"]
            times = row.get("step_seconds", {})
            step = [f"{times[k] * 1e3:.1f} ms" if k in times else "–"
                    for k in (str(min(10, int(length))), length)]
            name = row["model"] + (" (chosen)" if row.get("chosen_on_validation") else "")
            rows.append([length, name, f"{test['mse']:.5f}", f"{test['ssim']:.4f}",
                         f"{test['ratio']:.3f}", row["state_numbers"] or "–", *step,
                         f"{row['train_seconds']:.0f}"])
    return reporting.markdown_table(
        ["T", "model", "MSE", "SSIM", "/ teacher", "state (numbers)", "step at t=10",
         "step at t=T", "train s"], rows)


def save_png(path, results, pictures):
    """Per T, one labelled row of digits per model (the first test sequence)."""
    rows, labels = [], []
    for length, examples in pictures.items():
        by_name = results["lengths"][str(length)]
        for name, digits in examples.items():
            label = f"T={length} {name}"
            if name in by_name:
                label += f"\ntest MSE {by_name[name]['test']['mse']:.4f}"
            rows.append(digits)
            labels.append(label)
    reporting.save_rows_png(path, rows, labels)
