#!/usr/bin/env bash
# The prepared GPU check: on one GPU, for JAX and PyTorch (each stage under a
# timeout: 200 s, 150 s and 240 s a backend, about 10 minutes in all),
#   1. the core tests (layers, the one-pass training step, the tree, online memory);
#   2. a training step of the MNIST `paper` preset (T=128, d=1024) and of the
#      UCF-101 `paper` preset, timed: steps per second and the projected hours
#      of both full tables (benchmarks/preset_steps.py);
#   3. training throughput at the cpu shape and the streaming step, eager and
#      compiled (benchmarks/backend_speed.py).
#
#   benchmarks/gpu_check.sh          # on a machine with a GPU
#   benchmarks/gpu_check.sh --dry    # CPU only: one test, the smoke presets (a minute)
#
# A GPU machine may have JAX and PyTorch with CUDA but no Keras and no network:
# when `import keras` fails, the wheels in $KERAS_IMFN_WHEELS (default
# benchmarks/wheels/: keras and its pure-Python dependencies, see
# docs/distributed.md for the download command) are installed into a
# temporary folder first. The package itself is used from this checkout.
# Outputs (test logs, JSON and markdown) go to $GPU_CHECK_OUT (default
# benchmarks/results/gpu_check/); $GPU_CHECK_BACKENDS picks the backends
# (default "jax torch").
set -euo pipefail
cd "$(dirname "$0")/.."

dry=0
case "${1:-}" in
    --dry) dry=1 ;;
    "") ;;
    *) echo "usage: benchmarks/gpu_check.sh [--dry]" >&2; exit 2 ;;
esac
python="${PYTHON:-python3}"
out="${GPU_CHECK_OUT:-benchmarks/results/gpu_check}"
wheels="${KERAS_IMFN_WHEELS:-benchmarks/wheels}"
read -r -a backends <<<"${GPU_CHECK_BACKENDS:-jax torch}"
mkdir -p "${out}"

if ! "${python}" -c "import keras" 2>/dev/null; then
    if ! compgen -G "${wheels}/*.whl" >/dev/null; then
        echo "Keras is not installed and ${wheels}/ holds no wheels: place the keras wheel" \
             "and its pure-Python dependencies there (docs/distributed.md) or pip install keras." >&2
        exit 2
    fi
    site="$(mktemp -d)"
    "${python}" -m pip install -q --no-index --no-deps --no-compile --target "${site}" \
        "${wheels}"/*.whl
    export PYTHONPATH="${site}${PYTHONPATH:+:${PYTHONPATH}}"
fi
export PYTHONPATH="${PWD}${PYTHONPATH:+:${PYTHONPATH}}"

if ((dry)); then
    tests=("tests/test_distribution.py::test_one_replica_keeps_the_loss_and_the_batch_statistics")
    steps_args=(--dry --warmup 1)
    streaming_args=(--training-presets smoke --training-repeats 2
                    --dims 16 --length 16 --batch-sizes 1 --repeats 2 --warmup 1)
else
    tests=(tests/test_layers.py tests/test_training_step.py tests/test_tree_memory.py
           tests/test_streaming.py tests/test_compile_step.py)
    steps_args=()
    streaming_args=(--training-presets cpu --batch-sizes 1,32 --repeats 10)
fi

status=0
for backend in "${backends[@]}"; do
    device="$(KERAS_BACKEND="${backend}" "${python}" - <<'PY'
import keras

if keras.backend.backend() == "jax":
    import jax

    device = jax.devices()[0]
    print(f"{device.platform}: {device.device_kind}")
else:
    import torch

    print(f"gpu: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu: cpu")
PY
)"
    echo "=== ${backend} on ${device}" | tee -a "${out}/devices.txt"
    if ((!dry)) && [[ "${device}" == cpu:* ]]; then
        echo "No GPU seen by ${backend}; on a machine without one, run with --dry." >&2
        exit 3
    fi
    echo "=== ${backend}: core tests"
    KERAS_BACKEND="${backend}" timeout 200 "${python}" -m pytest -q -p no:cacheprovider \
        "${tests[@]}" >"${out}/tests_${backend}.log" 2>&1 || status=1
    tail -n 3 "${out}/tests_${backend}.log"
    echo "=== ${backend}: paper presets"
    KERAS_BACKEND="${backend}" timeout 150 "${python}" benchmarks/preset_steps.py \
        "${steps_args[@]}" --output "${out}/preset_steps_${backend}.json" || status=1
    echo "=== ${backend}: training and streaming speed"
    timeout 240 "${python}" benchmarks/backend_speed.py --backends "${backend}" \
        "${streaming_args[@]}" --output "${out}/backend_speed_${backend}.json" || status=1
done
exit "${status}"
