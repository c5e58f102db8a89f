"""Training losses on one device and distributed, side by side, as JSON.

Run as `python tests/distributed_losses.py BACKEND` in a fresh process: the
virtual devices must be configured before the backend starts, so
`tests/test_distribution.py` runs this in a subprocess.

- jax: 4 virtual CPU devices; `keras.distribution.DataParallel` over the 4
  and `ModelParallel` on a (2, 2) mesh laid out by `keras_imfn.distribution.
  layout_map`.
- tensorflow: 2 logical CPU devices; `tf.distribute.MirroredStrategy`.

Every model (a `TreeMemory`, a `DistillationTrainer`, the Transformer
baseline, and the tree again fed by a `keras.utils.PyDataset`, as the
streaming loaders are) starts from the same weights and trains 2 epochs of 2
batches of 16 sequences in each setting; prints `{setting: {model: [loss per epoch]}}`,
and under `ModelParallel` the variables laid out over the `model` axis,
`{"sharded": {model: [path, ...]}}`. `python tests/distributed_losses.py
BACKEND tree,trainer` runs only the models named; `--output PATH.json`
also writes the results there and a markdown table beside it.
"""

import json
import os
import sys

BACKEND = sys.argv[1]
# `--output PATH.json`: also write the results there, and a markdown table beside.
OUTPUT = sys.argv[sys.argv.index("--output") + 1] if "--output" in sys.argv else None
if OUTPUT is not None and not OUTPUT.endswith(".json"):
    raise SystemExit(f"--output takes a .json path; received {OUTPUT!r}")
os.environ["KERAS_BACKEND"] = BACKEND
if BACKEND == "jax":
    # 4 virtual devices (keeping the suite's compile-fast flags, tests/conftest.py).
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_force_host_platform_device_count=4").strip()
elif BACKEND == "tensorflow":
    import tensorflow as tf

    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
else:
    raise SystemExit(f"distributed_losses.py runs on jax or tensorflow; received {BACKEND!r}")

import contextlib  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_imfn import DistillationTrainer  # noqa: E402
from keras_imfn import TreeMemory  # noqa: E402
from keras_imfn.baselines import TransformerCompressor  # noqa: E402
from keras_imfn.distribution import layout_map  # noqa: E402

X = np.random.default_rng(0).random((32, 4, 6), dtype=np.float32)


def tree():
    return TreeMemory(memory_dim=16, sequence_length=4, leaf_hidden_dim=32, hidden_dim=32)


def trainer():
    teacher = tree()
    teacher(X[:1])
    return DistillationTrainer(teacher, pixel_loss_weight=0.1, one_step_loss_weight=0.5)


def transformer():
    return TransformerCompressor(memory_dim=16, sequence_length=4, embed_dim=16,
                                 num_layers=1, num_heads=2, mlp_dim=32)


class Batches(keras.utils.PyDataset):
    """`X` in batches of 16, in order: a `PyDataset`, as `ucf101.ClipStream` and
    `moving_mnist.MovingMNISTSequences` are, which Keras splits over the replicas."""

    def __len__(self):
        return len(X) // 16

    def __getitem__(self, index):
        return (X[index * 16 : (index + 1) * 16],)


MODELS = {"tree": tree, "trainer": trainer, "transformer": transformer,
          "tree from a PyDataset": tree}
if len(sys.argv) > 2 and not sys.argv[2].startswith("--"):
    MODELS = {name: MODELS[name] for name in sys.argv[2].split(",")}


def train(build, weights, scope, eager=False, stream=False):
    with scope:
        model = build()
        model(X[:1])
        model.set_weights(weights)
        # On TensorFlow a traced graph, not XLA: compiling the distributed
        # step with XLA cost minutes on 2 CPU cores and tests nothing more.
        # The one-device reference runs eagerly there: the same kernels,
        # without a second tracing of every model.
        model.compile(optimizer=keras.optimizers.Adam(1e-2),
                      jit_compile=BACKEND == "jax", run_eagerly=eager)
        if stream:
            history = model.fit(Batches(), epochs=2, shuffle=False, verbose=0)
        else:
            history = model.fit(X, epochs=2, batch_size=16, shuffle=False, verbose=0)
    return model, [float(loss) for loss in history.history["loss"]]


def sharded(model, axis="model"):
    """Paths of the variables whose JAX array is split over mesh axis `axis`."""
    return sorted(v.path for v in model.variables if axis in tuple(v.value.sharding.spec))


def main():
    results = {}
    if BACKEND == "tensorflow":
        # One strategy for the process, as a training script has one: with a
        # new MirroredStrategy per model, a later model's all-reduce met a
        # collective of the model before at the same instance key (TF 2.21).
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
    for name, build in MODELS.items():
        keras.utils.set_random_seed(1)
        model = build()
        model(X[:1])
        weights = model.get_weights()
        stream = name == "tree from a PyDataset"
        _, results.setdefault("one device", {})[name] = train(
            build, weights, contextlib.nullcontext(), eager=BACKEND == "tensorflow",
            stream=stream)
        if BACKEND == "jax":
            devices = keras.distribution.list_devices("cpu")
            assert len(devices) == 4, devices
            data_parallel = keras.distribution.DataParallel(devices=devices)
            mesh = keras.distribution.DeviceMesh((2, 2), ["batch", "model"], devices)
            model_parallel = keras.distribution.ModelParallel(
                layout_map=layout_map(mesh), batch_dim_name="batch"
            )
            for setting, distribution in [("DataParallel 4", data_parallel),
                                          ("ModelParallel 2x2", model_parallel)]:
                model, results.setdefault(setting, {})[name] = train(
                    build, weights, distribution.scope(), stream=stream)
            results.setdefault("sharded", {})[name] = sharded(model)
        else:
            _, results.setdefault("MirroredStrategy 2", {})[name] = train(
                build, weights, strategy.scope(), stream=stream)
    print(json.dumps(results))
    if OUTPUT:
        with open(OUTPUT, "w") as file:
            json.dump(dict(results, command=f"python tests/distributed_losses.py {BACKEND} "
                                              f"--output {OUTPUT}",
                           keras=keras.__version__), file, indent=2)
        with open(OUTPUT[: -len(".json")] + ".md", "w") as file:
            file.write(markdown(results))


def markdown(results):
    """Loss per epoch of every model in every setting, and the largest relative gap."""
    lines = ["| setting | model | epoch 1 loss | epoch 2 loss | largest gap to one device |",
             "| --- | --- | --- | --- | --- |"]
    one_device = results["one device"]
    for setting, losses in results.items():
        if setting == "sharded":
            continue
        for name, values in losses.items():
            gap = max(abs(a - b) / abs(b) for a, b in zip(values, one_device[name]))
            lines.append(f"| {setting} | {name} | {values[0]:.6f} | {values[1]:.6f} | "
                         f"{gap:.1e} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
