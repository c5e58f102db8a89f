"""Trained models as presets, in keras-hub's directory layout.

A preset is a directory of three files:

- `config.json`: the model's Keras config (`keras.saving.serialize_keras_object`),
  with the input shape it was built for (`build_config`), so that loading
  builds it before reading its weights;
- `model.weights.h5`: its weights (`save_weights`);
- `metadata.json`: the Keras and keras-imfn versions, the parameter count, the
  date, `memory_dim` and `sequence_length`, and the saver's own fields
  (description, data, the table row it reproduces, its metrics...).

The models are those that read sequences `(batch, T, *features)`: a
`TreeMemory`, or a `DistillationTrainer` (a teacher tree and its student).
The shipped presets are the directories of `keras_imfn/presets/` (package
data); every one that holds a `metadata.json` is a preset, named after its
directory. `TreeMemory.presets`, `TreeMemory.from_preset` and
`TreeMemory.save_to_preset` (and the same on `DistillationTrainer`) are the
public face of this module.
"""

import datetime
import json
from pathlib import Path

import keras

from keras_imfn.version import __version__

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
PRESET_FILES = (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE)
LAYOUT = (
    f"A preset directory holds {CONFIG_FILE} (the model's Keras config), {WEIGHTS_FILE} "
    f"(its weights) and {METADATA_FILE} (versions, parameter count, description); "
    "`save_to_preset(directory)` of a TreeMemory or a DistillationTrainer writes one."
)
# The shipped presets: package data beside the code.
PRESETS_ROOT = Path(__file__).resolve().parents[1] / "presets"
# Presets too large for the wheel, in a source checkout's presets/ (beside the
# package): they load by name there too, whatever the working directory.
CHECKOUT_PRESETS_ROOT = Path(__file__).resolve().parents[2] / "presets"


def find_presets(root=PRESETS_ROOT, cls=None):
    """The presets under `root`: `{name: metadata}`, sorted by name, one per
    subdirectory holding a `metadata.json`; with `cls`, those of that class
    only (the `class_name` of their `config.json`)."""
    found = {}
    for path in sorted(Path(root).glob(f"*/{METADATA_FILE}")):
        if cls is None or class_name(path.parent) == cls.__name__:
            found[path.parent.name] = read_json(path)
    return found


def class_name(directory):
    """The class a preset directory's `config.json` names (None if unreadable)."""
    try:
        return read_json(Path(directory) / CONFIG_FILE).get("class_name")
    except ValueError:
        return None


class ShippedPresets:
    """`TreeMemory.presets` (or another class's): the shipped presets of the
    owning class, `{name: metadata}`, read from the package's preset
    directories at each access."""

    def __get__(self, instance, owner):
        return find_presets(cls=owner)


def read_json(path):
    """The JSON object in the file at `path`, or an error naming the file."""
    try:
        content = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"The preset file {path} is not readable JSON: {error}") from error
    if not isinstance(content, dict):
        raise ValueError(
            f"The preset file {path} must hold a JSON object. Received: {type(content).__name__}"
        )
    return content


def preset_directory(name_or_directory, root=PRESETS_ROOT, cls=None):
    """The directory of the preset `name_or_directory`: a shipped preset's name
    (under `root`; of class `cls`, if given), a preset directory, or the name
    of a preset in the source checkout's presets/; checks it holds every
    preset file."""
    known = find_presets(root, cls)
    in_checkout = CHECKOUT_PRESETS_ROOT / str(name_or_directory)
    if str(name_or_directory) in known:
        directory = Path(root) / str(name_or_directory)
    elif Path(name_or_directory).is_dir():
        directory = Path(name_or_directory)
    elif (root == PRESETS_ROOT and (CHECKOUT_PRESETS_ROOT.parent / "pyproject.toml").is_file()
          and (in_checkout / METADATA_FILE).is_file()):
        directory = in_checkout  # a source checkout's (an installed package has none)
    else:
        names = ", ".join(known) or "none are shipped with this version"
        kind = f"{cls.__name__} " if cls is not None else ""
        raise ValueError(
            f"Unknown preset {str(name_or_directory)!r}: neither the name of a shipped "
            f"{kind}preset nor a directory. Known {kind}presets: {names} (the ones kept "
            f"out of the wheel, in a source checkout's presets/, load by name from that "
            f"checkout, or by their directory). {LAYOUT}"
        )
    missing = [name for name in PRESET_FILES if not (directory / name).is_file()]
    if missing:
        raise ValueError(f"The preset directory {directory} lacks {', '.join(missing)}. {LAYOUT}")
    return directory


def load_preset(cls, name_or_directory, load_weights=True, root=PRESETS_ROOT, **kwargs):
    """`cls.from_preset`: the model of a preset, built, with its weights; see
    `TreeMemory.from_preset`."""
    directory = preset_directory(name_or_directory, root, cls)
    config_path = directory / CONFIG_FILE
    config = read_json(config_path)
    read_json(directory / METADATA_FILE)
    if not isinstance(config.get("config"), dict) or "class_name" not in config:
        raise ValueError(
            f"{config_path} is not a serialized Keras object (a `class_name` and its "
            f"`config`). {LAYOUT}"
        )
    # Built below rather than by Keras, which only warns when a build fails.
    input_shape = (config.pop("build_config", None) or {}).get("input_shape")
    config["config"].update(kwargs)
    model = deserialize(config, f"Could not make a {cls.__name__} of {config_path}"
                               f"{f' with {kwargs}' if kwargs else ''}")
    if not isinstance(model, cls):
        raise ValueError(
            f"{config_path} holds a {type(model).__name__}, not a {cls.__name__}: "
            f"load it with its own class ({type(model).__name__}.from_preset)."
        )
    if not isinstance(input_shape, list) or len(input_shape) < 3:
        raise ValueError(
            f"{config_path} lacks the input shape the model was built for "
            f"(`build_config.input_shape`, `[null, T, *features]`), so its weights "
            f"cannot be loaded. {LAYOUT}"
        )
    length = getattr(model, "teacher", model).sequence_length
    try:
        model.build((None, length) + tuple(input_shape[2:]))
    except Exception as error:
        raise ValueError(
            f"Could not build the {cls.__name__} of {config_path} for steps of shape "
            f"{tuple(input_shape[2:])}: {error}"
        ) from error
    if load_weights:
        weights_path = directory / WEIGHTS_FILE
        try:
            model.load_weights(str(weights_path))
        except Exception as error:
            raise ValueError(
                f"Could not load the weights {weights_path} into the model of {config_path}: "
                f"{error}"
            ) from error
    return model


def deserialize(config, failure):
    """The object of a serialized Keras `config`, in safe mode; any error as a
    `ValueError` saying `failure` and why."""
    try:
        return keras.saving.deserialize_keras_object(config, safe_mode=True)
    except Exception as error:
        raise ValueError(f"{failure}: {error}") from error


def sequence_sizes(model):
    """`memory_dim`, `sequence_length` and `feature_shape` of a tree, or of a
    model holding one as its `teacher` (a `DistillationTrainer`)."""
    tree = getattr(model, "teacher", model)
    return {"memory_dim": tree.memory_dim, "sequence_length": tree.sequence_length,
            "feature_shape": tuple(tree.feature_shape)}


def save_preset(model, directory, metadata=None):
    """`TreeMemory.save_to_preset` (and `DistillationTrainer`'s): writes the
    preset files of the built `model`; see there."""
    metadata = dict(metadata or {})
    sizes = sequence_sizes(model)
    own = {
        "keras_version": keras.version(),
        "keras_imfn_version": __version__,
        "parameter_count": int(model.count_params()),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "memory_dim": sizes["memory_dim"],
        "sequence_length": sizes["sequence_length"],
    }
    clashing = sorted(set(metadata) & set(own))
    if clashing:
        raise ValueError(f"`metadata` may not set {clashing}: `save_to_preset` writes them itself.")
    try:
        metadata_text = json.dumps({**own, **metadata}, indent=2) + "\n"
    except TypeError as error:
        raise TypeError(
            f"`metadata` must hold JSON values (str, int, float, bool, None, lists, dicts): "
            f"{error}"
        ) from error
    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)  # a preset is a model, not a training run
    input_shape = [None, sizes["sequence_length"]] + list(sizes["feature_shape"])
    config["build_config"] = {"input_shape": input_shape}
    # The weights are saved from a copy loaded as `from_preset` will: it checks
    # that the config loads in safe mode, and, never compiled, it leaves the
    # optimizer's state out of the weights file.
    copy = deserialize(config, "This model cannot be a preset: its config does not load "
                               "back in Keras' safe mode, as `from_preset` reads it")
    copy.set_weights(model.get_weights())
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    copy.save_weights(str(directory / WEIGHTS_FILE), overwrite=True)
    (directory / METADATA_FILE).write_text(metadata_text)
