#!/usr/bin/env bash
# The trRosetta benchmark's GPU runs (issue 7) on a lent device machine, in one call.
#
# Here first:  python benchmarks/device/prepare_kit.py   (stages .device/, prints the run call)
# There:       bash benchmarks/device/issue7.sh [STAGE ...]
#
# Stages, in order of what they settle (default: all, until the time budget is spent):
#   env        the GPU, driver and torch
#   profile    where an update's time goes at L = 100, fp32 and bf16 (benchmarks/profile_step.py):
#              device busy time against wall time, kernels per update, top operators; in fp32
#              the blocks one compiled call per dilation cycle against one per block (--block-calls both)
#   step       ms per published-protocol update at L = 64/100/150/300 (benchmarks/bench_step.py)
#   published  every row of published_results.tsv: inclusion scrambler, published protocol (fp32)
#   designs    inclusion scrambler + random importance on the 42 design binder chains, published
#              protocol: the Spearman aim over all designs
#   nine       all nine methods on TR005257, Top7 and two designs, published protocol: the
#              faithfulness aims
#   seeds      (only when named) SEEDS_SET (default T1001@1.5) at each seed of SEEDS (default
#              "1 2 3"), inclusion scrambler, published protocol (fp32), 8 faithfulness samples:
#              where a row's published value lies in our seed spread
#   keras      (only when named) T1001 at 1.5 bits with the Keras port's instance norm, optimised
#              with and without trRosetta's dropout, bf16: is the row's gap the published Keras fit?
# Every benchmark run resumes per protein, per method and from a scrambler's checkpoint; the
# results come back as $OUT/issue7.tar.gz. Put that file in .device/results/ and call again to
# continue where the budget stopped. Back here, finish the alanine scans (tmol) and the summary:
#   tar xzf issue7.tar.gz -C bench/gpu && protscramble benchmark trrosetta <same arguments> \
#       --device cpu --out bench/gpu/<stage>
#
# Environment: BUDGET_S (seconds for all stages, default 500: a call may run 600), STEP_S (cap on
# each run of the profile and step stages, default 150), PUBLISHED_SET / DESIGNS_SET (the proteins of those stages, default
# all: e.g. PUBLISHED_SET=T1001@1,T1001@1.5,TR005257 for the rows no GPU run has finished), DEVICE (cuda),
# KIT (.device), PYTHON (python3), EXTRA (arguments appended to every benchmark run, e.g. a
# smaller protocol to try the script on a CPU).
set -uo pipefail
cd "$(dirname "$0")/../.."
KIT=${KIT:-.device}
DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-python3}
BUDGET_S=${BUDGET_S:-500}
EXTRA=${EXTRA:-}
OUT=${OUT:-/tmp/issue7_out}
WORK=$(mktemp -d /tmp/issue7.XXXX)
SITE=$(mktemp -d /tmp/issue7_site.XXXX)
START=$(date +%s)
mkdir -p "$OUT"
LOG="$OUT/issue7.log"

say() { echo "[$(( $(date +%s) - START )) s] $*" | tee -a "$LOG"; }
left() { echo $(( BUDGET_S - ($(date +%s) - START) )); }

"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" \
    "$KIT"/wheels/*.whl >>"$LOG" 2>&1 || { say "installing the kit's wheels failed"; exit 1; }
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export PROTSCRAMBLE_TRROSETTA_WEIGHTS="$PWD/$KIT/weights" PROTSCRAMBLE_SHARED_DATA="$PWD/$KIT/data"
export PROTSCRAMBLE_CACHE="$WORK/cache" MPLBACKEND=Agg
if [ -f "$KIT/results/issue7.tar.gz" ]; then
    tar xzf "$KIT/results/issue7.tar.gz" -C "$WORK" && say "continuing from $KIT/results/issue7.tar.gz"
fi

pack() {
    # results (and scrambler checkpoints, so a next call resumes), never the compile cache
    tar czf "$OUT/issue7.tar.gz.part" -C "$WORK" --exclude=./cache . && mv "$OUT/issue7.tar.gz.part" "$OUT/issue7.tar.gz"
    say "packed $(du -h "$OUT/issue7.tar.gz" | cut -f1) into \$OUT/issue7.tar.gz"
}
trap pack EXIT

bench() {  # bench STAGE ARGS...: one benchmark run under what is left of the budget
    local stage=$1; shift
    local t; t=$(left)
    if [ "$t" -lt 30 ]; then say "$stage: no time left, skipped"; return 0; fi
    say "$stage: starting (${t} s left)"
    # shellcheck disable=SC2086
    timeout --signal=INT --kill-after=20 "$t" "$PYTHON" -m protscramble.cli benchmark trrosetta \
        --device "$DEVICE" --out "$WORK/$stage" "$@" $EXTRA >>"$LOG" 2>&1
    local rc=$?
    say "$stage: exit $rc$([ $rc -eq 124 ] && echo ' (budget spent; resumes next call)')"
    [ -f "$WORK/$stage/summary.md" ] && cp "$WORK/$stage/summary.md" "$OUT/$stage.md"
    return 0
}

STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(env profile step published designs nine)
for stage in "${STAGES[@]}"; do
    case $stage in
    env)
        { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true
          "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
        } >>"$LOG" 2>&1
        say "env: $(tail -n 1 "$LOG")" ;;
    profile)
        for precision in fp32 bf16; do
            t=$(left); [ "$t" -gt "${STEP_S:-150}" ] && t=${STEP_S:-150}
            say "profile $precision: starting"
            calls=cycle; [ "$precision" = fp32 ] && calls=both  # fp32: per-cycle vs per-block calls, one process
            timeout "$t" "$PYTHON" benchmarks/profile_step.py --device "$DEVICE" --precision "$precision" \
                --block-calls "$calls" >>"$OUT/profile_step.txt" 2>&1
            say "profile $precision: exit $? ($(grep 'busy' "$OUT/profile_step.txt" | tail -n 1))"
        done ;;
    step)
        t=$(left); [ "$t" -gt "${STEP_S:-150}" ] && t=${STEP_S:-150}
        say "step: starting"
        timeout "$t" "$PYTHON" benchmarks/bench_step.py --device "$DEVICE" --lengths 64 100 150 300 \
            --samples 8 --repeats 5 --naive-source "$KIT/weights/tr_rosetta_pytorch.py" >"$OUT/bench_step.txt" 2>&1
        say "step: exit $? ($(grep -c . "$OUT/bench_step.txt") lines in \$OUT/bench_step.txt)" ;;
    published)
        bench published --proteins "${PUBLISHED_SET:-published}" --protocol published --methods scrambler_inclusion ;;
    designs)
        bench designs --proteins "${DESIGNS_SET:-designs}" --protocol published --methods scrambler_inclusion random ;;
    nine)
        bench nine --proteins TR005257,top7,sh3_r1_110_r2_15,pd1_r1_10_r2_0 --protocol published ;;
    seeds)
        for seed in ${SEEDS:-1 2 3}; do
            bench "seed$seed" --proteins "${SEEDS_SET:-T1001@1.5}" --protocol published \
                --methods scrambler_inclusion --seed "$seed" --faithfulness-samples 8
        done ;;
    keras)
        for d in "" --optimiser-dropout; do
            # shellcheck disable=SC2086
            bench "keras${d:+_dropout}" --proteins T1001@1.5 --protocol published --precision bf16 \
                --instance-norm keras $d --methods scrambler_inclusion --faithfulness-samples 8
        done ;;
    *)
        say "unknown stage $stage (env, profile, step, published, designs, nine, seeds, keras)"; exit 2 ;;
    esac
done
