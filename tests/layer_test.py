"""A shared test of the Keras layer contract, in the spirit of keras-hub's
`run_layer_test`: config round trip, symbolic call, eager call, output
shapes, one `fit` step that changes the weights, and a `.keras` round trip
with identical outputs."""

import copy

import keras
import numpy as np

from conftest import to_numpy


def _shapes(structure):
    return [tuple(t.shape) for t in keras.tree.flatten(structure)]


def run_layer_test(make_layer, input_data, expected_output_shape, tmp_path):
    """Checks one layer.

    Args:
        make_layer: callable returning a fresh layer.
        input_data: numpy array or list of arrays (with a batch axis).
        expected_output_shape: shape or list of shapes, batch included.
        tmp_path: a directory for the saved model.
    """
    layer = make_layer()

    # Config round trip: from_config(get_config()) gives the same config.
    config = layer.get_config()
    restored = layer.__class__.from_config(copy.deepcopy(config))
    assert restored.get_config() == config

    # Symbolic call with keras.Input: shapes with an unknown batch.
    inputs = keras.tree.map_structure(lambda a: keras.Input(a.shape[1:]), input_data)
    symbolic = layer(inputs)
    wanted = _flat_shapes(expected_output_shape)
    assert _shapes(symbolic) == [(None,) + want[1:] for want in wanted]

    # Eager call: concrete shapes and finite values.
    eager = to_numpy(layer(input_data))
    assert _shapes(eager) == wanted
    assert all(np.isfinite(a).all() for a in keras.tree.flatten(eager))

    # One fit step through a functional model changes the trainable weights.
    model = keras.Model(inputs, symbolic)
    before = [np.array(w) for w in to_numpy(model.trainable_weights)]
    assert before, "a trainable layer must have trainable weights"
    rng = np.random.default_rng(1)
    targets = keras.tree.map_structure(lambda a: rng.random(a.shape).astype("float32"), eager)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    batch_size = len(keras.tree.flatten(input_data)[0])
    model.fit(input_data, targets, epochs=1, batch_size=batch_size, verbose=0)
    after = to_numpy(model.trainable_weights)
    assert any(not np.allclose(a, b) for a, b in zip(before, after))

    # .keras round trip (default safe mode) gives identical outputs.
    path = str(tmp_path / "layer.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    outputs = keras.tree.flatten(to_numpy(model(input_data)))
    reloaded = keras.tree.flatten(to_numpy(loaded(input_data)))
    for a, b in zip(outputs, reloaded):
        np.testing.assert_allclose(a, b, atol=1e-6)


def _flat_shapes(shapes):
    if isinstance(shapes, list):
        return [tuple(s) for s in shapes]
    return [tuple(shapes)]
