#!/usr/bin/env bash
# Train a config on a lent accelerator in a fixed wall-clock budget and bring the model back
# through $OUT (the device tool's output folder): the exported model (no optimiser state) and
# the run's logs and sample sheets, as one archive split into 15 MB parts.
#
# From the repository root on that machine, with the prepared tfds data in .devdata/tfds and,
# where the machine lacks them, wheels in .whl/ (docs/training.md; experiments/notes_photos.md):
#   OUT=/some/folder SECONDS_BUDGET=470 bash experiments/device_train.sh configs/photos.py
# Back here: cat OUT/device_run.tgz.part-* | tar -xz -C runs/
set -uo pipefail
CONFIG=${1:?usage: device_train.sh CONFIG}
BUDGET=${SECONDS_BUDGET:-470}
: "${OUT:?set OUT to the folder the results go to}"
RUN=${RUN:-/tmp/device_run}
WHEELS=${WHEELS:-.whl}
export PYTHONPATH=$PWD
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export FLOWFILL_DATA_DIR=$PWD/.devdata/tfds PYTHONUNBUFFERED=1
export JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
python3 -c "import jax, flax, optax, orbax.checkpoint, tensorflow_datasets as tfds; \
print('jax', jax.__version__, 'flax', flax.__version__, 'tfds', tfds.__version__, jax.devices())" \
  || exit 1
mkdir -p "$RUN"
# shellcheck disable=SC2086
python3 experiments/train_in_budget.py --config "$CONFIG" --workdir "$RUN" --seconds "$BUDGET" \
  ${BUDGET_ARGS:-} > "$RUN/train.log" 2>&1
echo "train_in_budget: exit status $?"
grep -v "^I[0-9]" "$RUN/train.log" | tail -40
python3 -m flowfill_jax.export --workdir "$RUN" --out "$RUN/export" --examples 0 2>&1 | tail -3
tar -C "$(dirname "$RUN")" -czf /tmp/device_run.tgz \
  --exclude="$(basename "$RUN")/*/checkpoints" "$(basename "$RUN")"
split -b 15m /tmp/device_run.tgz "$OUT/device_run.tgz.part-"
ls -la "$OUT"
