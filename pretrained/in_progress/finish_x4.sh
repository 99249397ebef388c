#!/bin/bash
# Once an x4 candidate has finished (<run_dir>/ckpt_0/srcnn-final.ckpt exists): evaluate it with the README's
# command, package it with its recipe (configs/<run_dir name>.yaml) and table it.
# Usage: bash pretrained/in_progress/finish_x4.sh <run_dir> [<earlier stage run_dir> ...]   (earlier stages in order)
#   ../runs/srcnn_955_x4_ss                             (one stage, fine-tuned from pretrained/srcnn_955_x3.ckpt)
#   ../runs/srcnn_955_x4_stage3 ../runs/srcnn_955_x4 ../runs/srcnn_955_x4_finetune
#                                   (a later stage; each earlier stage's log ships as srcnn_955_x4_stage<i>_train_log.jsonl)
set -e
cd "$(dirname "$0")/../.."
run=${1:?usage: finish_x4.sh <run_dir> [<earlier stage run_dir> ...]}
shift
recipe=configs/$(basename "$run").yaml
test -f "$recipe" && test -f "$run/ckpt_0/srcnn-final.ckpt"
for d in Set5 Set14 BSD100; do
    echo "$d: $(python eval.py --data_path=../shared/datasets/$d --scale=4 --checkpoint_path=$run/ckpt_0/srcnn-final.ckpt | grep '^result')"
done
# a run's hours as package_model.py counts them; 4.26 h (x2) + 1.53 h (x3) = 5.79 h lead to the x3 start point
hours() { python -c "
import json, sys
from src.release.package import training_cost
records = [json.loads(line) for line in open(sys.argv[1])]
print(round(training_cost(records, 1, 1)[2] / 3600, 2))" "$1/train_log.jsonl"; }
h=$(hours "$run")
total=$(python -c "print(round(5.79 + $h, 2))")
origin="pretrained/srcnn_955_x3.ckpt (1.53 h; 5.79 h with x2)"
note="fine-tuned from $origin"
if [ $# -gt 0 ]; then
    note="stage $(($# + 1)) of" i=0
    for stage in "$@"; do
        i=$((i + 1)) hs=$(hours "$stage")
        total=$(python -c "print(round($total + $hs, 2))")
        steps=$(python -c "import yaml; print(f\"{yaml.safe_load(open('configs/$(basename "$stage").yaml'))['train_steps']:,}\")")
        cp "$stage/train_log.jsonl" pretrained/srcnn_955_x4_stage${i}_train_log.jsonl
        note="$note configs/$(basename "$stage").yaml ($steps steps, $hs h, log: pretrained/srcnn_955_x4_stage${i}_train_log.jsonl);"
    done
    note="$note the first from $origin"
fi
note="$note: $total h from the 9-1-5 x2 model"
python scripts/package_model.py --run_dir="$run" --recipe="$recipe" --note="$note"
python scripts/make_results.py --evaluate
git rm -q pretrained/in_progress/srcnn_955_x4*.tar
git status --short
# then: git am pretrained/in_progress/pretrained_family_955.patch, fill its X4SET5/X4BSD placeholders (the x4
# Set5 gain over 30.17, the BSD100 gain over 26.74), the README/README_CN 9-5-5 heading and x4 paragraph, tests
