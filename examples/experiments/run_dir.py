"""The one run directory of every experiment: resumable, refusing a mixed table.

A run directory holds the run's configuration (`config.json`), one JSON line
per finished piece of work (`finished.jsonl`: a key and its row), and the
files each piece writes (weights, example reconstructions, per-epoch
backups). A rerun with the same directory skips every finished key and
resumes an unfinished model from its last epoch's backup; a directory of
another configuration is refused from the start, before any of its
backups could be resumed.
"""

import csv
import json
import os
import subprocess
import time

import keras
import numpy as np


class Run:
    """A resumable run directory (`None`: a run that keeps nothing).

    Args:
        run_dir: the directory, made if missing; or None.
        config: the run's configuration (JSON-able); must equal the one a
            directory already holds.
        read_only: only read what the directory holds (a report while the
            run goes on): nothing is made or written, and a last line that
            the run is still writing is not read.
    """

    def __init__(self, run_dir, config, read_only=False):
        self.run_dir = run_dir
        self.config = json.loads(json.dumps(config))
        self.read_only = read_only
        self.rows = {}
        if run_dir is None:
            return
        config_path = os.path.join(run_dir, "config.json")
        if os.path.exists(config_path):
            with open(config_path) as f:
                text = f.read()
            if text or not read_only:  # empty: being written by the run
                self._check(json.loads(text))
        if os.path.exists(self._rows_path()):
            with open(self._rows_path()) as f:
                for line in f:
                    if read_only and not line.endswith("\n"):
                        break  # being appended
                    entry = json.loads(line)
                    self._check(entry["config"])
                    self.rows[entry["key"]] = entry["row"]
        if read_only:
            return
        os.makedirs(run_dir, exist_ok=True)
        with open(config_path + ".tmp", "w") as f:
            json.dump(self.config, f)
        os.replace(config_path + ".tmp", config_path)

    def _check(self, config):
        if config != self.config:
            raise ValueError(
                f"{self.run_dir} holds results of another configuration ({config}); "
                "use a new --run-dir for this one."
            )

    def _rows_path(self):
        return os.path.join(self.run_dir, "finished.jsonl")

    def path(self, name):
        """The path of `name` in the run directory (None without one)."""
        return None if self.run_dir is None else os.path.join(self.run_dir, name)

    def save_row(self, key, row):
        """Records `key` as finished with its `row` (JSON-able)."""
        if self.read_only:
            raise ValueError(f"{self.run_dir} is open read only: {key} is not recorded.")
        self.rows[key] = row
        if self.run_dir is not None:  # made by __init__
            with open(self._rows_path(), "a") as f:
                f.write(json.dumps({"key": key, "config": self.config, "row": row}) + "\n")

    def save_arrays(self, key, arrays):
        """Saves numpy `arrays` (a dict) for `key`; write them before `save_row`,
        so that a finished key always has its arrays on disk."""
        if self.run_dir is not None:
            np.savez(self._arrays_path(key), **arrays)

    def load_arrays(self, key):
        """The arrays saved for `key` ({} if none were)."""
        path = None if self.run_dir is None else self._arrays_path(key)
        if path is None or not os.path.exists(path):
            return {}
        with np.load(path) as saved:
            return {name: saved[name] for name in saved.files}

    def _arrays_path(self, key):
        return self.path(f"arrays-{key.replace('/', '-')}.npz")

    def finished(self, key, weights_name=None):
        """Whether `key` finished (and its weights file `weights_name`, if
        given, is there to load)."""
        path = None if weights_name is None else self.path(weights_name)
        return key in self.rows and (path is None or os.path.exists(path))

    def trained(self, key, weights_name, model, train, log):
        """Loads `model`'s weights if `key` finished before, else trains it and
        records it; returns the training seconds.

        `train(callbacks)` trains the model, passing `callbacks` to its `fit`
        ahead of its backup (`BackupAndRestore`): an `EpochSeconds` kept in
        the run directory, so the seconds add up the kept epochs of every
        session of a stopped and resumed model (not the wall time of the last
        session alone; work outside `fit`, such as `adapt`, counts where
        `train` records it with `EpochSeconds.record`).
        """
        path = self.path(weights_name)
        if path and self.finished(key, weights_name):
            optimizer = getattr(model, "optimizer", None)
            if optimizer is not None and not optimizer.built:
                # The file holds the optimizer's state too: load it, not skip it.
                optimizer.build(model.trainable_variables)
            model.load_weights(path)
            return self.rows[key]["train_seconds"]
        if self.read_only:
            raise ValueError(f"{self.run_dir} has no finished {key} to load (read only: "
                             "nothing trains).")
        timer = EpochSeconds(self.path(f"{key.replace('/', '-')}-seconds.json"))
        train([timer])
        seconds = timer.total()
        if path:
            model.save_weights(path)
        self.save_row(key, {"train_seconds": seconds})
        log(f"{key} trained in {seconds:.0f} s")
        return seconds


class EpochSeconds(keras.callbacks.Callback):
    """Adds up a model's training seconds over every session of a resumed run.

    Each finished epoch's seconds are written to `path` (a JSON dict keyed by
    phase and epoch), so an epoch trained again after a stop (its backup not
    yet written) replaces its entry rather than counting twice. Without a
    `path`, it counts this session only.
    """

    def __init__(self, path=None):
        super().__init__()
        self.path = path
        self.seconds = {}
        if path and os.path.exists(path):
            with open(path) as f:
                self.seconds = json.load(f)
        self._started = None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        phase = "end_to_end" if getattr(self.model, "end_to_end", True) else "local"
        self.record(f"{phase}/{epoch}", time.time() - self._started)

    def record(self, name, seconds):
        """Counts `seconds` of training outside `fit` (e.g. a closed-form
        start) under `name`, replacing an earlier session's entry of that name."""
        self.seconds[name] = seconds
        if self.path:
            with open(self.path + ".tmp", "w") as f:
                json.dump(self.seconds, f)
            os.replace(self.path + ".tmp", self.path)

    def total(self):
        return float(sum(self.seconds.values()))


class EpochLosses(keras.callbacks.Callback):
    """Each epoch's logged losses in a CSV file (`epoch` and one column per
    log), over every session of a resumed run.

    Like `EpochSeconds`, an epoch trained again after a stop (its backup not
    yet written) replaces its row rather than appearing twice: a session
    drops the rows from its first epoch on. A log key that an epoch lacks is
    written as `NA`; a row cut short by a stop mid-write is dropped.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.rows = {}
        if os.path.exists(path):
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                self.rows = {int(row.pop("epoch")): row for row in reader
                             if None not in row and None not in row.values()}
        self._resumed = False

    def on_epoch_begin(self, epoch, logs=None):
        if not self._resumed:
            self.rows = {number: row for number, row in self.rows.items() if number < epoch}
            self._resumed = True

    def on_epoch_end(self, epoch, logs=None):
        self.rows[epoch] = {key: float(value) for key, value in (logs or {}).items()}
        keys = sorted({key for row in self.rows.values() for key in row})
        with open(self.path + ".tmp", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch", *keys])
            for number, row in sorted(self.rows.items()):
                writer.writerow([number, *(row.get(key, "NA") for key in keys)])
        os.replace(self.path + ".tmp", self.path)


def git_commit():
    """The commit of the code that ran (with `+changes` for a dirty tree), or None."""
    root = os.path.dirname(os.path.abspath(__file__))

    def git(*words):
        try:
            return subprocess.run(["git", *words], cwd=root, capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    commit = git("rev-parse", "HEAD")
    if commit and git("status", "--porcelain", "--untracked-files=no"):
        commit += "+changes"
    return commit
