"""Moving MNIST prediction: the next frames from a memory of the first ones.

The predictive memory (`keras_imfn.TreePredictor`): a token-grid tree over
`context` frames (the video tree of `video_tree.build_tree`, started as a
hierarchical PCA of training contexts) encodes the context into its root;
one residual update of that memory gives the memory of the future; the same
tree decodes it; trained with its tree (`tree`) or with the adapted tree
held fixed (`tree-frozen`, only the update learns). Beside it, at the same parameter count (each baseline's
width chosen so its count is the nearest to the tree predictor's) and the
same training steps and batches: `ConvLSTMPredictor` (the keras.io
next-frame model), `GRUPredictor`, `TransformerPredictor`, and the
copy-last-frame reference (the last context frame, repeated).

Data as `moving_mnist_video`: fresh training clips every epoch from the
training digits less the held-out ones (`mnist.split_validation`);
fixed seeded validation clips of those held-out digits choose each model's
epoch (the untrained start included); the test clips are
`moving_mnist.test_sequences` of the test digits (fixed and seeded), each
`context + future` frames long.

Metrics as OpenSTL reports them: MSE and MAE summed over the pixels of a
frame, averaged over the predicted frames and the test sequences, and SSIM
per frame averaged the same way; and the MSE per future frame.
"""

import numpy as np

import keras

from keras_imfn import DataEpochSync
from keras_imfn import FusedAdam
from keras_imfn import KeepBestWeights
from keras_imfn import TreePredictor
from keras_imfn import metrics
from keras_imfn.baselines import ConvLSTMPredictor
from keras_imfn.baselines import GRUPredictor
from keras_imfn.baselines import TransformerPredictor
from keras_imfn.datasets import mnist
from keras_imfn.datasets import moving_mnist

from experiments import moving_mnist_video
from experiments import video_tree
from experiments.evaluation import batches
from experiments.run_dir import Run

# The tree predictor trains its tree with the update (`tree`), or only the
# update on the adapted tree, held fixed (`tree-frozen`): both counted whole.
MODELS = ("tree", "tree-frozen", "convlstm", "gru", "transformer")
PRESETS = {
    # Seconds: what the tests run.
    "smoke": dict(context=2, future=2, size=32, patch_size=8, memory_dim=16, hidden_dim=32,
                  num_blocks=1, share_weights=True, batch_size=4, steps_per_epoch=2, epochs=1,
                  adapt_clips=16, validation_clips=8, test_clips=8),
    # On 2 CPU cores (about an hour on TensorFlow; ConvLSTM2D is the slow one,
    # and much slower on JAX's CPU convolutions): every model the same 1,500
    # steps of 16 fresh sequences, the baselines sized like the tree predictor.
    "cpu": dict(context=10, future=10, size=64, patch_size=8, memory_dim=64, hidden_dim=64,
                num_blocks=1, share_weights=True, batch_size=16, steps_per_epoch=100, epochs=15,
                adapt_clips=512, validation_clips=128, test_clips=512),
}
# The widths searched to size each baseline like the tree predictor.
WIDTHS = {
    "convlstm": lambda c, w: ConvLSTMPredictor(c["context"], c["future"], filters=w),
    "gru": lambda c, w: GRUPredictor(c["context"], c["future"], embed_dim=w, hidden_dim=w),
    "transformer": lambda c, w: TransformerPredictor(c["context"], c["future"],
                                                     embed_dim=4 * w, num_heads=4),
}


def clips(digits, count, config, seed):
    """`count` clips of `context + future` frames, float32 `(count, frames, size, size, 1)`."""
    frames = config["context"] + config["future"]
    return moving_mnist_video.clips(digits, count, dict(config, frames=frames), seed)


class ContextAndFuture(keras.utils.PyDataset):
    """`(context, future)` batches of fresh training clips (a `MovingMNISTSequences`)."""

    def __init__(self, sequences, context):
        super().__init__()
        self.sequences, self.context = sequences, context

    def __len__(self):
        return len(self.sequences)

    def __getitem__(self, index):
        x = self.sequences[index][0]
        return x[:, : self.context], x[:, self.context :]

    def on_epoch_end(self):
        self.sequences.on_epoch_end()


def tree_predictor(config, sample):
    """The tree predictor, its tree started from training contexts `sample`."""
    tree = video_tree.build_tree(dict(config, frames=config["context"], sweeper_skip="linear"),
                                 sample[:, : config["context"]])
    return TreePredictor(tree, num_blocks=config["num_blocks"])


def params(name, config, width, frame_shape):
    model = WIDTHS[name](config, width)
    model.build((None, config["context"]) + tuple(frame_shape))
    return model.count_params()


def width_for(name, config, target, frame_shape):
    """The width (of `WIDTHS`) at which baseline `name` has the parameter count
    nearest `target`: counts grow with the width, so the search stops once
    they move away."""
    best = None
    for width in range(2, 257, 2):
        gap = abs(params(name, config, width, frame_shape) - target)
        if best is not None and gap > best[0]:
            break
        best = (gap, width)
    return best[1]


def predictions(model, context, batch_size=16):
    parts = [np.clip(keras.ops.convert_to_numpy(model(part)), 0.0, 1.0)
             for part in batches(context, batch_size)]
    return np.concatenate(parts)


def copy_last(context, future_frames):
    return np.repeat(context[:, -1:], future_frames, axis=1)


def scores(future, predicted):
    """OpenSTL's metrics: per-frame sums over pixels, then means; SSIM per frame."""
    error = predicted.astype("float64") - future
    pixel_axes = tuple(range(2, future.ndim))
    per_frame_mse = (error**2).sum(axis=pixel_axes)
    ssim = np.concatenate([keras.ops.convert_to_numpy(metrics.ssim(f, p))
                           for f, p in zip(batches(future, 64), batches(predicted, 64))])
    return {
        "mse_per_frame": float(per_frame_mse.mean()),
        "mae_per_frame": float(np.abs(error).sum(axis=pixel_axes).mean()),
        "ssim": float(ssim.mean()),
        "mse_per_frame_by_step": per_frame_mse.mean(axis=0).tolist(),
    }


def validation_score(validation, context):
    """Minus the validation MSE per frame (higher is better)."""
    return lambda model: -float(
        ((predictions(model, validation[:, :context]) - validation[:, context:]) ** 2)
        .sum(axis=(2, 3, 4)).mean())


def train(name, model, config, train_digits, validation, run, seed, log):
    """Trains `model` for the preset's steps (or loads it); returns its record."""
    sequences = moving_mnist.MovingMNISTSequences(
        train_digits, config["batch_size"], config["steps_per_epoch"],
        num_frames=config["context"] + config["future"], frame_size=config["size"], seed=seed,
        channel_axis=True)
    data = ContextAndFuture(sequences, config["context"])
    model.compile(optimizer=FusedAdam(1e-3, clipnorm=1.0))
    best = KeepBestWeights(validation_score(validation, config["context"]),
                           path=run.path(f"{name}-best"))
    callbacks = [DataEpochSync(sequences), best]  # a resumed run redraws no batch
    if run.run_dir is not None:
        callbacks.append(keras.callbacks.BackupAndRestore(run.path(f"{name}-backup")))

    def fit(timer):
        best.score_start(model)
        model.fit(data, epochs=config["epochs"], callbacks=timer + callbacks, verbose=0)
        best.restore_best(model)

    seconds = run.trained(f"{name}/trained", f"{name}.weights.h5", model, fit, log)
    if f"{name}/selected" not in run.rows:
        run.save_row(f"{name}/selected", {"selected": best.best_at, "score": best.best_score})
    return {"train_seconds": seconds, "validation": run.rows[f"{name}/selected"]}


def run(config, data_dir=None, run_dir=None, seed=0, models=MODELS, log=print):
    """Trains every model and scores the fixed test clips.

    Returns:
        `(results, examples)`: results as in the example's JSON; examples the
        first test clip and every row's prediction of it, for the strip.
    """
    if config["future"] != config["context"]:
        raise ValueError("The tree predictor decodes as many frames as its tree reads: "
                         f"`future` must equal `context`. Received context={config['context']}"
                         f", future={config['future']}")
    (train_digits, _), (test_digits, _), source = mnist.load_digits(data_dir, verbose=False)
    train_digits, validation_digits = mnist.split_validation(train_digits)
    context, frames = config["context"], config["context"] + config["future"]
    sample = clips(train_digits, config["adapt_clips"], config, seed=[seed, 1])
    validation = clips(validation_digits, config["validation_clips"], config, seed=[seed, 2])
    test = moving_mnist.test_sequences(test_digits, config["test_clips"], frames,
                                       config["size"])[..., None]
    run_state = Run(run_dir, config)
    keras.utils.set_random_seed(seed)
    tree = tree_predictor(config, sample)
    frame_shape = test.shape[2:]
    tree.build((None, context) + frame_shape)
    rows, examples = {}, {"clip": test[0]}
    for name in models:
        keras.utils.set_random_seed(seed)
        if name == "tree":
            model = tree
        elif name == "tree-frozen":
            model = tree_predictor(config, sample)  # the same start as `tree`
            model.tree.trainable = False
        else:
            model = WIDTHS[name](config, width_for(name, config, tree.count_params(),
                                                   frame_shape))
        if not model.built:
            model.build((None, context) + frame_shape)
        record = train(name, model, config, train_digits, validation, run_state, seed, log)
        predicted = predictions(model, test[:, :context])
        rows[name] = dict(scores(test[:, context:], predicted), params=model.count_params(),
                          steps=config["epochs"] * config["steps_per_epoch"],
                          batch_size=config["batch_size"], **record)
        examples[name] = predicted[0]
        log(f"{name}: {rows[name]['mse_per_frame']:.1f} MSE per frame")
    rows["copy_last"] = dict(scores(test[:, context:], copy_last(test[:, :context],
                                                                 config["future"])),
                             params=0, steps=0)
    results = {
        "config": dict(config),
        "data": {"source": source, "train_digits": len(train_digits),
                 "validation": {"digits": len(validation_digits), "clips": len(validation)},
                 "test": {"digits": len(test_digits), "clips": len(test)},
                 "fresh_clips_per_epoch": config["batch_size"] * config["steps_per_epoch"]},
        "rows": rows,
    }
    return results, examples


LABELS = {"tree": "tree predictor (IMFN)", "tree-frozen": "tree predictor, tree fixed",
          "convlstm": "ConvLSTM", "gru": "GRU",
          "transformer": "Transformer", "copy_last": "copy last frame"}


def results_table(results):
    from experiments import reporting

    rows = []
    for name, row in sorted(results["rows"].items(), key=lambda kv: kv[1]["mse_per_frame"]):
        rows.append([LABELS[name], f"{row['mse_per_frame']:.1f}", f"{row['mae_per_frame']:.1f}",
                     f"{row['ssim']:.3f}", f"{row['params']:,}",
                     f"{row['steps']:,} x {row.get('batch_size', 0)}" if row["steps"] else "–",
                     f"{row['train_seconds']:.0f}" if "train_seconds" in row else "–"])
    return reporting.markdown_table(
        ["Model", "MSE / frame", "MAE / frame", "SSIM", "Params", "Steps x batch",
         "Train s"], rows)


def save_strip(path, results, examples, context):
    """Context frames, the true future and every model's prediction, labelled."""
    from experiments import reporting

    clip = examples["clip"]
    rows = [clip[:context], clip[context:]]
    labels = ["context", "true future"]
    for name in (n for n in MODELS if n in examples):
        rows.append(examples[name])
        labels.append(f"{LABELS[name]}\n{results['rows'][name]['mse_per_frame']:.1f} MSE/frame")
    rows.append(copy_last(clip[None, :context], len(clip) - context)[0])
    labels.append(f"{LABELS['copy_last']}\n{results['rows']['copy_last']['mse_per_frame']:.1f}"
                  " MSE/frame")
    reporting.save_rows_png(path, rows, labels, header="frame")
