#!/usr/bin/env bash
# Reproduce the shipped answer scorer end to end: data, pairs, training (~41 min on 2 CPU
# cores), ONNX + card. Needs, under $ANSWER_SCORER_DATA (default training/answer_scorer/.data/):
#   explorer/explore/1.1/train/*.html   the SQuAD explorer's train pages:
#       git clone https://github.com/rajpurkar/SQuAD-explorer
#       git -C SQuAD-explorer archive 13f82e35b9a1fb9173f863b35f5675030646571e explore/1.1/train \
#           | tar -x -C "$ANSWER_SCORER_DATA/explorer"
#   subset-train-v2.0.json              the first 10 articles of SQuAD 2.0 train, with SOURCE.json
#                                       beside it (PhongNTDo/guide_train_MRC_transformers, README.md)
# The encyclopedic evaluation articles (val_titles.txt) are held out of training and validate it.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
T=training/answer_scorer
D=${ANSWER_SCORER_DATA:-$T/.data}
SQUAD=$D/explorer-train-v2.0.json
$PY $T/explorer.py --pages "$D/explorer/explore/1.1/train" --v2 "$D/subset-train-v2.0.json" --out "$SQUAD"
$PY $T/prepare.py --squad "$SQUAD" --eval-titles $T/no_eval_titles.txt --val-titles $T/val_titles.txt --negatives 2 \
    --hard-negatives
$PY $T/augment.py --squad "$SQUAD" --eval-titles $T/no_eval_titles.txt
$PY $T/train.py --pairs "$D/train_pairs.jsonl" "$D/swapped_pairs.jsonl" --max-pairs 96000 \
    2>&1 | tee "$D/train.log"
$PY $T/export.py --squad "$SQUAD" --source "${SQUAD%.json}.SOURCE.json" \
    --eval-titles $T/no_eval_titles.txt --status "one 41-minute CPU pass over SQuAD train rebuilt from the SQuAD explorer's pages (440 articles) plus adversarial questions made by rule: it saw 16,191 of the 86,716 answerable training questions, each against the sentence before its answer and the sentence sharing most of its words (hard negatives), and 33,349 unanswerable ones, nearly all made by rule (augment.py); the human-written SQuAD 2.0 unanswerables obtainable here are 160"
