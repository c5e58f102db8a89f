import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# One backend (tests/conftest.py): the benchmark scripts' outputs.
pytestmark = pytest.mark.one_backend

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.example(backend="jax")  # XLA's cost analysis
def test_step_cost_quick_mode_on_the_smoke_shape(tmp_path):
    step_cost = load_benchmark("step_cost")
    output = tmp_path / "step_cost.json"
    step_cost.main(["--quick", "--presets", "smoke", "--models", "imfn", "--gemm-size", "128",
                    "--gemm-repeats", "2", "--output", str(output)])
    result = json.loads(output.read_text())
    rows = {(row["model"], row["phase"]): row for row in result["rows"]}
    assert list(rows) == [("imfn", "local"), ("imfn", "end_to_end")]
    assert result["config"]["repeats"] == 2
    for row in rows.values():
        assert row["params"] > 0 and row["step_seconds"] > 0 and len(row["times"]) == 2
        # On JAX: XLA's FLOP count and the achieved rate.
        assert row["flops_per_step"] > 0 and row["cost_of"] == "keras train_function"
        assert row["flops_per_sequence"] == pytest.approx(row["flops_per_step"] / 16)
        assert 0 < row["fraction_of_gemm"]
    # The smoke preset has an SSIM term: end to end costs more than local.
    assert rows["imfn", "end_to_end"]["ssim_term"] and not rows["imfn", "local"]["ssim_term"]
    assert rows["imfn", "end_to_end"]["flops_per_step"] > rows["imfn", "local"]["flops_per_step"]
    # Where the time goes: every matmul timed at its own shape.
    for row in rows.values():
        assert row["matmul_flops"] == pytest.approx(
            sum(2 * s["m"] * s["k"] * s["n"] * s["calls"] for s in row["matmul_shapes"]))
        assert row["matmul_flops"] == pytest.approx(row["flops_jaxpr_matmul"])
        assert 0 < row["matmul_mix_seconds"] and row["matmul_mix_gflops"] > 0
    markdown = (tmp_path / "step_cost.md").read_text()
    assert "| smoke | imfn | end_to_end |" in markdown and "matmuls alone (ms)" in markdown


@pytest.mark.example(backend="jax")  # XLA's cost analysis
def test_step_cost_counts_every_trip_of_a_scan():
    import jax
    import jax.numpy as jnp

    step_cost = load_benchmark("step_cost")
    w, x = jnp.ones((8, 8)), jnp.ones((4, 8))

    def scanned(x):
        return jax.lax.scan(lambda h, _: (jnp.tanh(h @ w), None), x, None, length=16)[0]

    counted = step_cost.jaxpr_flops(jax.make_jaxpr(scanned)(x).jaxpr)
    matmul = 2 * 4 * 8 * 8
    assert counted["matmul"] == 16 * matmul
    assert counted["total"] == 16 * counted["once"] == 16 * (matmul + 4 * 8)
    assert counted["loops"] == [16]
    # The same matmul, as one GEMM shape called on every trip.
    assert step_cost.jaxpr_dots(jax.make_jaxpr(scanned)(x).jaxpr) == {(4, 8, 8): 16}
    # XLA counts the body once: the correction brings it to every trip.
    xla = jax.jit(scanned).lower(x).compile().cost_analysis()
    xla = xla[0] if isinstance(xla, (list, tuple)) else xla
    assert xla["flops"] + counted["total"] - counted["once"] == pytest.approx(
        counted["total"], rel=0.05)


def test_step_cost_tables_in_the_docs_are_the_saved_outputs():
    # docs/benchmarks.md copies each saved table verbatim; a rerun that
    # changes a table must change the docs too.
    docs = (BENCHMARKS.parent / "docs" / "benchmarks.md").read_text()
    saved = [path for path in sorted((BENCHMARKS / "results").glob("step_cost_*.md"))
             if not path.name.startswith("step_cost_quick")]  # --quick: smoke runs
    assert saved
    for path in saved:
        assert path.read_text().strip() in docs, f"{path.name} is not in docs/benchmarks.md"


@pytest.mark.example
def test_gpu_check_dry_mode_runs_the_tests_and_times_both_presets(tmp_path):
    import keras

    backend = keras.backend.backend()
    env = dict(os.environ, GPU_CHECK_OUT=str(tmp_path), GPU_CHECK_BACKENDS=backend,
               PYTHON=sys.executable)
    done = subprocess.run(["bash", str(BENCHMARKS / "gpu_check.sh"), "--dry"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"=== {backend} on cpu:" in done.stdout
    assert "1 passed" in (tmp_path / f"tests_{backend}.log").read_text()
    result = json.loads((tmp_path / f"preset_steps_{backend}.json").read_text())
    assert result["config"]["preset"] == "smoke"
    for name in ("mnist", "ucf101"):
        for phase in result["rows"][name]["phases"].values():
            assert phase["steps_per_second"] > 0 and phase["hours"] > 0
    assert "| ucf101 | end_to_end |" in (tmp_path / f"preset_steps_{backend}.md").read_text()
    streaming = json.loads((tmp_path / f"backend_speed_{backend}.json").read_text())
    assert {row["case"] for row in streaming["backends"][backend]["records"]} == {
        "student", "exact cell"}


def test_gpu_check_rejects_unknown_arguments():
    done = subprocess.run(["bash", str(BENCHMARKS / "gpu_check.sh"), "--fast"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "usage" in done.stderr


@pytest.mark.example
def test_ucf_loader_memory_compares_both_ways_on_the_same_clips(tmp_path):
    from conftest import SHARED_DATA

    data_dir = SHARED_DATA / "ucf101-mini"
    if not data_dir.is_dir():
        pytest.skip(f"needs the shared UCF-101 mini tree at {data_dir}")
    output = tmp_path / "memory.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "ucf_loader_memory.py"), "--data-dir", str(data_dir),
         "--frames", "4", "--size", "16", "--hop", "2", "--output", str(output)],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(output.read_text())
    rows = result["rows"]
    assert rows["in_memory"]["clips"] == rows["stream"]["clips"] > 0
    assert rows["in_memory"]["checksum"] == pytest.approx(rows["stream"]["checksum"])
    assert result["batch_bytes"] == 16 * 4 * 16 * 16 * 3 * 4


@pytest.mark.example
def test_online_step_times_every_case_at_every_length(tmp_path):
    online_step = load_benchmark("online_step")
    output = tmp_path / "online_step.json"
    online_step.main(["--lengths", "4,8", "--memory-dim", "16", "--repeats", "2", "--warmup", "1",
                      "--output", str(output)])
    steps = json.loads(output.read_text())["steps"]
    cases = {(row["T"], row["case"], row["t"]) for row in steps}
    assert cases == {(t, case, t) for t in (4, 8) for case in online_step.CASES}
    assert all(row["seconds"] > 0 and len(row["all_seconds"]) == 2 for row in steps)
    # The path-map student's parameters grow with T (its tables), its state does not.
    student = {row["T"]: row["parameters"] for row in steps if "path-map" in row["case"]}
    assert student[8] > student[4]
    assert "| 8 | student: path-map+g | t=T |" in (tmp_path / "online_step.md").read_text()


def test_the_online_step_table_in_the_docs_is_the_saved_output():
    saved = (BENCHMARKS / "results" / "online_step_jax.md").read_text().rstrip("\n")
    assert saved in (BENCHMARKS.parent / "docs" / "benchmarks.md").read_text()


@pytest.mark.example(backend="jax")  # its workers run the backends it is given
def test_backend_speed_times_training_and_eager_and_compiled_steps_in_one_run(tmp_path):
    backend_speed = load_benchmark("backend_speed")
    output = tmp_path / "backend_speed.json"
    backend_speed.main(["--backends", "jax", "--training-presets", "smoke",
                        "--training-repeats", "2", "--dims", "16", "--length", "16",
                         "--batch-sizes", "1,2", "--repeats", "2", "--warmup", "1",
                         "--output", str(output)])
    outcome = json.loads(output.read_text())["backends"]["jax"]
    trained = outcome["training"]["smoke"]
    assert set(trained["sequences_per_second"]) == {"local", "end_to_end"}
    assert all(rate > 0 for rate in trained["sequences_per_second"].values())
    records = outcome["records"]
    cases = {(row["case"], row["batch"], row["t"]) for row in records}
    assert cases == {(case, batch, t) for case in backend_speed.CASES
                     for batch in (1, 2) for t in (10, 16)}
    for row in records:
        assert row["eager_seconds"] > 0 and row["compiled_seconds"] > 0
        assert row["max_abs_difference"] <= 1e-5 * max(1.0, row["max_abs_output"])
    markdown = (tmp_path / "backend_speed.md").read_text()
    assert "| jax | student | 16 | 2 | T |" in markdown and "| jax | smoke |" in markdown


@pytest.mark.parametrize("name", ["backend_speed", "torch_step_profile", "torch_step_profile_cpu"])
def test_the_backend_tables_in_the_docs_are_the_saved_outputs(name):
    saved = (BENCHMARKS / "results" / f"{name}.md").read_text().strip()
    assert saved in (BENCHMARKS.parent / "docs" / "benchmarks.md").read_text()
