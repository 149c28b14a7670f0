# Shared by the one-call device scripts (train/gpu_v2.sh, train/gpu_temporal.sh); source it after setting OUT.
# Installs the carried wheels the device image lacks, points multistyle at carry/ (`python -m benchmarks.carry`),
# starts $OUT/report.md and defines run_bench.
mkdir -p "$OUT" runs/gpu
if ls carry/wheels/*.whl >/dev/null 2>&1 && ! python3 -c "import kornia" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site carry/wheels/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} MULTISTYLE_DATA=$PWD/carry MULTISTYLE_TEST_DATA=$PWD/carry \
  MULTISTYLE_VGG_WEIGHTS=$PWD/carry/vgg19_fp16.safetensors PYTHONUNBUFFERED=1
REPORT=$OUT/report.md
{ date -u; nvidia-smi -L 2>/dev/null; python3 -c "import torch; print('torch', torch.__version__)"; } >> "$REPORT"

run_bench() {  # seconds, bench arguments...: one bench into the report, cut off after the seconds given
  local seconds=$1
  shift
  echo "## python -m benchmarks $*" >> "$REPORT"
  timeout "$seconds" python3 -m benchmarks "$@" --out-dir runs/gpu/bench >> "$REPORT" 2>&1 \
    || echo "(exit $?)" >> "$REPORT"
}
