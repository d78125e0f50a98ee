#!/usr/bin/env bash
# scripts/plot.py on hand-written inputs (ctest label `plots`): a run folder (metrics.csv, report.md,
# config.json and a saved `spikegrad attack` table with transfer, AutoAttack-stage and CW rows) gives non-empty
# PNGs and one Plots section that a second run replaces rather than repeats; the sweep and scatter
# subcommands draw their CSVs, and so does trend (MI vs robust accuracy); bad input is a one-line error naming the file and column, exit 2, no traceback.
# matplotlib is optional for the project: without a python3 that has it, the test exits 77 (ctest SKIP).
# Usage: test_plot.sh [path/to/plot.py]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
plot=${1:-$here/../../scripts/plot.py}

# The first python3 with matplotlib (scripts/plot_python.sh, beside plot.py).
if ! python=$(bash "$(dirname "$plot")/plot_python.sh"); then
  echo "SKIP: no python3 with matplotlib (Debian: apt-get install python3-matplotlib)"
  exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
# A PNG file: at least 1 KB and the PNG signature (a blank or truncated file would not be).
expect_png() {
  [ -f "$1" ] || { fail "$1 was not written"; return; }
  [ "$(stat -c %s "$1")" -gt 1024 ] || fail "$1 is under 1 KB"
  [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "$1 is not a PNG"
}
# expect_error "what the message must contain" plot.py args...: exit 2, that message, no traceback.
expect_error() {
  local needle=$1
  shift
  "$python" "$plot" "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  [ "$rc" -eq 2 ] || fail "plot.py $* exited $rc, expected 2"
  grep -qF -- "$needle" "$work/err" || fail "plot.py $*: stderr lacks '$needle': $(cat "$work/err")"
  ! grep -q Traceback "$work/err" || fail "plot.py $*: printed a traceback"
}

cp -r "$here/run" "$work/run"
"$python" "$plot" run "$work/run" || fail "plot.py run exited $?"
for png in training_curves mi robustness; do expect_png "$work/run/plots/$png.png"; done
cp "$work/run/report.md" "$work/report.first"
"$python" "$plot" run "$work/run" >/dev/null || fail "plot.py run (second time) exited $?"
cmp -s "$work/report.first" "$work/run/report.md" || fail "a second run changed report.md: not idempotent"
[ "$(grep -c '^## Plots$' "$work/run/report.md")" -eq 1 ] || fail "report.md holds the Plots heading not exactly once"
for link in plots/training_curves.png plots/mi.png plots/robustness.png; do
  grep -qF "]($link)" "$work/run/report.md" || fail "report.md does not link $link"
done
# The trainer's report comes through unchanged, above the section.
head -n "$(wc -l <"$here/run/report.md")" "$work/run/report.md" | cmp -s - "$here/run/report.md" ||
  fail "the report's own text changed"
# A run that has not finished has no report.md: plot.py must not create one (the trainer reads it as "done").
mkdir "$work/unfinished" && cp "$here/run/metrics.csv" "$work/unfinished/"
"$python" "$plot" run "$work/unfinished" >/dev/null || fail "plot.py run on an unfinished run exited $?"
[ ! -e "$work/unfinished/report.md" ] || fail "plot.py created report.md in an unfinished run"

# What the saved `spikegrad attack` table gives: eps in both notations, GN by its std, the transfer table
# prefixed; CW (no eps) and AutoAttack's per-stage rows left out.
expected="fgsm 0.0 85.0|pgd 0.0 85.0|gn (noise std) 0.0 85.0|fgsm 4.0 77.5|pgd 4.0 78.0|gn (noise std) 4.0 84.0|\
autoattack 8.0 70.0|fgsm 8.0 74.0|transfer fgsm 0.0 85.0|transfer fgsm 4.0 82.0"
parsed=$("$python" -B -c "
import importlib.util, sys
spec = importlib.util.spec_from_file_location('plot', sys.argv[1])
plot = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot)
print('|'.join(f'{a} {round(e * 255, 3)} {r}' for a, e, r, n in plot.read_attack_table(sys.argv[2])))
" "$plot" "$here/run/attack_sweep.md")
[ "$parsed" = "$expected" ] || fail "attack table parsed as '$parsed', expected '$expected'"

"$python" "$plot" sweep "$here/sweep.csv" "$here/run/attack_sweep.md" -o "$work/sweep.png" >/dev/null ||
  fail "plot.py sweep exited $?"
expect_png "$work/sweep.png"
"$python" "$plot" scatter "$here/sparsity.csv" -o "$work/sparsity.png" >/dev/null || fail "plot.py scatter exited $?"
expect_png "$work/sparsity.png"
# The MI-robustness trend (scripts/mi_trend.sh's trend.csv): two lambdas, two epochs each.
printf 'lambda,epoch,test_mi_bits,robust_acc,clean_acc,attack,eps\n0,1,0.91,12.5,80,fgsm,8/255\n0,2,0.95,10.0,84,fgsm,8/255\n0.5,1,0.40,20.0,78,fgsm,8/255\n0.5,2,0.35,22.5,81,fgsm,8/255\n' >"$work/trend.csv"
"$python" "$plot" trend "$work/trend.csv" -o "$work/trend.png" >/dev/null || fail "plot.py trend exited $?"
expect_png "$work/trend.png"

# Bad input: each names the file and what was missing or wrong.
printf 'epoch,lr,ce,train_acc\n1,0.1,0.5,50\n' >"$work/no_loss.csv"
mkdir "$work/bad_run" && cp "$work/no_loss.csv" "$work/bad_run/metrics.csv"
expect_error "metrics.csv: missing column loss" run "$work/bad_run"
expect_error "no metrics.csv" run "$work"
expect_error "not a folder" run "$work/nowhere"
printf 'model,sparsity,clean_acc\nm,0.5,80\n' >"$work/scatter_bad.csv"
expect_error "scatter_bad.csv: missing column robust_acc" scatter "$work/scatter_bad.csv" -o "$work/x.png"
printf 'model,sparsity,clean_acc,robust_acc\nm,half,80,70\n' >"$work/scatter_text.csv"
expect_error "scatter_text.csv line 2, column sparsity: expected a number, got 'half'" scatter "$work/scatter_text.csv"
printf 'model,sparsity,clean_acc,robust_acc\nm,1.5,80,70\n' >"$work/scatter_range.csv"
expect_error "expected a fraction in [0, 1], got 1.5" scatter "$work/scatter_range.csv"
printf 'attack,robust_acc\npgd,70\n' >"$work/sweep_bad.csv"
expect_error "sweep_bad.csv: missing column eps" sweep "$work/sweep_bad.csv" -o "$work/x.png"
printf 'no table here\n' >"$work/empty.md"
expect_error "empty.md: no attack table" sweep "$work/empty.md" -o "$work/x.png"
expect_error "missing.csv: cannot read" sweep "$work/missing.csv" -o "$work/x.png"
printf 'lambda,epoch,robust_acc\n0,1,50\n' >"$work/trend_bad.csv"
expect_error "trend_bad.csv: missing column test_mi_bits" trend "$work/trend_bad.csv" -o "$work/x.png"
printf 'lambda,epoch,test_mi_bits,robust_acc\n0,1,0.5,150\n' >"$work/trend_range.csv"
expect_error "trend_range.csv line 2, column robust_acc: expected a percentage in [0, 100], got 150.0" trend \
  "$work/trend_range.csv" -o "$work/x.png"
[ ! -e "$work/x.png" ] || fail "a failed plot still wrote its PNG"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "plot.py: all checks passed"
