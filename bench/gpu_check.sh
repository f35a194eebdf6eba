#!/usr/bin/env bash
# The GPU check (issue 11): build an environment from this repository, run the CUDA tests,
# time the `cifar` preset, train a short table1 reproduction in the time left, and write
# gpu_check.json + gpu_check.md (+ gpu_check.log, reproduce_results.*) to --out.
#
#   bench/gpu_check.sh [--dry] [--out DIR] [--data-dir DIR] [--budget-s S] [--work DIR]
#                      [--python PY]
#
#   --out       report folder (default: $OUT, else runs/gpu-check)
#   --data-dir  CIFAR-10 in torchvision's format, e.g. the carried .gpudata/cifar10 written by
#               bench/gpu_data.py (default: synthetic data, said so in the report)
#   --budget-s  wall-clock budget of the whole check, setup included (default 480 = 8 min)
#   --work      scratch folder: venv, runs, checkpoints (default: $TMPDIR or /tmp)
#   --python    interpreter that holds torch (default: python3)
#   --dry       CPU, toy sizes, CUDA tests skipped: proves the script (CI runs it)
#
# How to call it on a lent GPU and what it needs: bench/README.md.
set -u
cd "$(dirname "$0")/.." || exit 2
repo=$(pwd)
mode=gpu out=${OUT:-runs/gpu-check} data="" budget=480 work="" py=${PYTHON:-python3}
while [ $# -gt 0 ]; do
    case $1 in
        --dry) mode=dry ;;
        --out) out=$2; shift ;;
        --data-dir) data=$2; shift ;;
        --budget-s) budget=$2; shift ;;
        --work) work=$2; shift ;;
        --python) py=$2; shift ;;
        *) echo "gpu_check.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
    esac
    shift
done
start=$(date +%s)
deadline=$((start + budget))
work=${work:-${TMPDIR:-/tmp}/dimcollapse-gpu-check}
mkdir -p "$out" "$work" || exit 2
out=$(cd "$out" && pwd) work=$(cd "$work" && pwd)
log="$out/gpu_check.log"
echo "== gpu_check.sh $mode: budget $budget s, work $work, $(date -u +%FT%TZ)" > "$log"

# -- setup: a venv from this repository's own files, reusing the machine's torch ------------
# The machine's python3 may itself be a venv (on the H200 image: /opt/torch/.venv), and then
# --system-site-packages sees the base interpreter's packages, not that torch. So the new venv
# also lists the site-packages of the interpreter that made it, as plain paths in a .pth file.
# Nothing can be downloaded there: pip installs this project alone (--no-deps --no-index).
venv="$work/venv"
rm -rf "$venv"
if "$py" -m venv --without-pip --system-site-packages "$venv" >> "$log" 2>&1; then
    vpy="$venv/bin/python"
    site=$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    "$py" -c 'import site; print("\n".join(site.getsitepackages()))' \
        > "$site/_gpu_check_parent.pth"
    if timeout 180 "$vpy" -m pip install -q --no-deps --no-build-isolation --no-index \
            -e "$repo" >> "$log" 2>&1; then
        method=pip-editable
    else
        echo "pip install -e failed (above); a .pth file names $repo/src instead" >> "$log"
        echo "$repo/src" > "$site/_dimcollapse_src.pth"
        method=pth-src
    fi
else
    echo "venv creation failed (above); $py runs with PYTHONPATH=$repo/src" >> "$log"
    vpy=$py
    export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}"
    method=pythonpath
fi
if [ "$vpy" != "$py" ] && ! "$vpy" -c 'import torch' >> "$log" 2>&1; then
    echo "the venv cannot import torch (above); $py runs with PYTHONPATH=$repo/src" >> "$log"
    vpy=$py
    export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}"
    method=pythonpath
fi
where=$("$vpy" -c 'import os, dimcollapse; print(os.path.dirname(dimcollapse.__file__))' \
        2>> "$log")
status=ok
[ "$where" = "$repo/src/dimcollapse" ] || status=failed
printf '{"status": "%s", "method": "%s", "seconds": %s, "python": "%s", "dimcollapse": "%s"}\n' \
    "$status" "$method" "$(($(date +%s) - start))" "$vpy" "$where" > "$work/setup.json"
echo "setup: $status ($method), dimcollapse from $where" >> "$log"

# -- the phases: CUDA tests, timing, reproduction (each bounded; report after each) ----------
args=(--out "$out" --work "$work" --start "$start" --deadline "$deadline"
      --setup-json "$work/setup.json")
[ -n "$data" ] && args+=(--data-dir "$(cd "$data" 2>/dev/null && pwd || echo "$data")")
[ "$mode" = dry ] && args+=(--dry)
"$vpy" bench/gpu_check.py "${args[@]}"
rc=$?
echo "== done: exit $rc after $(($(date +%s) - start)) s" >> "$log"
cat "$out/gpu_check.md"
exit $rc
