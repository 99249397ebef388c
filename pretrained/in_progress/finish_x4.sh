#!/bin/bash
# Next session, once /work/runs/srcnn_955_x4/ckpt_0/srcnn-final.ckpt exists (run finished):
set -e
cd /work/main
run=/work/runs/srcnn_955_x4
for d in Set5 Set14 BSD100; do echo $d; .venv/bin/python eval.py --data_path=../shared/datasets/$d --scale=4 --checkpoint_path=$run/ckpt_0/srcnn-final.ckpt | grep '^result'; done
h=$(python3 -c "
import json
s=m=p=0
for l in open('$run/train_log.jsonl'):
    r=json.loads(l)
    if 'loss' in r: s+=r['ms_per_step']/1000*(r['step']-p); p=r['step']
print(round(s/3600,2))")
tot=$(python3 -c "print(round(5.79+$h,2))")
echo "x4 hours $h, from 9-1-5 x2: $tot"
.venv/bin/python scripts/package_model.py --run_dir=$run --recipe=configs/srcnn_955_x4.yaml \
  --note="fine-tuned from pretrained/srcnn_955_x3.ckpt (sha256 2a5e6c5afe87260f..., 1.53 h of training; 5.79 h with the x2 run it starts from): $tot h from the 9-1-5 x2 model"
.venv/bin/python scripts/make_results.py --evaluate
git rm -q pretrained/in_progress/srcnn_955_x4.tar
git status --short
# then: README/README_CN 9-5-5 heading (all three shipped) + x4 figures paragraph; merge branch family-955
# (fill X4SET5/X4BSD in README.md/README_CN.md: Set5 x4 gain over 30.17, BSD100 over 26.74), run tests.
