#!/usr/bin/env bash
# scripts/reproduce.sh on its two-row toy table (issue 15), against the real binary on synthetic data:
#   1. the table has both rows, and every "mean ± std" cell equals the mean and sample standard deviation of
#      the runs' own results.csv (recomputed here, two-pass);
#   2. a second invocation trains nothing (every run reused, results.csv untouched) and prints the same table;
#   3. a run whose results were lost after training is resumed (--resume writes its report again), with the
#      same numbers;
#   4. bad arguments stop with exit 2 and a message naming them.
#
#   tests/scripts/test_reproduce.sh path/to/spikegrad path/to/write_synthetic_idx
# Registered in ctest as reproduce_toy (label slow; about a minute on 2 cores).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SG=$(realpath "$1")
WRITER=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$WRITER" "$TMP/data" 600 200 >/dev/null
OUT=$TMP/out
reproduce() { SPIKEGRAD=$SG "$ROOT/scripts/reproduce.sh" toy --scale tiny --seeds 2 --out "$OUT" --data-dir "$TMP/data" "$@"; }

reproduce >"$TMP/first.txt" 2>"$TMP/first.err" || { cat "$TMP/first.err"; fail "reproduce.sh toy exited $?"; }
[ -f "$OUT/toy.md" ] || fail "no $OUT/toy.md"
grep -q "^| row | natural | FGSM | PGD | paper natural" "$OUT/toy.md" || fail "toy.md has no table header"
[ "$(grep -c '^| small_cnn STBP' "$OUT/toy.md")" = 2 ] || fail "toy.md should have two rows: $(cat "$OUT/toy.md")"
[ "$(wc -l <"$OUT/toy-seeds.csv")" = 5 ] || fail "toy-seeds.csv should have a header and 4 runs"

# 1. every cell from the runs' results.csv: mean and sample std (two-pass), formatted as the table does
expected_cell() {  # PRESET ATTACK -> "m ± s"
  for seed in 1000 1001; do
    awk -F, -v a="$2" 'NR > 1 && $1 == a { print $4 }' "$OUT/runs/$1-seed$seed/results.csv"
  done | awk '{ v[NR] = $1; s += $1 } END { m = s / NR; for (i = 1; i <= NR; ++i) d += (v[i] - m) ^ 2
                                            printf "%.2f ± %.2f", m, sqrt(d / (NR - 1)) }'
}
for pair in "small_cnn STBP:fmnist_small_cnn_stbp" "small_cnn STBP-TMI:fmnist_small_cnn_tmi"; do
  label=${pair%%:*} preset=${pair#*:}
  line=$(grep "^| $label |" "$OUT/toy.md") || fail "no row '$label'"
  IFS='|' read -r _ _ nat fgsm pgd _ <<<"$line"
  for col in "clean:$nat" "fgsm:$fgsm" "pgd:$pgd"; do
    want=$(expected_cell "$preset" "${col%%:*}") got=$(echo "${col#*:}" | xargs)
    [ "$got" = "$want" ] || fail "$label ${col%%:*}: table says '$got', the runs' results.csv give '$want'"
  done
done
grep -q "^| small_cnn STBP-TMI | .* | small_cnn STBP | " "$OUT/toy.md" || fail "the TMI row is not compared with its baseline"

# 2. nothing retrained the second time
stamp=$(stat -c %Y "$OUT"/runs/*/results.csv | sort | tr '\n' ' ')
sleep 1
reproduce >"$TMP/second.txt" 2>"$TMP/second.err" || { cat "$TMP/second.err"; fail "second reproduce.sh exited $?"; }
[ "$(grep -c '^have ' "$TMP/second.err")" = 4 ] || fail "the second run should reuse all 4 runs: $(cat "$TMP/second.err")"
[ "$stamp" = "$(stat -c %Y "$OUT"/runs/*/results.csv | sort | tr '\n' ' ')" ] || fail "results.csv rewritten on reuse"
diff <(grep '^|' "$TMP/first.txt") <(grep '^|' "$TMP/second.txt") >/dev/null || fail "the reused table differs"

# 3. a finished training whose report and results were lost: resumed, same numbers
run=$OUT/runs/fmnist_small_cnn_tmi-seed1001
cp "$run/results.csv" "$TMP/results.before"
rm "$run/results.csv" "$run/report.md"
reproduce >"$TMP/third.txt" 2>"$TMP/third.err" || { cat "$TMP/third.err" "$OUT/logs/fmnist_small_cnn_tmi-seed1001.log"; fail "resuming reproduce.sh exited $?"; }
[ -f "$run/results.csv" ] || fail "the lost results were not written again"
cmp -s "$run/results.csv" "$TMP/results.before" || fail "resumed results differ: $(diff "$TMP/results.before" "$run/results.csv")"
grep -q "fmnist_small_cnn_tmi seed 1001 (tiny scale, resuming its run with --resume)" "$TMP/third.err" ||
  fail "the run was not resumed: $(cat "$TMP/third.err")"
grep -q -- "--resume" "$OUT/logs/fmnist_small_cnn_tmi-seed1001.log" || fail "the run's log shows no --resume"

# 4. bad arguments
expect_error() {  # PATTERN ARGS...
  local pattern=$1 rc=0; shift
  SPIKEGRAD=$SG "$ROOT/scripts/reproduce.sh" "$@" >"$TMP/bad.out" 2>&1 || rc=$?
  [ "$rc" = 2 ] || fail "reproduce.sh $* exited $rc, expected 2"
  grep -q -- "$pattern" "$TMP/bad.out" || fail "reproduce.sh $*: message lacks '$pattern': $(cat "$TMP/bad.out")"
}
expect_error "TABLE must be main, ablation, tasa, toy or all, got 'nosuch'" nosuch
expect_error "--seeds must be a positive whole number, got '0'" toy --seeds 0
expect_error "--scale must be cpu, full or tiny, got 'huge'" toy --scale huge
expect_error "unknown argument '--bogus'" toy --bogus
echo "reproduce.sh toy table: OK"
