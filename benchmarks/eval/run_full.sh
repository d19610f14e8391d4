#!/usr/bin/env bash
# Issue 26.9 / 28: the evaluation of run_subsample.sh on FULL GDSC2 over the paper's 10 folds — a GPU command.
#   bash benchmarks/eval/run_full.sh DATA_ROOT PRETRAINED OUT
# DATA_ROOT, PRETRAINED: as for run_subsample.sh (a GDSC2 root with the cell annotation for tissue_blind; the
# quickstart's `csg2a pretrain` model.pt, or a --residual one: say which in the results).
# The paper's protocol for every CSG2A run: batch 128, patience 20 on the validation MSE, no epoch cap (EPOCHS is a
# ceiling only), frozen as released. All CSG2A runs of a fold (5 schemes x SEEDS seeds x {none, prior-remove,
# cell-permute}) are stepped together on the GPU (--executor stacked: one frozen network, per-run heads; JOBS caps a
# stack, 1 = all); the baselines (additive, RF, GBM) run in the same process on the machine's cores.
# Resumable like run_subsample.sh: folds grow one at a time, finished rows are kept; rerun the same command.
# Environment: DEVICE (cuda), FOLDS (10), SEEDS (2), TUNE (0: untuned — a tuned full-data run multiplies the cost by
# TUNE+1; the tuned comparison is run_subsample.sh's), EPOCHS (1000), JOBS (1), CSG2A (csg2a), MAX_MINUTES (none: a
# budget per stack, rows then say the epochs they got), GDSC_ARGS (--fetch: the registry source; empty: the GDSC
# release tables in DATA_ROOT/raw), DRY=1 (a minute or two on a CPU: 600 pairs, 2 epochs, folds 1-2, one seed;
# checks the command, not a result: tests/benchmarks/test_eval_scripts.py).
# Cost: unmeasured (no GPU lent so far). On the 2-core CPU one full-data CSG2A fold takes 20-35 min for 5 epochs.
set -euo pipefail
ROOT=${1:?DATA_ROOT}; PRE=${2:?PRETRAINED model.pt}; OUT=${3:?OUT}
CSG2A=${CSG2A:-csg2a}
DEVICE=${DEVICE:-cuda}; FOLDS=${FOLDS:-10}; SEEDS=${SEEDS:-2}; TUNE=${TUNE:-0}; EPOCHS=${EPOCHS:-1000}; JOBS=${JOBS:-1}
EXTRA=()
if [[ -n "${MAX_MINUTES:-}" ]]; then EXTRA+=(--max-minutes "$MAX_MINUTES"); fi
if [[ "${DRY:-0}" == 1 ]]; then
    DEVICE=cpu; FOLDS=2; SEEDS=1; EPOCHS=2
    EXTRA+=(--subsample 600 --rf-trees 10)
fi
for k in $(seq 1 "$FOLDS"); do
    # shellcheck disable=SC2086 # GDSC_ARGS is a list of words
    "$CSG2A" cv --dataset gdsc ${GDSC_ARGS---fetch} --root "$ROOT" --out "$OUT" \
        --schemes mixed cell_blind drug_blind disjoint tissue_blind --folds "$k" \
        --models additive rf gbm csg2a --pretrained "$PRE" \
        --epochs "$EPOCHS" --patience 20 --batch-size 128 --tune "$TUNE" --seeds "$SEEDS" \
        --randomize prior-remove cell-permute --randomize-models csg2a \
        --rf-max-features 0.1 --rf-max-samples 0.1 \
        --device "$DEVICE" --executor stacked --jobs "$JOBS" -q "${EXTRA[@]}"
done
"$CSG2A" report "$OUT"
