import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.example
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
        # The examples backend is JAX: XLA's FLOP count and the achieved rate.
        assert row["flops_per_step"] > 0 and row["cost_of"] == "keras train_function"
        assert row["flops_per_sequence"] == pytest.approx(row["flops_per_step"] / 16)
        assert 0 < row["fraction_of_gemm"]
    # The smoke preset has an SSIM term: end to end costs more than local.
    assert rows["imfn", "end_to_end"]["ssim_term"] and not rows["imfn", "local"]["ssim_term"]
    assert rows["imfn", "end_to_end"]["flops_per_step"] > rows["imfn", "local"]["flops_per_step"]
    markdown = (tmp_path / "step_cost.md").read_text()
    assert "| smoke | imfn | end_to_end |" in markdown


@pytest.mark.example
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
