import re
from pathlib import Path

import keras
import pytest

# One backend (tests/conftest.py): the README's lines run as written.
pytestmark = pytest.mark.one_backend

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.example
def test_readme_usage_runs_as_written(tmp_path, monkeypatch):
    # The README's python blocks run in order as one script; only the epoch
    # counts and the number of training sequences are cut to keep it fast.
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    script = re.sub(r"epochs=\d+", "epochs=1", "\n".join(blocks))
    script = script.replace("sample_sequences(train_digits, 8, 1000", "sample_sequences(train_digits, 8, 128")
    namespace = {}
    exec(compile(script, str(README), "exec"), namespace)
    assert tuple(namespace["restored"].shape) == (256, 8, 28, 28)
    assert tuple(namespace["trajectory"].shape) == (256, 8, 64)
    streamed, trajectory = (keras.ops.convert_to_numpy(namespace[name])
                            for name in ("streamed", "trajectory"))
    assert abs(streamed - trajectory).max() < 1e-4
    assert tuple(namespace["digits"].shape) == (1, 8, 28, 28)
    assert (tmp_path / "tree.keras").exists()
