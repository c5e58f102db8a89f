"""The MNIST sequence experiment: T digits in one d-vector, and back.

Trains IMFN (`TreeMemory` with linear-skip sweepers started at PCA of the
training pairs, then a local and an end-to-end phase; the `imfn_local` row is
the tree before the end-to-end phase) and the Transformer, Mamba
and GRU compressors with the same number of steps and batch size, evaluates
all of them on the same fixed, seeded test sequences, and adds two reference
rows computed in the same run: the mean-image predictor and PCA keeping
`memory_dim / sequence_length` components per image (a linear code with the
same budget of numbers per image).

Averages: MSE is averaged over all test pixels; PSNR is `10 log10(1 / MSE)`
of that mean MSE (the source's definition); SSIM (Wang et al. 2004) is the
mean over test images. Each is then averaged over seeds, with the standard
deviation across seeds.

A run writes one JSON line per finished (model, seed) into `run_dir`
(`run_dir.Run`), with its example reconstructions beside it, and backs up
every model after each epoch, so an interrupted run loses at most an epoch
and still draws every model in its PNG.
"""

import copy
import math
import os

import keras
import numpy as np

from keras_imfn import DataEpochSync
from keras_imfn import FusedAdam
from keras_imfn import StopOnNonFiniteLoss
from keras_imfn import StopOnStalledTraining
from keras_imfn import TreeMemory
from keras_imfn import level_widths
from keras_imfn import metrics
from keras_imfn.baselines import GRUCompressor
from keras_imfn.baselines import MambaCompressor
from keras_imfn.baselines import TransformerCompressor
from keras_imfn.datasets import mnist
from keras_imfn.losses import SSIMLoss
from keras_imfn.pca import principal_components
from keras_imfn.training import train_local_then_end_to_end

from experiments import presets
from experiments import reporting
from experiments.evaluation import in_batches
from experiments.run_dir import EpochLosses
from experiments.run_dir import EpochSeconds
from experiments.run_dir import Run
from experiments.run_dir import git_commit

MODELS = ("imfn", "transformer", "mamba", "gru")


def sized_tree(length, dim):
    """IMFN's tree sized by its levels' work, for T=`length` and d=`dim`.

    The design chosen on validation (docs/tuning/tree_sizing.md): a sweeper
    per level, widths doubling up the tree from d/16 to d/2, one block, leaf
    MLPs of width d/2, no leaf loss end to end (no second pass of the leaf
    decoder), started by `adapt` with its leaves fitted too.
    """
    levels = math.ceil(math.log2(length))
    return dict(imfn_blocks=1, imfn_hidden_dim=level_widths(levels, dim // 16, dim // 2),
                imfn_leaf_hidden_dim=dim // 2, imfn_leaf_loss_weight=0.0, imfn_fit_leaves=True)


# IMFN at the source's shape: the sized tree (55.7M parameters), the source's
# pixel MSE only, on the training digits less the last 1,000 (held out for
# choices).
PAPER_IMFN = dict(sized_tree(128, 1024), ssim_loss_weight=0.0, validation_digits=1000)
# The baselines' Adam learning rates at the source's shape, chosen on the
# validation digits (docs/tuning/paper_cpu_baseline_lr.jsonl: 300 steps of the
# paper-cpu batch, 100 validation sequences): the Transformer collapsed at the
# default 1e-3 (worse than the mean image from its first 100 steps) and did best
# at 3e-4 after 100 steps of linear warm-up (1e-4 was slower); Mamba was level
# at 1e-3 and at 3e-4 with warm-up, and keeps the default.
PAPER_BASELINES = dict(transformer_learning_rate=3e-4, transformer_warmup_steps=100,
                       mamba_learning_rate=1e-3, mamba_warmup_steps=0)
# The rows of a table: the tree before and after its end-to-end phase, the
# baselines, then the references.
ROW_ORDER = ("imfn_local", "imfn", "transformer", "mamba", "gru", "mean_image", "pca")

PRESETS = {
    # A few minutes at most: what the tests run.
    "smoke": dict(
        sequence_length=4, memory_dim=32, batch_size=16, local_steps=4, end_to_end_steps=2,
        steps_per_epoch=2, test_sequences=16, seeds=1, imfn_blocks=1, ssim_loss_weight=0.1,
    ),
    # T=16, d=128 (8 numbers per image), 3,000 steps per model. IMFN spends
    # them all end to end from its closed-form start (on a validation split a
    # local phase of 600 steps cost more than it gave). On 2 CPU cores every
    # model takes minutes per seed, IMFN the fewest, Mamba the most (see
    # `train s` in docs/results.md): over two hours for the whole table, a
    # GPU job of minutes. Every model's pixel MSE gets `ssim_loss_weight` times
    # `1 - SSIM` added (see `compile_options`); the weight was chosen for IMFN
    # on the validation split and is applied to every model alike.
    "cpu": dict(
        sequence_length=16, memory_dim=128, batch_size=64, local_steps=0,
        end_to_end_steps=3000, steps_per_epoch=100, test_sequences=500, seeds=3,
        imfn_blocks=1, ssim_loss_weight=0.1,
    ),
    # The source's setting on 2 CPU cores: 128 digits in 1,024 numbers,
    # `PAPER_IMFN`, one seed, the same steps and batch for every model.
    # IMFN, the Transformer and Mamba take six to seven hours here
    # (benchmarks/results/mnist_table_cost_paper-cpu_jax.md); the GRU, a
    # sequential scan of 128 steps at this width, would take as long again
    # alone and is left out.
    "paper-cpu": dict(
        sequence_length=128, memory_dim=1024, batch_size=32, local_steps=0,
        end_to_end_steps=3000, steps_per_epoch=50, test_sequences=500, seeds=1, **PAPER_IMFN,
        **PAPER_BASELINES,
    ),
    # The published setting, for a GPU: the same models as `paper-cpu`, the
    # source's budget of steps and batch, three seeds.
    "paper": dict(
        sequence_length=128, memory_dim=1024, batch_size=64, local_steps=20000,
        end_to_end_steps=10000, steps_per_epoch=500, test_sequences=1000, seeds=3,
        **PAPER_IMFN, **PAPER_BASELINES,
    ),
    # The tree-sizing table's check of the preset at a small shape: what the
    # tests run of `paper-cpu`'s code path (per-level widths, no leaf loss,
    # held-out digits).
    "paper-smoke": dict(
        sequence_length=8, memory_dim=64, batch_size=8, local_steps=0, end_to_end_steps=4,
        steps_per_epoch=2, test_sequences=8, seeds=1, imfn_blocks=1,
        imfn_hidden_dim=level_widths(3, 8, 32), imfn_leaf_hidden_dim=32,
        imfn_leaf_loss_weight=0.0, imfn_fit_leaves=True, ssim_loss_weight=0.0,
        validation_digits=1000, transformer_learning_rate=1e-3, transformer_warmup_steps=2,
    ),
}
LEARNING_RATE = 1e-3
FINE_TUNE_LEARNING_RATE = 6e-4
# The decoder's last activation, per model. A sigmoid suits pixels in [0, 1],
# but on a validation split of the training digits (the last 1,000) the GRU
# compressor with a sigmoid output stayed at the mean image for the whole cpu
# budget (its output layer saturates before the memory is used), while with a
# linear output (clipped to [0, 1] when scored, like every model) it learns.
OUTPUT_ACTIVATIONS = {"imfn": "sigmoid", "transformer": "sigmoid", "mamba": "sigmoid",
                      "gru": None}
# Training sequences that `TreeMemory.adapt` fits the sweepers' PCAs to.
INIT_SEQUENCES = 2000
# The seed of every table's test sequences.
TEST_SEED = 10_000
# The script a preset's metadata names as the maker of its tree.
DRIVER = "examples/mnist_sequence.py"


def build_model(name, config, width=None, **options):
    """The model `name` of `MODELS` for a preset `config`, built.

    `width` sets a baseline's main width; by default it is the smallest
    multiple of 32 that gives the baseline at least IMFN's parameter count,
    so that a win cannot come from size. `options` override the model's
    own arguments (e.g. `output_activation`, or IMFN's `sweeper_skip`), for
    validation trials.
    """
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; expected one of {MODELS}.")
    length, dim = config["sequence_length"], config["memory_dim"]
    if name != "imfn" and width is None:
        target = build_model("imfn", config).count_params()
        width = _matched_width(name, config, target, options)
        return build_model(name, config, width, **options)
    args = dict(memory_dim=dim, sequence_length=length,
                output_activation=OUTPUT_ACTIVATIONS[name])
    if name == "imfn":
        model_class = TreeMemory
        args.update(num_blocks=config["imfn_blocks"], sweeper_skip="linear",
                    share_weights=config.get("imfn_share_weights", False),
                    hidden_dim=config.get("imfn_hidden_dim"),
                    leaf_hidden_dim=config.get("imfn_leaf_hidden_dim"),
                    leaf_loss_weight=config.get("imfn_leaf_loss_weight", 1.0))
    elif name == "transformer":
        model_class = TransformerCompressor
        args.update(embed_dim=width)
    elif name == "mamba":
        model_class = MambaCompressor
        args.update(model_dim=width)
    else:
        model_class = GRUCompressor
        args.update(embed_dim=width, hidden_dim=width)
    model = model_class(**{**args, **options})
    model(np.zeros((1, length, 28, 28), "float32"))
    return model


def _matched_width(name, config, target, options):
    """Smallest multiple of 32 whose `name` model has >= `target` parameters."""
    low, high = 0, 32
    while build_model(name, config, high, **options).count_params() < target:
        low, high = high, 2 * high
    while high - low > 32:
        middle = (low + high) // 64 * 32
        if build_model(name, config, middle, **options).count_params() < target:
            low = middle
        else:
            high = middle
    return high


def reconstruct_all(model, test, batch_size=100):
    """The model's reconstructions of `test`, clipped to [0, 1], as numpy."""
    return np.clip(in_batches(model, test, batch_size), 0.0, 1.0)


def score(test, restored):
    """MSE over all pixels, PSNR of that mean MSE, and mean SSIM per image;
    `per_sequence_std`: each one's standard deviation over the test
    sequences (PSNR of each sequence's MSE)."""
    errors = ((restored - test) ** 2).reshape(len(test), -1).mean(axis=1)
    mse = float(errors.mean())
    ssim = keras.ops.convert_to_numpy(metrics.ssim(test[..., None], restored[..., None]))
    ssim = np.asarray(ssim).reshape(len(test), -1).mean(axis=1)
    psnr = float(keras.ops.convert_to_numpy(metrics.psnr_of_mean_mse(mse)))
    sequence_psnr = 10 * np.log10(1.0 / np.maximum(errors, 1e-12))
    return {"mse": mse, "psnr": psnr, "ssim": float(np.mean(ssim)),
            "per_sequence_std": {"mse": float(errors.std()), "psnr": float(sequence_psnr.std()),
                                 "ssim": float(ssim.std())}}


def pca_reconstruction(train_digits, test, components):
    """Reconstructs every test image from its top `components` PCA coefficients."""
    flat = train_digits.reshape(len(train_digits), -1).astype("float64") / 255.0
    mean, basis = principal_components(flat, components)
    images = test.reshape(-1, flat.shape[1]) - mean
    return (images @ basis @ basis.T + mean).reshape(test.shape).astype("float32")


def reference_rows(train_digits, test, config):
    """The mean-image and equal-budget PCA rows."""
    mean_image = np.broadcast_to(train_digits.mean(axis=0) / 255.0, test.shape).astype("float32")
    components = max(1, config["memory_dim"] // config["sequence_length"])
    rows = {}
    for name, reconstruction in (
        ("mean_image", mean_image),
        ("pca", pca_reconstruction(train_digits, test, components)),
    ):
        rows[name] = dict(score(test, reconstruction),
                          params=0 if name == "mean_image" else components * 785,
                          train_seconds=0.0, examples=reconstruction[:1])
    return rows


def baseline_learning_rate(name, config):
    """A baseline's Adam learning rate for a preset: `<name>_learning_rate`
    (`LEARNING_RATE` where the preset sets none), reached by a linear warm-up
    over `<name>_warmup_steps` from 0 when the preset sets one, constant after.
    """
    rate = config.get(f"{name}_learning_rate", LEARNING_RATE)
    warmup = config.get(f"{name}_warmup_steps", 0)
    if not warmup:
        return rate
    # alpha=1: no decay after the warm-up.
    return keras.optimizers.schedules.CosineDecay(0.0, 1, alpha=1.0, warmup_target=rate,
                                                  warmup_steps=warmup)


def compile_options(config, learning_rate, structure=True):
    """`compile` arguments: Adam, plus the SSIM term when the preset has one.

    The models train on their own pixel MSE; with `ssim_loss_weight` w > 0,
    `w (1 - SSIM)` of the reconstruction is compiled on top (the data then
    yield `(x, x)`, see `MNISTSequences(targets=True)`). SSIM rewards sharp
    strokes, which a pixel MSE trades for blur. `structure=False` leaves it
    out (IMFN's local phase, whose losses are per level).
    """
    options = dict(optimizer=FusedAdam(learning_rate, clipnorm=1.0))
    if structure:
        options.update(structure_loss(config))
    return options


def structure_loss(config):
    """The preset's SSIM term as `compile` arguments (`{}` when its weight is 0)."""
    weight = config.get("ssim_loss_weight", 0.0)
    return dict(loss=SSIMLoss(channel_axis=None), loss_weights=float(weight)) if weight else {}


def compile_model(model, data, config, learning_rate, structure=True):
    """Compiles `model` with `compile_options`; `data` yields targets iff it needs them."""
    options = compile_options(config, learning_rate, structure)
    model.compile(**options)
    data.targets = "loss" in options  # (x, x) for the SSIM term


def train_and_evaluate(name, config, train_digits, test, seed, run=None):
    """Trains one model for one seed; returns result rows (IMFN gives two).

    With a `run` (`run_dir.Run`), every epoch is backed up there and a
    stopped model resumes from its last epoch, drawing the batches it would
    have drawn; `train_seconds` adds up the kept epochs of every session.
    """
    run = run or Run(None, config)
    keras.utils.set_random_seed(seed)
    model = build_model(name, config)
    steps = config["local_steps"] + config["end_to_end_steps"]
    per_epoch = config["steps_per_epoch"]
    timer = EpochSeconds(run.path(f"{name}-{seed}-seconds.json"))
    rows = {}
    if name == "imfn":
        def score_local():
            restored = reconstruct_all(model, test)
            rows["imfn_local"] = dict(score(test, restored), examples=restored[:1],
                                      train_seconds=timer.total())

        train_imfn(model, config, train_digits, seed, after_local=score_local,
                   checkpoint_dir=run.path(f"{name}-{seed}"), callbacks=[timer])
    else:
        options = compile_options(config, baseline_learning_rate(name, config))
        model.compile(**options)
        data = mnist.MNISTSequences(train_digits, config["sequence_length"],
                                    config["batch_size"], per_epoch, seed=seed,
                                    targets="loss" in options)  # (x, x) for the SSIM term
        callbacks = [DataEpochSync(data)]
        if run.run_dir is not None:
            # Kept after the last epoch: a stop before the row is saved loses nothing.
            callbacks.append(keras.callbacks.BackupAndRestore(
                run.path(f"{name}-{seed}-backup"), delete_checkpoint=False))
            # Each epoch's loss, over every session.
            callbacks.append(EpochLosses(run.path(f"{name}-{seed}-history.csv")))
        guards = [StopOnNonFiniteLoss(), StopOnStalledTraining()]
        model.fit(data, epochs=math.ceil(steps / per_epoch),
                  callbacks=[timer] + callbacks + guards, verbose=0)
    restored = reconstruct_all(model, test)
    rows[name] = dict(score(test, restored), examples=restored[:1],
                      train_seconds=timer.total())
    for row in rows.values():
        row.update(params=model.count_params(), commit=git_commit(),
                   backend=keras.backend.backend())
    return rows


def train_imfn(model, config, train_digits, seed, data=None, after_local=None,
               checkpoint_dir=None, callbacks=()):
    """Trains a `TreeMemory` as the table does: its closed-form start, the
    local phase (`local_steps`), then end to end (`end_to_end_steps`).

    Args:
        model: a `TreeMemory` from `build_model("imfn", config)`.
        config: a preset dict.
        train_digits: uint8 training digits.
        seed: the seed of the start's sequences and of the batches.
        data: optional `MNISTSequences` to train on (else made from the digits).
        after_local: optional callable run between the phases.
        checkpoint_dir: optional directory; each phase backs up every epoch
            there, so a stopped run resumes (see `train_local_then_end_to_end`).
        callbacks: further `fit` callbacks, for both phases.
    """
    per_epoch = config["steps_per_epoch"]
    if data is None:
        data = mnist.MNISTSequences(
            train_digits, config["sequence_length"], config["batch_size"], per_epoch, seed=seed
        )
    # Not a training step: sweepers start at PCA of the leaf pairs (of an
    # untrained leaf encoder unless the preset fits the leaves too). Seeded,
    # so a resumed run starts the same tree before restoring it.
    model.adapt(fit_leaves=config.get("imfn_fit_leaves", False), x=mnist.sample_sequences(
        train_digits, config["sequence_length"], INIT_SEQUENCES, seed=seed + 1_000_000
    ))

    # The local phase trains on the per-level losses alone; the end-to-end
    # phase adds the SSIM term, with the digits as its targets.
    recipe = dict(learning_rate=LEARNING_RATE, fine_tune_learning_rate=FINE_TUNE_LEARNING_RATE,
                  compile_kwargs={"end_to_end": structure_loss(config)},
                  inputs_as_targets=True, checkpoint_dir=checkpoint_dir, verbose=0,
                  callbacks=list(callbacks))
    local_epochs = math.ceil(config["local_steps"] / per_epoch)
    train_local_then_end_to_end(model, data, local_epochs, 0, **recipe)
    if after_local is not None:
        after_local()
    train_local_then_end_to_end(model, data, 0, math.ceil(config["end_to_end_steps"] / per_epoch),
                                data_epoch=local_epochs, **recipe)


def table_data(config, data_dir=None, source="auto"):
    """`(train_digits, test, source)` of a table: the training digits every
    model trains on (less the validation digits, if the preset holds some
    out), the fixed test sequences that score it, and where the digits came
    from (`mnist.load_digits`)."""
    (train_digits, _), (test_digits, _), used = mnist.load_digits(
        data_dir, source=source, verbose=False)
    if config.get("validation_digits"):  # the same training digits for every model
        train_digits, _ = mnist.split_validation(train_digits, config["validation_digits"])
    test = mnist.sample_sequences(
        test_digits, config["sequence_length"], config["test_sequences"], seed=TEST_SEED
    )
    return train_digits, test, used


def save_preset(config, run_dir, directory, table, seed=0):
    """Saves the tree a table trained as a preset (`TreeMemory.save_to_preset`).

    The tree of `imfn/{seed}` in the finished run directory `run_dir` (its
    end-to-end weights) is written to `directory`, its metadata holding the
    preset's configuration and test seed (so `evaluate_preset` scores it on
    the same split), the row its run scored, and `table` (the committed
    table's JSON, relative to the repository, whose per-seed row it
    reproduces).
    """
    presets.check_table(table)
    state = Run(run_dir, config, read_only=True)
    key = f"imfn/{seed}"
    if key not in state.rows:
        raise ValueError(f"{run_dir} has no finished {key}: train it first (same preset).")
    weights = os.path.join(state.path(f"imfn-{seed}"), "end_to_end.weights.h5")
    model = build_model("imfn", config)
    model.load_weights(weights)
    row = {name: state.rows[key]["imfn"][name] for name in ("mse", "psnr", "ssim")}
    T, d = config["sequence_length"], config["memory_dim"]
    model.save_to_preset(directory, metadata={
        "description": (f"IMFN tree of the MNIST sequence table: {T} digits (28 x 28, pixels "
                        f"in [0, 1]) in {d} numbers, {d // T} per digit."),
        "data": "MNIST digit sequences, each digit drawn at random from the training digits",
        "table": table,
        "table_row": "imfn",
        "seed": seed,
        "experiment": {"driver": DRIVER, "config": config,
                       "test_seed": TEST_SEED, "backend": state.rows[key]["imfn"]["backend"],
                       "commit": state.rows[key]["imfn"]["commit"]},
        "metrics": row,
    })
    return row


def evaluate_preset(name_or_directory, data_dir=None, source="auto"):
    """Scores a preset of `save_preset` on its table's test split.

    Returns:
        `(row, metadata)`: the preset's MSE / PSNR / SSIM (with the digits'
        `source` and the seconds `from_preset` took), and its metadata
        (`metrics`: its run's row, `table`: the table it reproduces).
    """
    tree, metadata, load_seconds = presets.load(name_or_directory, DRIVER,
                                                "the MNIST sequence table")
    _, test, used = table_data(metadata["experiment"]["config"], data_dir, source)
    row = score(test, reconstruct_all(tree, test))
    row.pop("per_sequence_std")
    return dict(row, source=used, test_sequences=len(test), load_seconds=load_seconds), metadata


def run(config, models=MODELS, data_dir=None, run_dir=None, log=print, train=True):
    """Runs the experiment; returns the results dict (see `summarise`).

    Args:
        config: a preset dict (see `PRESETS`), possibly edited.
        models: names from `MODELS`.
        data_dir: directory of MNIST IDX files (else Keras download or the
            embedded sample, see `keras_imfn.datasets.mnist`).
        run_dir: directory for per-(model, seed) results and per-epoch
            backups; a rerun with the same directory skips what finished
            and resumes the rest (`run_dir.Run`).
        log: where progress lines go.
        train: False reports what `run_dir` holds and trains nothing: the
            table of the finished models, the others listed as `pending`
            (a long run's partial outputs, to commit while it goes on).
    """
    for name in models:
        if name not in MODELS:
            raise ValueError(f"Unknown model {name!r}; expected names from {MODELS}.")
    train_digits, test, source = table_data(config, data_dir)
    log(f"MNIST from {source}")
    state = Run(run_dir, config, read_only=not train)
    per_seed, examples, pending = {}, {}, []
    for seed in range(config["seeds"]):
        for name in models:
            key = f"{name}/{seed}"
            if key not in state.rows and not train:
                pending.append(key)
                continue
            if key not in state.rows:
                rows = train_and_evaluate(name, config, train_digits, test, seed, state)
                fresh = {row_name: row.pop("examples") for row_name, row in rows.items()}
                state.save_arrays(key, fresh)
                state.save_row(key, rows)
                examples.update(fresh)
            else:
                examples.update(state.load_arrays(key))
            for row_name, row in state.rows[key].items():
                per_seed.setdefault(row_name, []).append(row)
                log(f"seed {seed} {row_name:12s} MSE {row['mse']:.5f} PSNR {row['psnr']:.2f} "
                    f"SSIM {row['ssim']:.4f} params {row['params']:,} "
                    f"({row['train_seconds']:.0f} s)")
    for name, row in reference_rows(train_digits, test, config).items():
        examples[name] = row.pop("examples")
        per_seed[name] = [row]
    results = {"config": dict(config, models=list(models), source=source),
               "models": summarise(per_seed), "pending": pending}
    return _with_objectives(results), test[:2], examples


def _with_objectives(results):
    """Names the training loss of every row, as `results["models"][name]["loss"]`.

    Runs from before the SSIM term existed trained on the pixel MSE alone.
    `imfn_local` is the tree after its local phase (per-level losses), or its
    closed-form start when that phase has no steps; reference rows are not
    trained.
    """
    config = results["config"]
    weight = config.get("ssim_loss_weight", 0.0)
    trained = f"MSE + {weight:g} (1 - SSIM)" if weight else "MSE"
    untrained = "–"
    for name, row in results["models"].items():
        if name in ("pca", "mean_image"):
            loss = untrained
        elif name == "imfn_local":
            loss = "local losses" if config.get("local_steps") else untrained
        else:
            loss = trained
        row.setdefault("loss", loss)
    return results


def summarise(per_seed):
    """Mean and std over seeds of every metric, per model, and each seed's value."""
    summary = {}
    for name, rows in per_seed.items():
        entry = {}
        for metric in ("mse", "psnr", "ssim"):
            values = np.array([row[metric] for row in rows])
            entry[metric] = {"mean": float(values.mean()), "std": float(values.std()),
                             "per_seed": [float(v) for v in values]}
        entry["params"] = int(rows[0]["params"])
        entry["train_seconds"] = float(np.mean([row["train_seconds"] for row in rows]))
        entry["seeds"] = len(rows)
        if all("per_sequence_std" in row for row in rows):  # spread over the test sequences
            entry["per_sequence_std"] = {
                metric: float(np.mean([row["per_sequence_std"][metric] for row in rows]))
                for metric in ("mse", "psnr", "ssim")}
        for key in ("commit", "backend"):  # where and with what code each row ran
            values = sorted({str(row[key]) for row in rows if row.get(key)})
            if values:
                entry[key + "s"] = values
        summary[name] = entry
    return summary


# Settings that must agree for rows of different runs to share one table.
# `steps` is every model's training length; how IMFN splits it into a local
# and an end-to-end phase is IMFN's own recipe.
_COMPARABLE = ("sequence_length", "memory_dim", "batch_size", "steps", "steps_per_epoch",
               "test_sequences", "seeds")


def _comparable(config):
    config = dict(config, steps=config["local_steps"] + config["end_to_end_steps"])
    return {key: config.get(key) for key in _COMPARABLE}


def combine(runs):
    """One table from several runs' results (e.g. baselines run on a GPU, IMFN here).

    A model in a later run replaces the same model of an earlier one; rows
    come in the order of `ROW_ORDER` (others after them). The runs must
    share every setting in `_COMPARABLE` (the same test sequences, training
    steps and batch size), else it is an error.

    Args:
        runs: results dicts as written by `examples/mnist_sequence.py`.
    """
    if not runs:
        raise ValueError("`combine` needs at least one results dict.")
    first = _comparable(runs[0]["config"])
    models, commands = {}, []
    for results in runs:
        config = _comparable(results["config"])
        differing = [key for key in _COMPARABLE if config[key] != first[key]]
        if differing:
            raise ValueError(
                "Runs with different settings cannot share a table: "
                + ", ".join(f"{k}={first[k]} vs {config[k]}" for k in differing)
            )
        models.update(_with_objectives(copy.deepcopy(results))["models"])
        commands.append({"command": results.get("command"), "backend": results.get("backend"),
                         "models": list(results["models"])})
    rank = {name: i for i, name in enumerate(ROW_ORDER)}
    ordered = sorted(models, key=lambda name: rank.get(name, len(rank)))
    return {"config": first, "models": {name: models[name] for name in ordered},
            "runs": commands}


def results_table(results):
    """`Model | MSE ± std | PSNR ± std | SSIM ± std | Params` over seeds (over
    the test sequences when every trained row has one seed).

    Plus the training time per seed and each model's training loss (the
    reference rows are not trained: `–`).
    """
    rows = results["models"]
    over_sequences = all(row.get("seeds", 1) == 1 and "per_sequence_std" in row
                         for name, row in rows.items() if name not in ("pca", "mean_image"))

    def cell(row, metric, digits):
        spread = row[metric]["std"]
        if over_sequences and "per_sequence_std" in row:
            spread = row["per_sequence_std"][metric]
        return f"{row[metric]['mean']:.{digits}f} ± {spread:.{digits}f}"

    spread = "std over test sequences" if over_sequences else "std"
    return reporting.markdown_table(
        ["Model", f"MSE ± {spread}", "PSNR ± std", "SSIM ± std", "Params", "train s", "loss"],
        [[name, cell(row, "mse", 6), cell(row, "psnr", 2), cell(row, "ssim", 4),
          f"{row['params']:,}", f"{row['train_seconds']:.0f}", row.get("loss", "–")]
         for name, row in rows.items()],
    )


def row_label(name, models, original, row):
    """The label of one row of digits: the model, its test scores in `models`
    (a results table's `models`), and its error on this row's sequence."""
    if name == "original":
        return "original\n(first test sequence)"
    scores = models[name]
    seeds = f" ({scores['seeds']} seeds)" if scores.get("seeds", 1) > 1 else ""
    return (f"{name}: MSE {scores['mse']['mean']:.4f}, PSNR {scores['psnr']['mean']:.2f} dB"
            f"{seeds}\nthis sequence: MSE {reporting.row_mse(original, row):.4f}")


# Digits per row of a picture: a longer sequence wraps over several rows.
PICTURE_WIDTH = 32


def save_reconstructions_png(path, originals, examples, results):
    """One labelled row of digits per model under the originals (the first
    test sequence); a sequence longer than `PICTURE_WIDTH` wraps, each of its
    rows labelled with its steps. Returns the row names, top to bottom."""
    names = ["original"] + list(examples)
    rows = [originals[0]] + [examples[name][0] for name in examples]
    labels = [row_label(name, results["models"], rows[0], row)
              for name, row in zip(names, rows)]
    if len(rows[0]) > PICTURE_WIDTH:
        parts, part_labels = [], []
        for row, label in zip(rows, labels):
            for start in range(0, len(row), PICTURE_WIDTH):
                end = min(start + PICTURE_WIDTH, len(row))
                parts.append(row[start:end])
                part_labels.append(f"{label}\nsteps {start + 1}-{end}" if start == 0 else
                                   f"{label.splitlines()[0].split(':')[0]}, steps {start + 1}-{end}")
        rows, labels = parts, part_labels
    reporting.save_rows_png(path, rows, labels, header="step t")
    return names
