#!/usr/bin/env bash
# The prepared GPU check (issue 15): everything a session with one NVIDIA GPU should measure, in one
# run of at most ~8 minutes, from a plain copy of the repository (PyTorch preinstalled, no pip, no
# internet; the package need not be installed and gradio is never imported).
#
#   benchmarks/gpu_check.sh [--plan] [OUTDIR]        OUTDIR defaults to $OUT
#
# Steps, each under its own time limit so that a slow one cannot starve the rest (the limits add up
# to GPU_CHECK_BUDGET_S, default 450 s):
#   1. the CUDA tests (pytest, when installed) and refcheck on CUDA at its documented tolerances,
#      with PyTorch's TF32 defaults and with TF32 off (cuDNN convolutions use TF32 by default);
#   2. the attention block on CUDA (benchmarks/bench_attention.py, N = 16384 .. 262144);
#   3. benchmarks/bench_pipeline.py --device cuda, float32 and --half, at 512, 1024 and 2048 px,
#      quality / scratch / HR, faces off and on: time and torch.cuda.max_memory_allocated per run;
#   4. everything (logs, JSON, summary.txt) into OUTDIR.
# --plan prints the steps with their commands and limits and exits, without needing a GPU.
# GPU_CHECK_STEPS=REGEX runs only the steps whose names match (e.g. 'bench_.*_2048' for a rerun).
# Golden sets: $OLDPHOTO_REFERENCE, else shared/reference inside the copy, else ../shared/reference.
# Exit status: 0 all steps passed, 1 some step failed or ran out of time, 2 usage, 3 no CUDA GPU.
set -u

usage() { sed -n '6p' "$0" | sed 's/^#  *//'; }

PLAN=0
OUTDIR=""
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --plan) PLAN=1 ;;
        -*) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
        *)
            if [ -n "$OUTDIR" ]; then echo "error: one output folder only (got '$OUTDIR' and '$1')" >&2; exit 2; fi
            OUTDIR="$1" ;;
    esac
    shift
done
OUTDIR="${OUTDIR:-${OUT:-}}"
if [ -z "$OUTDIR" ] && [ "$PLAN" = 0 ]; then
    echo "error: name an output folder (or set \$OUT)" >&2; usage >&2; exit 2
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$(command -v python3 || command -v python || echo python3)}"
# the package from this copy, not an installed one; gradio_app is left out on purpose (no gradio here)
export PYTHONPATH="$REPO/core${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1 OLDPHOTO_SKIP_MEMORY_CHECK=1
BUDGET="${GPU_CHECK_BUDGET_S:-450}"

REF=""
for cand in "${OLDPHOTO_REFERENCE:-}" "$REPO/shared/reference" "$REPO/../shared/reference"; do
    if [ -n "$cand" ] && [ -f "$cand/global/golden/index.json" ]; then REF="$(cd "$cand" && pwd)"; break; fi
done
[ -n "$REF" ] && export OLDPHOTO_REFERENCE="$REF"  # for the tests' fixtures too

# name | share of the budget (%) | command
STEPS=(
    "cuda_tests|10|$PY -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_half.py::test_restorer_half_runs_the_whole_pipeline tests/test_pipeline.py::test_auto_device_is_cpu_without_cuda"
    "refcheck_global_cuda|8|$PY -m oldphoto.refcheck $REF/global/golden --device cuda"
    "refcheck_face_cuda|8|$PY -m oldphoto.refcheck $REF/face/golden --device cuda"
    "refcheck_global_cuda_no_tf32|5|$PY -m oldphoto.refcheck $REF/global/golden --device cuda --no-tf32"
    "attention_cuda|5|$PY benchmarks/bench_attention.py --device cuda --n 16384 25600 65536 262144 --repeat 3"
)
for size in 512 1024 2048; do
    case $size in 512) share=8 ;; 1024) share=10 ;; *) share=14 ;; esac
    for prec in float32 half; do
        flag=$([ "$prec" = half ] && echo " --half" || echo "")
        STEPS+=("bench_${prec}_${size}|$share|$PY benchmarks/bench_pipeline.py --device cuda$flag --sizes $size --modes quality scratch hr --faces off on --mask detect --json \$OUTDIR/bench_${prec}_${size}.json")
    done
done

if [ "$PLAN" = 1 ]; then
    echo "repo: $REPO"; echo "python: $PY"; echo "PYTHONPATH=$PYTHONPATH"
    echo "golden sets: ${REF:-NOT FOUND (refcheck steps will fail)}"; echo "budget: $BUDGET s"
    for s in "${STEPS[@]}"; do
        IFS='|' read -r name share cmd <<<"$s"
        echo "$name [$((BUDGET * share / 100)) s]: $cmd"
    done
    exit 0
fi

mkdir -p "$OUTDIR" || { echo "error: cannot create $OUTDIR" >&2; exit 2; }
OUTDIR="$(cd "$OUTDIR" && pwd)"
SUMMARY="$OUTDIR/summary.txt"
: >"$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }

probe="$("$PY" -c "import torch; print('gpu' if torch.cuda.is_available() else 'none')" 2>&1 | tail -n 1)"
if [ "$probe" != gpu ]; then
    if [ "$probe" = none ]; then
        say "error: no CUDA GPU visible to PyTorch ($PY): this check needs one NVIDIA GPU; nothing was measured."
    else
        say "error: $PY cannot import PyTorch ($probe); set PYTHON to the interpreter that has it. Nothing was measured."
    fi
    exit 3
fi

cd "$REPO" || exit 2
say "gpu_check $(date -u +%FT%TZ) repo $REPO budget ${BUDGET}s"
"$PY" - <<'EOF' 2>&1 | tee -a "$SUMMARY"
import importlib.util, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0))
print("cudnn", torch.backends.cudnn.version(), "cudnn TF32", torch.backends.cudnn.allow_tf32,
      "matmul TF32", torch.backends.cuda.matmul.allow_tf32)
missing = [m for m in ("numpy", "PIL", "safetensors", "pytest") if importlib.util.find_spec(m) is None]
print("missing modules:", ", ".join(missing) or "none",
      "(safetensors: seeded weights are made in memory instead; pytest: the tests step fails)" if missing else "")
EOF
command -v nvidia-smi >/dev/null && nvidia-smi >"$OUTDIR/nvidia-smi.txt" 2>&1
[ -n "$REF" ] || say "warning: golden sets not found (set OLDPHOTO_REFERENCE): the refcheck steps fail"

START=$SECONDS
FAILED=0
for s in "${STEPS[@]}"; do
    IFS='|' read -r name share cmd <<<"$s"
    [[ "$name" =~ ${GPU_CHECK_STEPS:-.} ]] || continue
    cmd="${cmd//\$OUTDIR/$OUTDIR}"
    limit=$((BUDGET * share / 100))
    left=$((BUDGET - (SECONDS - START)))
    [ "$limit" -gt "$left" ] && limit=$left
    if [ "$limit" -lt 5 ]; then say "SKIP  $name: the budget is spent"; FAILED=1; continue; fi
    t0=$SECONDS
    timeout --kill-after=5 "$limit" bash -c "$cmd" >"$OUTDIR/$name.log" 2>&1
    rc=$?
    dt=$((SECONDS - t0))
    case $rc in
        0) say "PASS  $name (${dt}s)" ;;
        124|137) say "TIME  $name: stopped at its ${limit}s limit (partial results in $name.log)"; FAILED=1 ;;
        *) say "FAIL  $name (exit $rc, ${dt}s): $(tail -n 2 "$OUTDIR/$name.log" | tr '\n' ' ')"; FAILED=1 ;;
    esac
    # the figures worth reading in the summary itself
    grep -E '^(N=|[0-9]+ passed|FAIL |device cuda)|  done ' "$OUTDIR/$name.log" | sed 's/^/    /' >>"$SUMMARY"
done
say "total $((SECONDS - START))s; results in $OUTDIR"
exit $FAILED
