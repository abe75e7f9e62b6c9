#!/usr/bin/env bash
# One call on the GPU machine (the `device` tool): install what its image lacks, then measure, each
# phase under its own time limit so that a slow one cannot take the others' figures with it.
#
#   1. time of the four default time-series recipes on GunPoint, one run at a time (GPU alone)
#   2. in parallel: validation runs of the time-series recipes (many at a time: accuracy, not time;
#      now the five-member test runs the CPU has not reached and the members screen on 5-fold
#      cross-validation, QUEUE=old the first queue),
#      the backbone sweep of timm's families, and the test suite on the GPU machine
#   3. benchmarks/gpu_cost.py eager (ratios taken in one run, nothing else on the GPU), then
#      benchmarks/ensemble_cost.py (five members against one network; five standard LITEs apart and grouped in one pass)
#   4. benchmarks/fused_cost.py: the fused one-pass site kernel against the torch code (agreement, eager
#      time, CUDA kernels per site); prepared without a GPU, never run yet (PHASES=4 runs it alone)
#
# It writes $OUT/results.tar.gz (benchmarks/results/*gpu*, *_device*) and one log per phase beside it.
#   run: bash benchmarks/device_check.sh        (carry .whl: the wheels the GPU image lacks, made here by
#        pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 -d .whl \
#          aeon==1.6.0 Deprecated==1.3.1 jsonargparse==4.53.0 docstring_parser==0.18.0 typeshed_client==2.15.0 \
#          mnist1d==0.0.2.post1 captum==0.9.0)
#   SMOKE=1 bash benchmarks/device_check.sh     (here, on CPU: a few steps of each phase)
#   PHASES=2 ONLY=tuning QUEUE=rnn2 bash benchmarks/device_check.sh   (the second call: the RNN
#                                               layouts' standard counterparts, tuning runs alone)
set -u
OUT=${OUT:-/tmp/device_out}; mkdir -p "$OUT"
LOG=$OUT/log.txt
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 NEUROVIEW_CACHE=/tmp/nv_cache
R=benchmarks/results
T0=$(date +%s)
say() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$LOG"; }

if [ -z "${SMOKE:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl >>"$LOG" 2>&1
  export PYTHONPATH=/tmp/site:$PWD
  [ "${ONLY:-}" = tuning ] || python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >>"$LOG" 2>&1  # the `neuroview` command
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >>"$LOG" 2>&1
  JOBS=${JOBS:-11}; PH2=${PH2:-230}; GC=110; STEPS=""; QSEEDS="0 1 2"
else
  export PYTHONPATH=$PWD
  JOBS=2; PH2=${PH2:-100}; GC=60; STEPS="--trainer.max_steps 5"; QSEEDS="0"
fi
python3 -c "import torch, pytorch_lightning, jsonargparse, aeon, mnist1d; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" >>"$LOG" 2>&1
python3 -c "import timm, torchvision; print('timm', timm.__version__, 'torchvision', torchvision.__version__)" >>"$LOG" 2>&1
say "installed"

PHASES=${PHASES:-1 2 3 4}
if [[ " $PHASES " == *" 1 "* ]]; then
# 1. the recipes' time, one run at a time
say "phase 1: recipe time on GunPoint"
timeout 130 python3 benchmarks/ucr_accuracy.py --sets GunPoint --seeds 0 --results $R/ucr_accuracy_gpu.json \
  ${STEPS:+--extra "$STEPS"} >>"$LOG" 2>&1
say "phase 1 done"
fi

if [[ " $PHASES " == *" 2 "* ]]; then
# 2. tuning runs (a queue, most wanted first), timm's sweep and the tests, side by side
say "phase 2: queue, sweep, tests"
Q=/tmp/queue.txt; : >$Q; : >/tmp/queue.log
dev5="GunPoint ItalyPowerDemand BasicMotions JapaneseVowels ArrowHead"
add() {  # recipe "sets" "extra" ["flags": --val 0.2 --cv for validation runs]
  for seed in $QSEEDS; do for s in $2; do printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$s" "$seed" "$3 $STEPS" "${4:-}" >>$Q; done; done
}
if [ "${QUEUE:-}" = rnn2 ]; then  # after the first call: the standard counterparts of the layouts that helped
  add recipes/ucr_rnn.yaml "$dev5" "--model.model_kwargs.num_layers 2"
  add recipes/ucr_rnn.yaml "$dev5" "--model.model_kwargs.bidirectional true"
  QSEEDS=2 add recipes/ucr_nv_rnn.yaml "$dev5" "--model.model_kwargs.num_layers 2"
  add recipes/ucr_nv_rnn.yaml "$dev5" "--model.model_kwargs.num_layers 2 --model.model_kwargs.bidirectional true"
  add recipes/ucr_rnn.yaml "$dev5" "--model.model_kwargs.num_layers 2 --model.model_kwargs.bidirectional true"
  add recipes/ucr_nv_cnn.yaml "$dev5 mnist1d" "--model.classifier_lr 2e-4"
elif [ "${QUEUE:-}" = old ]; then  # the first GPU queue (RNN layouts, budgets), kept to rerun it
add recipes/ucr_nv_rnn.yaml "$dev5" "--model.arch nv_lstm"
add recipes/ucr_rnn.yaml "$dev5" "--model.arch lstm"
add recipes/ucr_nv_rnn.yaml "$dev5" "--model.model_kwargs.bidirectional true"
add recipes/ucr_nv_rnn.yaml "$dev5" "--model.model_kwargs.num_layers 2"
add recipes/ucr_nv_rnn.yaml "$dev5" "--model.classifier_weight_decay 0.1"
add recipes/ucr_nv_cnn.yaml "$dev5 mnist1d" "--trainer.max_steps 3000"
add recipes/ucr_nv_rnn.yaml "$dev5" "--trainer.max_steps 3000"
add recipes/ucr_nv_cnn.yaml "$dev5 mnist1d" "--model.classifier_lr 3e-5"
else  # issue 24 now: the table's cells still empty on the CPU (five members on ACSF1 and MNIST-1D, test
  # runs: hours each here), then the members screen on 5-fold cross-validation (ucr_choices.py --cv), seeds 0-4 = folds
  add recipes/ucr_nv_cnn.yaml "ACSF1 mnist1d" ""
  QSEEDS="0 1 2 3 4" add recipes/ucr_nv_cnn.yaml "ArrowHead JapaneseVowels $dev5" "" "--val 0.2 --cv"
  QSEEDS="0 1 2 3 4" add recipes/ucr_nv_cnn.yaml "ArrowHead JapaneseVowels $dev5" "--model.model_kwargs.members 1" "--val 0.2 --cv"
fi
awk '!seen[$0]++' $Q >$Q.u && mv $Q.u $Q  # each run once, in order (ArrowHead and JapaneseVowels first above)
say "queue: $(wc -l <$Q) runs"
one() {  # one queued run, into the tuning file (back here: ucr_accuracy.py --merge it into the cache)
  IFS=$'\t' read -r rec set seed extra flags <<<"$1"
  python3 benchmarks/ucr_accuracy.py --recipes "$rec" --sets "$set" --seeds "$seed" --extra "$extra" $flags \
    --results $R/ucr_tuning_gpu.json 2>&1 | grep -E "^(FAILED|[a-z_]+@)" >>/tmp/queue.log
}
export -f one; export R
(timeout $PH2 xargs -d '\n' -P $JOBS -I{} bash -c 'one "$@"' _ {} <$Q; echo "queue: rc $?") >>"$LOG" 2>&1 &
QP=$!
if [ -z "${SMOKE:-}" ] && [ "${ONLY:-}" != tuning ]; then
  (timeout $PH2 python3 benchmarks/sweep_backbones.py --device cuda --libraries timm --max-seconds $((PH2 - 40)) \
     --model-timeout 60 --out sweep_backbones_device --note "device_check.sh: GPU machine, side by side with tuning runs" \
     >"$OUT/sweep.log" 2>&1; echo "sweep: rc $?") >>"$LOG" 2>&1 &
  SP=$!
  (timeout $PH2 python3 -m pytest -q -n 3 -p no:cacheprovider >"$OUT/pytest.log" 2>&1; echo "pytest: rc $?") >>"$LOG" 2>&1 &
  TP=$!
  wait $SP $TP
fi
wait $QP
cp /tmp/queue.log "$OUT/queue.log" 2>/dev/null
say "phase 2 done: $(wc -l </tmp/queue.log 2>/dev/null) runs"
fi

if [[ " $PHASES " == *" 3 "* ]]; then
# 3. NeuroView's cost on ImageNet-size backbones, eager, nothing else on the GPU
say "phase 3: gpu_cost"
if [ -z "${SMOKE:-}" ]; then
  timeout $((GC + 20)) python3 benchmarks/gpu_cost.py --no-compile --repeats 7 --max-seconds $GC >"$OUT/gpu_cost.log" 2>&1
else
  timeout $GC python3 benchmarks/gpu_cost.py --small --no-compile --repeats 2 --max-seconds 30 --out gpu_cost_smoke >"$OUT/gpu_cost.log" 2>&1
fi
say "phase 3 done: rc $?"
timeout 90 python3 benchmarks/ensemble_cost.py --batches 5 16 64 --rounds 30 --out $R/ensemble_cost_gpu.json \
  >"$OUT/ensemble_cost.log" 2>&1  # five members against one, apart and grouped in one pass: issue 24's 1.3x on the GPU
say "ensemble_cost done: rc $?"
fi
if [[ " $PHASES " == *" 4 "* ]]; then
# 4. the fused site kernel (issue 25, item 1), eager, nothing else on the GPU
say "phase 4: fused_cost"
python3 -c "import triton; print('triton', triton.__version__)" >>"$LOG" 2>&1
if [ -z "${SMOKE:-}" ]; then
  timeout 150 python3 benchmarks/fused_cost.py --repeats 5 --max-seconds 110 >"$OUT/fused_cost.log" 2>&1
else
  timeout 60 python3 benchmarks/fused_cost.py --small --models resnet50 --precisions fp32 >"$OUT/fused_cost.log" 2>&1
fi
say "phase 4 done: rc $?"
fi
tar czf "$OUT/results.tar.gz" $(ls $R/*gpu* $R/*device* $R/*smoke* 2>/dev/null) 2>>"$LOG"
say "end"
