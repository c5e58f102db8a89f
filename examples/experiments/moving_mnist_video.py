"""Moving MNIST: clips compressed by a token-grid tree, with unlimited training data.

The UCF-101 table cannot tell whether learned sweepers beat a linear code:
with a handful of training videos every trained variant lost to the
hierarchical-PCA start on held-out clips. Moving MNIST (two digits bouncing
in a 64x64 frame, `keras_imfn.datasets.moving_mnist`) is generated without
limit, so here the tree trains on fresh sequences every epoch
(`MovingMNISTSequences`, training digits only) and is tabulated level by
level with `video_tree`, as the UCF-101 table is: against the untrained tree
(with linear-skip sweepers, a hierarchical PCA), equal-size PCA and the mean
frame of each group.

Digits: the training digits less the held-out ones
(`mnist.split_validation`: the validation digits, whose fixed seeded
clips choose the weights, the untrained start included); the test clips
are `moving_mnist.test_sequences` of the test digits (fixed and seeded: the
same on every machine). Clips are the first
`frames` frames of a sequence, gray, `(frames, 64, 64, 1)`.
"""

from keras_imfn.datasets import mnist
from keras_imfn.datasets import moving_mnist

from experiments import video_tree

PRESETS = {
    # Seconds: what the tests run.
    "smoke": dict(frames=4, size=64, patch_size=16, memory_dim=16, hidden_dim=32, num_blocks=1,
                  batch_size=4, steps_per_epoch=2, local_epochs=1, end_to_end_epochs=1,
                  sweeper_skip="linear", share_weights=False, adapt_clips=32,
                  validation_clips=8, test_clips=8),
    # The UCF-101 `cpu` tree (8x8 patches, 64 numbers per token, 16 frames)
    # on 2 CPU cores: 800 fresh sequences per epoch.
    "cpu": dict(frames=16, size=64, patch_size=8, memory_dim=64, hidden_dim=128, num_blocks=2,
                batch_size=8, steps_per_epoch=100, local_epochs=16, end_to_end_epochs=8,
                sweeper_skip="linear", share_weights=False, adapt_clips=512,
                validation_clips=128, test_clips=512),
}


def clips(digits, count, config, seed):
    """`count` Moving MNIST clips of `digits`, float32 `(count, frames, size, size, 1)`."""
    videos = moving_mnist.generate(digits, count, config["frames"], config["size"], seed=seed)
    return (videos.astype("float32") / 255.0)[..., None]


def run(config, data_dir=None, run_dir=None, seed=0, verbose=2):
    """Trains the tree on fresh training clips and tabulates the fixed test clips.

    Returns:
        `(results, model, test)`: results as in the example's JSON.
    """
    video_tree.check_config(config)
    (train_digits, _), (test_digits, _), source = mnist.load_digits(data_dir, verbose=False)
    train_digits, validation_digits = mnist.split_validation(train_digits)
    train = moving_mnist.MovingMNISTSequences(
        train_digits, config["batch_size"], config["steps_per_epoch"],
        num_frames=config["frames"], frame_size=config["size"], seed=seed, channel_axis=True)
    sample = clips(train_digits, config["adapt_clips"], config, seed=[seed, 1])
    validation = clips(validation_digits, config["validation_clips"], config, seed=[seed, 2])
    test = moving_mnist.test_sequences(test_digits, config["test_clips"], config["frames"],
                                       config["size"])[..., None]
    summary = {
        "source": source,
        "train": {"digits": len(train_digits), "fresh_clips_per_epoch":
                  config["batch_size"] * config["steps_per_epoch"], "sample_clips": len(sample)},
        "validation": {"digits": len(validation_digits), "clips": len(validation)},
        "test": {"digits": len(test_digits), "clips": len(test)},
    }
    results, model = video_tree.train_and_tabulate(config, train, validation, sample, test,
                                                   summary, run_dir, verbose)
    return results, model, test
