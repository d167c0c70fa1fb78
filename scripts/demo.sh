#!/usr/bin/env bash
# make demo: d2l.ai's BatchNorm chapter on Kiln. Trains LeNet (sigmoid, no
# BatchNorm) and the same LeNet with BatchNorm on Fashion-MNIST with their
# train sections, for the same number of epochs, and shows both runs side by
# side (a table from their metrics CSVs, one SVG of both curves); then builds
# lenet_bn's BatchNorm-folded inference program from its checkpoint,
# classifies the test set with it (the same accuracy as the trainer's
# evaluation) and times it per image.
#
#   scripts/demo.sh [BUILD_DIR]        (make demo; DEMO_EPOCHS=N make demo)
#
# Everything goes to BUILD_DIR/demo/, replaced on every run. About 2 minutes
# on 2 cores with the default 5 epochs (the train sections' own).
set -euo pipefail

cd "$(dirname "$0")/.."
build=${1:-build}
kilnc=$build/bin/kilnc
out=$build/demo
data=/usr/share/datasets/fashion-mnist
epochs=${DEMO_EPOCHS:-5}
if ! [[ $epochs =~ ^[1-9][0-9]*$ ]]; then
  echo "demo: DEMO_EPOCHS must be a whole number >= 1, not '$epochs'" >&2
  exit 2
fi
for f in "$kilnc" "$data/t10k-images-idx3-ubyte.gz" "$data/t10k-labels-idx1-ubyte.gz"; do
  [[ -e $f ]] || { echo "demo: $f is missing (make build installs it)" >&2; exit 1; }
done
begin=$(date +%s)
rm -rf "$out"
mkdir -p "$out"

section() { printf '\n== %s\n' "$*"; }
now() { date +%s.%N; }
# The trainer's last line: "test: loss 0.405112, accuracy 85.77% (10000 images)".
test_field() { sed -n "s/^test: loss \([0-9.]*\), accuracy \([0-9.]*\)%.*/\\$2/p" "$1"; }

section "the network: LeNet-5 with BatchNorm (models/lenet_bn.kiln; models/lenet.kiln is the same without it)"
"$kilnc" check models/lenet_bn.kiln

declare -A wall
for model in lenet lenet_bn; do
  section "kilnc train models/$model.kiln --epochs $epochs (Fashion-MNIST, the train section's SGD)"
  t0=$(now)
  "$kilnc" train "models/$model.kiln" --epochs "$epochs" --no-progress \
    -o "$out/$model.safetensors" --metrics "$out/$model.csv" | tee "$out/$model.log"
  wall[$model]=$(echo "$t0 $(now)" | awk '{ printf "%.0f", $2 - $1 }')
done

section "per epoch, side by side (from $out/lenet.csv and $out/lenet_bn.csv)"
/usr/bin/python3 scripts/demo_table.py \
  "lenet (sigmoid, no BatchNorm)=$out/lenet.csv" "lenet_bn (with BatchNorm)=$out/lenet_bn.csv"

section "after $epochs epochs, on the 10000 test images"
printf '%-32s %10s %14s %12s %18s\n' run "test loss" "test accuracy" "train s" "wall s (+compile)"
for model in lenet lenet_bn; do
  train_s=$(awk -F, 'NR > 1 { s += $6 } END { printf "%.1f", s }' "$out/$model.csv")
  printf '%-32s %10s %13s%% %12s %18s\n' "$model" "$(test_field "$out/$model.log" 1)" \
    "$(test_field "$out/$model.log" 2)" "$train_s" "${wall[$model]}"
done

"$kilnc" plot "$out/lenet.csv" "$out/lenet_bn.csv" \
  --label "lenet (sigmoid, no BatchNorm)" --label "lenet_bn (with BatchNorm)" \
  --title "LeNet on Fashion-MNIST, with and without BatchNorm" -o "$out/curves.svg"
echo "curves of both runs: $out/curves.svg"

section "lenet_bn's learned BatchNorm scale γ (weight) and shift β (bias), kilnc show"
"$kilnc" show "$out/lenet_bn.safetensors" > "$out/lenet_bn.show.txt"
# The BatchNorm layers are the ones with running statistics.
awk 'NR == FNR { if ($1 ~ /\.running_mean$/) { p = $1; sub(/\.running_mean$/, "", p); bn[p] = 1 } next }
     { n = $1; sub(/\.(weight|bias)$/, "", n)
       if ((n in bn) && n != $1)
         printf "%-10s %-14s %-6s %10.4f %10.4f %10.4f\n", n,
                ($1 ~ /weight$/ ? "gamma (weight)" : "beta (bias)"), $2, $4, $5, $6 }' \
  "$out/lenet_bn.show.txt" "$out/lenet_bn.show.txt" |
  { printf '%-10s %-14s %-6s %10s %10s %10s\n' layer "" shape min mean max; sort -k1,1V -k2,2r; }
echo "(every tensor of the checkpoint: $out/lenet_bn.show.txt)"

section "kilnc build models/lenet_bn.kiln --weights $out/lenet_bn.safetensors: the inference program"
# The checkpoint also holds the optimizer's state (momentum buffers, step),
# which the build recognises and leaves out.
if ! "$kilnc" build models/lenet_bn.kiln --weights "$out/lenet_bn.safetensors" \
    --report -o "$out/lenet_bn" 2> "$out/lenet_bn.build.log"; then
  cat "$out/lenet_bn.build.log" >&2
  exit 1
fi
sed -n 's/.*remark: //p' "$out/lenet_bn.build.log" | sort -V
echo "the program: $out/lenet_bn ($(du -k "$out/lenet_bn" | cut -f1) KiB, weights embedded)"

section "$out/lenet_bn --images t10k-images --labels t10k-labels (the test set)"
"$out/lenet_bn" --images "$data/t10k-images-idx3-ubyte.gz" --labels "$data/t10k-labels-idx1-ubyte.gz" \
  | tee "$out/lenet_bn.test.log"
program_acc=$(sed -n 's/^accuracy: \([0-9.]*\)%.*/\1/p' "$out/lenet_bn.test.log")
trainer_acc=$(test_field "$out/lenet_bn.log" 2)
status=0
if [[ $program_acc == "$trainer_acc" ]]; then
  echo "the folded program's accuracy ${program_acc}% = the trainer's evaluation ${trainer_acc}%"
else
  echo "MISMATCH: the folded program classifies ${program_acc}% correctly, the trainer's evaluation ${trainer_acc}%" >&2
  status=1
fi

section "latency of the folded program (--bench: median of many calls)"
for batch in 1 64; do
  "$out/lenet_bn" --bench --batch "$batch" | tee -a "$out/lenet_bn.bench.log" |
    awk -v b="$batch" '{ for (i = 1; i < NF; ++i) if ($i == "median_us") m = $(i + 1) }
      END { printf "batch %2d: %9.2f µs per call, %7.2f µs per image\n", b, m, m / b }'
done

section "done in $(($(date +%s) - begin)) s; files in $out/"
echo "  lenet.csv, lenet_bn.csv       the metrics of every epoch (docs/metrics.md)"
echo "  curves.svg                    both runs' loss and accuracy curves"
echo "  lenet.safetensors, lenet_bn.safetensors  the checkpoints (state_dict and optimizer state)"
echo "  lenet_bn, lenet_bn.h          the BatchNorm-folded inference program and its header"
echo "  *.log, lenet_bn.show.txt      what each step printed"
exit "$status"
