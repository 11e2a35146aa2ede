#!/usr/bin/env bash
# Reproduce the answer scorer end to end: pairs, training (~40 min on 2 CPU cores), ONNX + card.
# Needs $ANSWER_SCORER_DATA/train-v2.0.json (default training/answer_scorer/.data/) (SQuAD 2.0 train) and eval/corpora/encyclopedic/titles.txt.
# Extra arguments go to prepare.py (e.g. --squad FILE --val-titles FILE --eval-titles FILE).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
$PY training/answer_scorer/prepare.py "$@"
$PY training/answer_scorer/train.py 2>&1 | tee "${ANSWER_SCORER_DATA:-training/answer_scorer/.data}/train.log"
$PY training/answer_scorer/export.py
