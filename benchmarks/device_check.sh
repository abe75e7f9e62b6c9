#!/usr/bin/env bash
# One call on the GPU machine (the `device` tool): install what its image lacks, then measure, each
# phase under its own time limit so that a slow one cannot take the others' figures with it. The
# tool allows one call of at most 600 s (about 560 in practice) and 15 minutes a session, so the
# default call must finish in END (560) s: the plan is printed at the start, and a phase whose limit
# would end past END is skipped (DRY=1 prints the plan and runs nothing). The default
# (PHASES="3 5 4": setup ~40 + 130 + 200 + 150 = 520 s) runs, in this order, what issue 25 lacks most:
#   3. gpu_cost.py eager, ViT-B/16 and ConvNeXt-T (the models the 2026-12-04 call did not reach)
#   5. gpu_cost.py's torch.compile phase (bf16): ONE model measured completely (a compile phase of
#      ResNet-50 took 148 s), in a slot of 200 s
#   4. fused_cost.py, in gpu_cost's setting, into a dated file of the GPU's (fused_cost_gpu_<date>[_<gpu>])
# Every gpu_cost run merges into results/gpu_cost.json (figures measured before stay; gpu_cost.py refuses
# a merge from another GPU or torch: results/gpu_cost.json is an H200's; another GPU or torch writes a file of its
# own, gpu_cost_<gpu>[_<torch>].json, see gpu_out). Logs go to DC_LOGS (a folder under /tmp, emptied). Every phase
# adds its files to $OUT/results.tar.gz as it ends (with the logs), so a call cut short still brings
# back what it measured.
#
#   0. the fused site kernel compiled on CUDA tensors against the torch code (tests/core/fused_cases.py,
#      NEUROVIEW_FUSED_CASES=cuda) beside the whole test suite on the GPU machine (no timing; PHASES=0)
#   1. time of the four default time-series recipes on GunPoint, one run at a time (GPU alone)
#   2. in parallel: validation runs of the time-series recipes (many at a time: accuracy, not time;
#      now the five-member test runs the CPU has not reached and the members screen on 5-fold
#      cross-validation, QUEUE=old the first queue),
#      the backbone sweep of timm's families, and the test suite on the GPU machine
#   3. benchmarks/gpu_cost.py eager (ratios taken in one run, nothing else on the GPU), then (ENSEMBLE=1 adds
#      it, 160 s more: not in the default call's budget) benchmarks/ensemble_cost.py (five members against one
#      network; five standard LITEs apart and grouped in one pass: issue 24's 1.3x, not yet timed with the grouped heads), and the same steps compiled with CUDA graphs
#      (--compile reduce-overhead: the host's ~2x, counted on the CPU, gone if the graphs replay)
#   4. benchmarks/fused_cost.py: the fused one-pass site kernel against the torch code (agreement, eager
#      time, CUDA kernels per site); on 2026-12-04 it reached ResNet-50 and EfficientNet-B0 (PHASES=4 runs it alone)
#   5. benchmarks/gpu_cost.py --compile-only --merge: graph breaks, compile time, compiled step ratio (bf16)
#
# It writes $OUT/log.txt and $OUT/results.tar.gz (benchmarks/results/*gpu*, *_device*, and each phase's log).
#   run: bash benchmarks/device_check.sh        (carry .whl: the wheels the GPU image lacks, made here by
#        pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 -d .whl \
#          aeon==1.6.0 Deprecated==1.3.1 jsonargparse==4.53.0 docstring_parser==0.18.0 typeshed_client==2.15.0 \
#          mnist1d==0.0.2.post1 captum==0.9.0)
#   SMOKE=1 bash benchmarks/device_check.sh     (here, on CPU: a few steps of each phase)
#   DRY=1 bash benchmarks/device_check.sh       (prints the phases and their limits, runs nothing)
#   PHASES=2 ONLY=tuning QUEUE=rnn2 bash benchmarks/device_check.sh   (the second call: the RNN
#                                               layouts' standard counterparts, tuning runs alone)
set -u
OUT=${OUT:-/tmp/device_out}
LOG=$OUT/log.txt
# each phase's log: they come back inside results.tar.gz (at most 8 files come back). A name of its own, and under
# /tmp only: the folder is emptied (rm -rf), and a generic L inherited from the caller's shell was deleted
L=${DC_LOGS:-/tmp/dlogs}
L_REAL=$(realpath -m -- "$L" 2>/dev/null || echo "$L")  # /tmp//, /tmp/. and a/.. read as what they name
case "$L_REAL" in
  /tmp/[!/.]*) ;;
  *) echo "DC_LOGS: expected a folder under /tmp (it is emptied), got '$L'" >&2; exit 2;;
esac
if [ -L "$L" ]; then echo "DC_LOGS: expected a folder under /tmp (it is emptied), got '$L', a link" >&2; exit 2; fi
L=$L_REAL
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 NEUROVIEW_CACHE=/tmp/nv_cache
R=benchmarks/results
T0=$(date +%s)
say() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$LOG"; }

END=${END:-560}; SETUP=40  # the call's budget, and what installs and import checks take (not limited)
if [ -z "${SMOKE:-}" ]; then
  GC=110; CS=${CS:-200}; P4=150; PH2=${PH2:-230}
else
  GC=60; CS=${CS:-120}; P4=60; PH2=${PH2:-100}
fi
ENS=0; [ "${ENSEMBLE:-0}" = 1 ] && ENS=160  # ensemble_cost's two runs (60 + 100 s) inside phase 3
PHASES=${PHASES:-3 5 4}
limit() {  # each phase's time limit in s, as the commands below are given them
  case $1 in
    0) echo 150;; 1) echo 130;; 2) echo "$PH2";; 3) echo $((GC + 20 + ENS));; 4) echo "$P4";; 5) echo "$CS";; *) echo 0;;
  esac
}
plan=$SETUP; PLAN="setup ${SETUP} s"
for ph in 0 1 2 3 5 4; do  # the order the phases run in, whatever the order PHASES names them in
  [[ " $PHASES " == *" $ph "* ]] || continue
  plan=$((plan + $(limit "$ph"))); PLAN="$PLAN, phase $ph $(limit "$ph") s"
done
OVER=""; [ "$plan" -gt "$END" ] && OVER=": OVER, the last phases will be skipped"
echo "plan: $PLAN = ${plan} s of END ${END} s$OVER"
# nothing is created or removed before this: a DRY run (the test suite, run by phases 0 and 2 on the GPU
# machine) must not wipe the running phase's logs
[ -n "${DRY:-}" ] && exit 0
mkdir -p "$OUT"; rm -rf "$L"; mkdir -p "$L"
echo "plan: $PLAN = ${plan} s of END ${END} s$OVER" >>"$LOG"
gpu_out() {  # gpu_cost.py's --out for GPU $1 and torch $2: a file whose meta is theirs (a merge into another's is
  # refused, and the phase measured nothing): the GPU's own file, and one per torch where the file holds another's
  # The committed files are of the GPU named exactly "NVIDIA H200" (their meta.device_name): an H200 NVL or a GH200 is
  # another GPU, and a name nvidia-smi did not give is none we know (gpu_cost_unknown), each with names of its own
  local out=gpu_cost had
  case "$1" in
    "NVIDIA H200") ;;
    "") out=gpu_cost_unknown;;
    *) out="gpu_cost_$(echo "$1" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '_' | sed 's/_*$//')";;
  esac
  had=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["meta"].get("torch") or "")' \
    "$R/$out.json" 2>/dev/null)
  if [ -n "$2" ] && [ -n "$had" ] && [ "$2" != "$had" ]; then
    out="${out}_$(echo "$2" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '_' | sed 's/_*$//')"
  fi
  echo "$out"
}
gpu_suffix() {  # what gpu_out appends for GPU $1 (its rule, torch left out): nothing on the H200, _<gpu> on another
  # (_unknown where nvidia-smi named none)
  local out; out=$(gpu_out "$1" ""); echo "${out#gpu_cost}"
}
fits() {  # phase $1 starts only if its limit ends before END (a phase cut by the tool's limit saves nothing)
  local left=$(( END - ($(date +%s) - T0) ))
  if [ "$(limit "$1")" -gt "$left" ]; then
    say "phase $1 skipped: its limit $(limit "$1") s > ${left} s left"; return 1
  fi
}

if [ -z "${SMOKE:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl >>"$LOG" 2>&1
  export PYTHONPATH=/tmp/site:$PWD
  [ "${ONLY:-}" = tuning ] || python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >>"$LOG" 2>&1  # the `neuroview` command
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >>"$LOG" 2>&1
  # results/gpu_cost.json is an H200's (gpu_cost.py refuses to merge another GPU's rows into it): another GPU's
  # figures go to a file of its own, gpu_cost_<gpu>.json, merged run after run (an H100: gpu_cost_nvidia_h100_80gb_hbm3),
  # and another torch than the file's to gpu_cost[_<gpu>]_<torch>.json (gpu_out)
  GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  GOUT=$(gpu_out "$GPU" "$(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null)")
  say "results of gpu_cost.py: $R/$GOUT.json ($GPU)"
  JOBS=${JOBS:-11}; STEPS=""; QSEEDS="0 1 2"
else
  export PYTHONPATH=$PWD
  JOBS=2; STEPS="--trainer.max_steps 5"; QSEEDS="0"
fi
python3 -c "import torch, pytorch_lightning, jsonargparse, aeon, mnist1d; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" >>"$LOG" 2>&1
python3 -c "import timm, torchvision; print('timm', timm.__version__, 'torchvision', torchvision.__version__)" >>"$LOG" 2>&1
say "installed"

pack() {  # what exists so far, logs included, into the one file that comes back
  cp /tmp/queue.log "$L/queue.log" 2>/dev/null
  tar czf "$OUT/results.tar.gz.new" $(ls $R/*gpu* $R/*device* $R/*smoke* 2>/dev/null | sort -u) -C $L \
    $(cd $L && ls *.log 2>/dev/null) 2>>"$LOG" && mv "$OUT/results.tar.gz.new" "$OUT/results.tar.gz"
}
if [[ " $PHASES " == *" 0 "* ]] && fits 0; then
# 0. the kernel's correctness on the device, and the test suite there (both CPU-bound, side by side)
say "phase 0: fused kernel cases on CUDA, test suite"
(NEUROVIEW_FUSED_CASES=cuda timeout 150 python3 -m pytest -q -p no:cacheprovider tests/core/fused_cases.py \
   >"$L/fused_cases.log" 2>&1; echo "fused cases: rc $?") >>"$LOG" 2>&1 &
FP=$!
if [ -z "${SMOKE:-}" ]; then
  (timeout 150 python3 -m pytest -q -n 10 -p no:cacheprovider >"$L/pytest.log" 2>&1; echo "pytest: rc $?") >>"$LOG" 2>&1
fi
wait $FP
tail -3 "$L/fused_cases.log" >>"$LOG"; tail -3 "$L/pytest.log" >>"$LOG" 2>/dev/null
pack; say "phase 0 done"
fi

if [[ " $PHASES " == *" 1 "* ]] && fits 1; then
# 1. the recipes' time, one run at a time
say "phase 1: recipe time on GunPoint"
timeout 130 python3 benchmarks/ucr_accuracy.py --sets GunPoint --seeds 0 --results $R/ucr_accuracy_gpu.json \
  ${STEPS:+--extra "$STEPS"} >>"$LOG" 2>&1
say "phase 1 done"
fi

if [[ " $PHASES " == *" 2 "* ]] && fits 2; then
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
     >"$L/sweep.log" 2>&1; echo "sweep: rc $?") >>"$LOG" 2>&1 &
  SP=$!
  (timeout $PH2 python3 -m pytest -q -n 3 -p no:cacheprovider >"$L/pytest.log" 2>&1; echo "pytest: rc $?") >>"$LOG" 2>&1 &
  TP=$!
  wait $SP $TP
fi
wait $QP
cp /tmp/queue.log "$L/queue.log" 2>/dev/null
say "phase 2 done: $(wc -l </tmp/queue.log 2>/dev/null) runs"
fi

if [[ " $PHASES " == *" 3 "* ]] && fits 3; then
# 3. NeuroView's cost on ImageNet-size backbones, eager, nothing else on the GPU
say "phase 3: gpu_cost"
if [ -z "${SMOKE:-}" ]; then
  # the two models the 2026-12-04 call did not reach, merged into its results (their rows stay)
  timeout $((GC + 20)) python3 benchmarks/gpu_cost.py --no-compile --merge --repeats 7 --max-seconds $GC \
    --models vit_b_16 convnext_tiny --out "$GOUT" >"$L/gpu_cost.log" 2>&1
else
  timeout $((GC + 20)) python3 benchmarks/gpu_cost.py --small --no-compile --merge --repeats 2 --max-seconds 30 \
    --out gpu_cost_smoke >"$L/gpu_cost.log" 2>&1
fi
say "phase 3 done: rc $?"; pack
if [ "$ENS" -gt 0 ]; then  # measured on 2026-12-04 before the grouped heads (UCR.md); ENSEMBLE=1 adds it
  EG=gpu; [ -n "${SMOKE:-}" ] && EG=smoke  # a smoke run on the CPU never writes over the GPU's figures
  timeout 60 python3 benchmarks/ensemble_cost.py --batches 5 16 64 --rounds 20 --out $R/ensemble_cost_$EG.json \
    >"$L/ensemble_cost.log" 2>&1  # five members against one, apart and grouped in one pass: issue 24's 1.3x on the GPU
  say "ensemble_cost done: rc $?"; pack
  CM=reduce-overhead; [ -n "${SMOKE:-}" ] && CM=aot_eager  # CUDA graphs: the host work a launch-bound step waits on
  timeout 100 python3 benchmarks/ensemble_cost.py --compile $CM --fused-adamw --batches 16 --rounds 20 \
    --out $R/ensemble_compiled_$EG.json >"$L/ensemble_compiled.log" 2>&1  # (ensemble_host.json: ~2x on the host)
  say "ensemble_cost --compile done: rc $?"; pack
fi
fi

if [[ " $PHASES " == *" 5 "* ]] && fits 5; then
# 5. torch.compile (bf16): graph breaks, compile time, compiled step / compiled standard step of ONE model
#    measured completely (a compile phase of ResNet-50 took 148 s: --compile-seconds 150 lets gpu_cost.py
#    start a model only with that much left, and skip, saying so, the next one); the models in the order
#    of the most needed and likely quickest to compile first (ViT-B/16: 24 sites; ResNet-50's is measured)
say "phase 5: gpu_cost compile, ${CS} s"
if [ -z "${SMOKE:-}" ]; then
  timeout $CS python3 benchmarks/gpu_cost.py --compile-only --merge --max-seconds $((CS - 10)) --compile-seconds 150 \
    --compile-models vit_b_16 convnext_tiny efficientnet_b0 --out "$GOUT" >"$L/gpu_compile.log" 2>&1
else
  timeout $CS python3 benchmarks/gpu_cost.py --small --compile-only --merge --out gpu_cost_smoke \
    >"$L/gpu_compile.log" 2>&1
fi
say "phase 5 done: rc $?"; pack
fi
if [[ " $PHASES " == *" 4 "* ]] && fits 4; then
# 4. the fused site kernel (issue 25, item 1), eager, nothing else on the GPU
say "phase 4: fused_cost"
python3 -c "import triton; print('triton', triton.__version__)" >>"$LOG" 2>&1
if [ -z "${SMOKE:-}" ]; then
  # gpu_cost's setting (finite check on, cudnn.benchmark), into a dated file of this GPU's, named as gpu_out names
  # gpu_cost's: the earlier runs' files stay, and a second GPU the same day is not refused (fused_cost.py writes its
  # whole file and refuses another machine's): fused_cost_gpu_<date> on the H200, _<gpu> appended on another (gpu_suffix)
  timeout $P4 python3 benchmarks/fused_cost.py --repeats 5 --max-seconds $((P4 - 40)) \
    --out "fused_cost_gpu_$(date +%Y%m%d)$(gpu_suffix "$GPU")" >"$L/fused_cost.log" 2>&1
else
  timeout $P4 python3 benchmarks/fused_cost.py --small --models resnet50 --precisions fp32 --out fused_cost_smoke \
    >"$L/fused_cost.log" 2>&1  # a name pack takes (its default, fused_cost_cpu_small, came back in no file)
fi
say "phase 4 done: rc $?"; pack
fi
pack; say "end"
