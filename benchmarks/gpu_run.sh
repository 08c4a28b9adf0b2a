#!/usr/bin/env bash
# The one prepared GPU measurement (fast profile, one H100/H200), run once through the device tool.
#
# What it measures, stage by stage, each under `timeout`, each writing its JSON into $OUT as soon
# as it ends (a run cut short still reports what it finished):
#   1. machine  (GPU_RUN_FACTS_S, 60 s): the torchattacks wheel installed from .gpu/whl, CIFAR-10
#      unpacked from .gpu/cifar10-jpeg.tar.xz (checked against its manifest), nvidia-smi, torch,
#      CUDA, cuDNN                                                              -> machine.json
#   2. bench_pgd (GPU_RUN_PGD_S, 60 s): L2 PGD-20 against torchattacks' PGDL2 on the same model and
#      batch, advlib in fp32, bf16 and bf16 stopping on success, every result checked in fp32
#                                                                               -> bench_pgd.json
#   3. bench_construct (GPU_RUN_CONSTRUCT_S; 0 = skipped, the default on the GPU: stage 4 measures
#      the real construction's rate): matching and targeted PGD against a bare loop and the model's
#      own forward + backward                                                   -> bench_construct.json
#   4. fast_pipeline (what is left of GPU_RUN_TOTAL_S, 570 s, after the stages above and 20 s for
#      the end): source models (the standard one's time to 93%), the four sets on all 50k images,
#      the matching rate against the model's own fwd+bwd, a model per set and its matched
#      control, every model evaluated on the full 10k test set (headline attack, masks,
#      intervals), the claims and the goals      -> pipeline.json, results.json (`python -m advlib table`)
#   and after every stage: run.json (each stage's budget, seconds, exit status, whether it timed
#   out) and log.txt (the whole console output), with no machine's absolute paths. 7 files at most
#   (the device tool brings back 8).
#
# Before the call, once, here, from the checkout's root (.gpu/ is git-ignored; it travels by carry):
#   mkdir -p .gpu/whl
#   python -m benchmarks.pack_cifar pack ../shared/data/cifar10-jpeg.zip .gpu/cifar10-jpeg.tar.xz  # 18.6 MB, ~35 s
#   python -m pip download --no-deps --only-binary=:all: -d .gpu/whl torchattacks==3.3.0             # 156 kB
#   git describe --always --dirty >.gpu/commit   # the device copy has no .git: the reports name this commit
#   du -cb .gpu/cifar10-jpeg.tar.xz .gpu/whl/* | tail -1; git ls-files -z | xargs -0 du -cb | tail -1
#   # the two together must stay under 64 MiB (67,108,864 bytes): ~18.7 MB + ~5.5 MB today. The shared
#   # zip itself (63.2 MB) does not fit beside the repository; the tar.xz holds the same JPEG bytes,
#   # and unpacks into a zip identical to it (its sha256 is checked: machine.json "cifar").
# The call (the device sends the session's own checkout, so this script must be in it):
#   run(command="bash benchmarks/gpu_run.sh", carry=[".gpu"], timeout_s=600)
# 600 s of command plus the machine's start stays inside one session's 15 minutes; there is no time
# for a second full run, so read run.json and log.txt before changing anything.
#
# Knobs (environment), so the same script runs on a CPU at smoke size (tests/test_gpu_script.py):
#   GPU_RUN_PROFILE=smoke GPU_RUN_DEVICE=cpu GPU_RUN_CIFAR=sample OUT=/tmp/x bash benchmarks/gpu_run.sh
#   OUT (default runs/gpu), GPU_RUN_PROFILE (fast), GPU_RUN_DEVICE (cuda), GPU_RUN_CIFAR (sample, a
#   zip, a folder, or a pack_cifar tar.xz; default .gpu/cifar10-jpeg.tar.xz, else .gpu/cifar10-jpeg.zip;
#   never torchvision: the device has no internet), GPU_RUN_ASSETS (.gpu), GPU_RUN_WORK (scratch:
#   run directory, unpacked data, wheels; /tmp/gpu_run), GPU_RUN_PYTHON (python3), GPU_RUN_PARAMS
#   (extra profile overrides for the pipeline, "FIELD VALUE ..." pairs), GPU_RUN_TOTAL_S and the
#   stage budgets above (GPU_RUN_PGD_S or GPU_RUN_CONSTRUCT_S 0 skips that stage; GPU_RUN_PIPELINE_S
#   replaces "what is left").
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 2   # the repository root: the scripts are modules of the benchmarks package
REPO=$PWD
OUT=${OUT:-runs/gpu}
PROFILE=${GPU_RUN_PROFILE:-fast}
DEVICE=${GPU_RUN_DEVICE:-cuda}
ASSETS=${GPU_RUN_ASSETS:-.gpu}
WORK=${GPU_RUN_WORK:-/tmp/gpu_run}
PY=${GPU_RUN_PYTHON:-python3}
PARAMS=${GPU_RUN_PARAMS:-}
TOTAL_S=${GPU_RUN_TOTAL_S:-570}
FACTS_S=${GPU_RUN_FACTS_S:-60}
PGD_S=${GPU_RUN_PGD_S:-60}
END_S=20   # the pipeline's kill grace (10 s) and the last bundle
if [ "$PROFILE" = smoke ]; then
    CONSTRUCT_S=${GPU_RUN_CONSTRUCT_S:-60}
    PGD_ARGS="--arch tiny --batch 32 --steps 5 --repeats 2 --train-epochs 1 --threads 1 --variants fp32,bf16-stop"
    CONSTRUCT_ARGS="--archs tiny --n 32 --steps 3 --repeats 1 --threads 1"
else
    CONSTRUCT_S=${GPU_RUN_CONSTRUCT_S:-0}
    PGD_ARGS="--arch resnet18 --batch 512 --steps 20 --repeats 3 --variants fp32,bf16,bf16-stop"
    CONSTRUCT_ARGS="--archs airbench --n 5000 --batch 5000 --steps 20 --repeats 2"
fi
if [ -z "${GPU_RUN_CIFAR:-}" ]; then
    GPU_RUN_CIFAR=$ASSETS/cifar10-jpeg.tar.xz
    [ -e "$GPU_RUN_CIFAR" ] || GPU_RUN_CIFAR=$ASSETS/cifar10-jpeg.zip
fi
mkdir -p "$OUT" "$WORK" || exit 2
OUT=$(cd "$OUT" && pwd)
WORK=$(cd "$WORK" && pwd)
LOG=$WORK/log.raw
STAGES=$WORK/stages.tsv
: >"$LOG"
: >"$STAGES"
START=$(date +%s)
export PYTHONUNBUFFERED=1 PYTHONPATH=$WORK/site:$REPO${PYTHONPATH:+:$PYTHONPATH}
[ -f "$ASSETS/commit" ] && export GPU_RUN_COMMIT=$(head -c 64 "$ASSETS/commit" | tr -dc 'A-Za-z0-9+._-')

say() { echo "[gpu_run] $*" | tee -a "$LOG"; }

bundle() {  # run.json (the stages so far) and log.txt (the console, machine paths replaced) into $OUT
    "$PY" - "$OUT" "$WORK" "$REPO" "$ASSETS" "$STAGES" "$LOG" "$PROFILE" "$DEVICE" "$TOTAL_S" "$START" <<'EOF'
import json, os, re, sys, time
out, work, repo, assets, stages, log, profile, device, total, start = sys.argv[1:]
rows = []
for line in open(stages):
    name, budget, rc, seconds = line.rstrip("\n").split("\t")
    rows.append({"stage": name, "budget_s": int(budget), "seconds": float(seconds), "rc": int(rc),
                 "timed_out": int(rc) in (124, 137), "ok": rc == "0"})
names = {os.path.abspath(assets): "<assets>", sys.prefix: "<python>", sys.base_prefix: "<python>",
         os.path.expanduser("~"): "~", repo: "<repo>", work: "<work>", out: "<out>"}
text = open(log, errors="replace").read()
for root in sorted(set(names) - {"", "/"}, key=len, reverse=True):  # the longest first: nested roots
    text = text.replace(root, names[root])
# anything else that looks like a machine's absolute path keeps only its last part
text = re.sub(r"(?<![\w<>.~-])/(?:tmp|work|home|root|opt|usr|var|mnt|srv|data|scratch)(?:/[\w.+-]+)+",
              lambda m: "<path>/" + m.group(0).rsplit("/", 1)[-1], text)
files = sorted(set(os.listdir(out)) | {"run.json", "log.txt"})
record = {"profile": profile, "device": device, "commit": os.environ.get("GPU_RUN_COMMIT"),
          "total_budget_s": int(total), "elapsed_s": round(time.time() - int(start), 1), "stages": rows, "files": files}
json.dump(record, open(os.path.join(out, "run.json"), "w"), indent=1)
open(os.path.join(out, "log.txt"), "w").write(text)
EOF
}

stage() {  # stage NAME BUDGET_S CMD...: CMD under timeout, its output logged; its status into run.json
    local name=$1 budget=$2 t0 rc ms lines
    shift 2
    t0=$(date +%s%N)
    say "=== $name (budget ${budget} s) ==="
    lines=$(wc -l <"$LOG")
    timeout -k 10 "$budget" "$@" >>"$LOG" 2>&1
    rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    printf '%s\t%s\t%s\t%d.%03d\n' "$name" "$budget" "$rc" $((ms / 1000)) $((ms % 1000)) >>"$STAGES"
    if [ "$rc" != 0 ]; then  # the reply shows only this script's own output: the end of the stage's
        tail -n +$((lines + 1)) "$LOG" | tail -n 15
        say "$name: exit status $rc$( [ "$rc" = 124 ] && echo ' (timed out)')"
    fi
    bundle
    return "$rc"
}

machine() {  # stage 1: wheels, data, the machine's facts
    if compgen -G "$ASSETS/whl/*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" \
            "$ASSETS"/whl/*.whl || return 1
    else
        echo "no wheels in $ASSETS/whl: torchattacks must be installed already"
    fi
    case "$GPU_RUN_CIFAR" in
        torchvision) echo "GPU_RUN_CIFAR=torchvision: refused (the device has no internet)"; return 1 ;;
        sample) CIFAR_SRC=sample; echo '{"source": "sample"}' >"$WORK/cifar.json" ;;
        *.tar.xz) CIFAR_SRC=$WORK/cifar10-jpeg.zip
                  "$PY" -m benchmarks.pack_cifar unpack "$GPU_RUN_CIFAR" "$CIFAR_SRC" --json "$WORK/cifar.json" || return 1 ;;
        *) [ -e "$GPU_RUN_CIFAR" ] || { echo "GPU_RUN_CIFAR=$GPU_RUN_CIFAR: not found"; return 1; }
           CIFAR_SRC=$GPU_RUN_CIFAR; echo "{\"source\": \"$(basename "$GPU_RUN_CIFAR")\"}" >"$WORK/cifar.json" ;;
    esac
    echo "$CIFAR_SRC" >"$WORK/cifar_src"
    "$PY" - "$OUT/machine.json" "$WORK/cifar.json" "$DEVICE" <<'EOF'
import json, os, platform, shutil, subprocess, sys
out, cifar, device = sys.argv[1:]
rec = {"python": platform.python_version(), "cpus": os.cpu_count(), "os": platform.platform(),
       "cifar": json.load(open(cifar)), "asked_device": device, "commit": os.environ.get("GPU_RUN_COMMIT")}
if shutil.which("nvidia-smi"):
    q = "name,memory.total,driver_version,clocks.max.sm,power.limit,temperature.gpu,utilization.gpu"
    r = subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv"], capture_output=True, text=True, timeout=30)
    rec["nvidia_smi"] = r.stdout.strip().splitlines()
import torch
rec.update(torch=torch.__version__, torch_cuda=torch.version.cuda, cuda_available=torch.cuda.is_available(),
           cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
           threads=torch.get_num_threads())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    rec.update(gpu=p.name, capability=f"{p.major}.{p.minor}", gpu_memory_gib=round(p.total_memory / 2**30, 1),
               multiprocessors=p.multi_processor_count)
for mod in ("torchattacks", "scipy", "numpy", "PIL"):
    try:
        rec[mod] = __import__(mod).__version__
    except Exception as e:  # recorded, not fatal here: the stage that needs it fails and says so
        rec[mod] = f"missing: {type(e).__name__}"
json.dump(rec, open(out, "w"), indent=1)
print(json.dumps({k: rec[k] for k in ("torch", "torch_cuda", "cuda_available", "torchattacks")}))
EOF
    [ "$DEVICE" = cpu ] || "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)" \
        || { echo "GPU_RUN_DEVICE=$DEVICE but torch sees no CUDA device"; return 1; }
}

say "profile $PROFILE, device $DEVICE, budget $TOTAL_S s, cifar $(basename "$GPU_RUN_CIFAR")"
export -f machine say
export ASSETS WORK PY GPU_RUN_CIFAR OUT DEVICE LOG
stage machine "$FACTS_S" bash -c machine || { say "no machine facts: stopping"; exit 1; }
CIFAR_SRC=$(cat "$WORK/cifar_src")

if [ "$PGD_S" -gt 0 ]; then
    stage bench_pgd "$PGD_S" "$PY" -m benchmarks.bench_pgd --device "$DEVICE" $PGD_ARGS --out "$OUT/bench_pgd.json"
fi

if [ "$CONSTRUCT_S" -gt 0 ]; then
    stage bench_construct "$CONSTRUCT_S" "$PY" -m benchmarks.bench_construct --device "$DEVICE" $CONSTRUCT_ARGS \
        --fwd-bwd --out-file "$OUT/bench_construct.json"
fi

LEFT=${GPU_RUN_PIPELINE_S:-$(( TOTAL_S - ($(date +%s) - START) - END_S ))}
[ "$LEFT" -ge 5 ] || LEFT=5   # (timeout 0 would mean no limit at all)
P=()
for kv in $PARAMS; do P+=("$kv"); done
[ $(( ${#P[@]} % 2 )) = 0 ] || { say "GPU_RUN_PARAMS must be FIELD VALUE pairs: '$PARAMS'"; exit 2; }
PARGS=()
for ((i = 0; i < ${#P[@]}; i += 2)); do PARGS+=(-p "${P[i]}" "${P[i+1]}"); done
stage fast_pipeline "$LEFT" "$PY" -m benchmarks.fast_pipeline --profile "$PROFILE" --cifar "$CIFAR_SRC" \
    --run-dir "$WORK/run" -p device "$DEVICE" ${PARGS[@]+"${PARGS[@]}"} --out "$OUT/pipeline.json" --results-out "$OUT/results.json"

# the last lines of the reply: what was measured
"$PY" - "$OUT" <<'EOF' | tee -a "$LOG"
import json, os, sys
out = sys.argv[1]
def load(name):
    try:
        return json.load(open(os.path.join(out, name)))
    except (OSError, ValueError):
        return None
from benchmarks.fast_pipeline import render
pipe = load("pipeline.json")
print(render(pipe) if pipe else "fast_pipeline: no report")
pgd = load("bench_pgd.json")
for v in (pgd or {}).get("variants") or ([pgd] if pgd else []):
    print(f"bench_pgd {v.get('variant', 'fp32')}: {v.get('speed_ratio', 0):.2f}x torchattacks, robust acc "
          f"{v.get('robust_acc', v.get('robust_acc_advlib'))} vs {pgd['robust_acc_torchattacks']} (fp32 check)")
for r in (load("bench_construct.json") or {}).get("rows", []):
    print(f"bench_construct {r['arch']} {r['task']}: {r['img_steps_per_s']:,.0f} img·steps/s, ratio {r['ratio']:.2f} "
          f"vs bare loop, {100 * r.get('fraction_of_fwd_bwd', 0):.0f}% of fwd+bwd")
EOF
say "files in \$OUT: $(ls "$OUT" | tr '\n' ' '); $(( $(date +%s) - START )) s in all"
bundle
