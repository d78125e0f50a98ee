#!/usr/bin/env bash
# Issue 16, "Nothing lost, nothing silent": replay the failure catalogue against the real spikegrad binary
# and check, after each failure, that the run folder is intact and that the run can be finished with
# results equal to an uninterrupted run's.
#
#   scripts/reliability.sh [path/to/spikegrad] [path/to/write_synthetic_idx]
#
# Defaults: build/bin/spikegrad and build/tests/write_synthetic_idx of this checkout. Registered in ctest as
# `reliability` (label slow). Each case prints one PASS/FAIL/SKIP line with its reason; the exit status is 0
# when nothing failed, 1 otherwise (with the failed cases listed again at the end).
#
# The cases:
#   1 baseline        an uninterrupted run A: the reference for every other case
#   2 kill -9         several timing/polling-based kills (startup, after epoch 1, mid-epoch, inside the
#                     epoch-2 commit, during the report), each followed by --resume; ends equal to A
#   2b kill -9        inside epoch 1's commit (best.safetensors written, last.safetensors not yet)
#   3 SIGINT/SIGTERM  exit 130 with "interrupted at epoch" and "continue with --resume" (mid-epoch), or a
#                     message naming --resume (during the report); resume equals A
#   4 concurrent      two runs with the same --name: one stops at once (exit 2, folder in use), one finishes
#   5 disk full       a tmpfs that fills up mid-run (root only), and RLIMIT_FSIZE (anyone): exit 2 naming
#                     the file, no temporaries left, the last checkpoint loadable, the run can be finished
#   6 stale temps     temporaries of an interrupted save are removed by the next start
#   7 no --resume     a second `train` into a folder holding a run: exit 2 and nothing in the folder changed
#
# "Equal to A": every metrics.csv cell except the timing columns (train_peak_mib, seconds, images_per_s:
# measurements of the process, not results), the tensor bytes of last.safetensors and best.safetensors (the
# files themselves differ: their metadata records the run's config, which says resume: true after a
# resume), report.md and results.csv. Runs are tiny (synthetic data, small_cnn, T 2, 3 epochs of 10 steps) so the whole
# script takes about a minute and a half on 2 cores.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SG=$(realpath "${1:-$ROOT/build/bin/spikegrad}")
SG_ORIG=$SG
WRITER=$(realpath "${2:-$ROOT/build/tests/write_synthetic_idx}")
for tool in "$SG" "$WRITER"; do
  if [[ ! -x "$tool" ]]; then
    echo "reliability.sh: $tool is not an executable; build it first (cmake --build build --target spikegrad_cli write_synthetic_idx)" >&2
    exit 2
  fi
done

START=$SECONDS
WORK=$(mktemp -d "${TMPDIR:-/tmp}/spikegrad-reliability.XXXXXX")
MOUNTS=()  # tmpfs mounted by case 5, unmounted on exit whatever happens
cleanup() {
  local m pid
  # Children still running (a case that stopped early) would keep the tmpfs busy: end them first.
  for pid in $(jobs -p); do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for m in "${MOUNTS[@]+"${MOUNTS[@]}"}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  if [[ -n ${KEEP:-} ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
# ctest's timeout and Ctrl-C: exit through the EXIT trap so the tmpfs is unmounted and the scratch removed.
trap 'exit 143' TERM
trap 'exit 130' INT

DATA=$WORK/data
LOGS=$WORK/logs
mkdir -p "$LOGS"
# A private copy of the binary: a rebuild during the run (make replaces build/bin/spikegrad) must not change
# or break the program under test half-way.
cp "$SG" "$WORK/spikegrad"
SG=$WORK/spikegrad
"$WRITER" "$DATA" 384 128 >/dev/null

EPOCHS=3
# The flags of every training run (the same ones for each resume: resuming with different flags is an error).
# --val-size 64 of 384 leaves 320 training images: 10 steps of 32 per epoch, about 3 s per epoch here.
FLAGS=(--dataset fashion-mnist --data-dir "$DATA" --device cpu --no-progress --model small_cnn --T 2
       --batch 32 --epochs "$EPOCHS" --lr 5e-3 --val-size 64 --attack-subset 32 --eval-batch 64)

# ---------------------------------------------------------------------------------------------------------
# Verdicts

FAILED=()
pass() { printf 'PASS  %-28s %s\n' "$1" "$2"; }
fail() { printf 'FAIL  %-28s %s\n' "$1" "$2"; FAILED+=("$1: $2"); }
skip() { printf 'SKIP  %-28s %s\n' "$1" "$2"; }

# ---------------------------------------------------------------------------------------------------------
# Running spikegrad. Every invocation logs to $LOGS/<tag>.{out,err}; LAST_ERR names the latest stderr file.

RUN_N=0
LAST_ERR=
PID=

# start RUNS_DIR NAME [extra flags...]: train in the background; sets PID.
start() {
  local runs=$1 name=$2
  shift 2
  RUN_N=$((RUN_N + 1))
  LAST_ERR=$LOGS/$RUN_N.$name.err
  "$SG" train "${FLAGS[@]}" --runs-dir "$runs" --name "$name" "$@" >"$LOGS/$RUN_N.$name.out" 2>"$LAST_ERR" &
  PID=$!
}

# train RUNS_DIR NAME [extra flags...]: in the foreground; its exit code in RC. (Not meant for $(...): a
# subshell could not wait for the main shell's children, and LAST_ERR would not survive it.)
RC=
train() {
  start "$@"
  finish "$PID"
}

# finish PID: wait for it; its exit code in RC.
finish() {
  RC=0
  wait "$1" 2>/dev/null || RC=$?
}

# kill9 PID: SIGKILL and reap it (bash's "Killed" job notice is for interactive shells; wait silences it).
kill9() {
  kill -9 "$1" 2>/dev/null || true
  finish "$1"
}

# wait_for SECONDS COMMAND...: poll COMMAND every 10 ms until it succeeds (0) or the time is up or the
# training process PID has exited (1). Polling, not sleeping, puts a kill right after a file appears.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  while ((SECONDS < deadline)); do
    if "$@"; then return 0; fi
    kill -0 "$PID" 2>/dev/null || return 1
    sleep 0.01
  done
  return 1
}

# wait_busy SECONDS FILE: like wait_for on a file's appearance, but spinning on shell builtins only (no
# `sleep` process per round): a commit's windows (between two fsynced files) last milliseconds. One core
# spins while the trainer uses the other.
wait_busy() {
  local deadline=$((SECONDS + $1))
  until [[ -e $2 ]]; do
    kill -0 "$PID" 2>/dev/null && ((SECONDS < deadline)) || return 1
  done
}

rows() { if [[ -f "$1/metrics.csv" ]]; then echo $(($(wc -l <"$1/metrics.csv") - 1)); else echo -1; fi; }
# at DIR: how far a killed run got, for the PASS line.
at() { if [[ -f "$1/metrics.csv" ]]; then echo "$(rows "$1") rows"; else echo "no rows"; fi; }
has_rows() { (($(rows "$1") >= $2)); }
# committed DIR N: epoch N's commit is complete (its row written, then last.safetensors replaced after it).
# A new run writes last.safetensors before epoch 1, so its mere existence says nothing about epoch 1.
committed() { has_rows "$1" "$2" && [[ $1/last.safetensors -nt $1/metrics.csv ]]; }
# in_loop: the latest run has reached its training loop (the "<model> on <dataset>: N parameters" line on
# stderr comes right after config.json is written, before the first step).
in_loop() { grep -q " parameters, " "$LAST_ERR"; }

# continue_run RUNS_DIR NAME: what a user does after a crash: --resume when a checkpoint exists, else start
# again. Its exit code in RC. continue_bg: the same in the background (sets PID).
continue_run() {
  if [[ -e "$1/$2/last.safetensors" ]]; then train "$1" "$2" --resume; else train "$1" "$2"; fi
}
continue_bg() {
  if [[ -e "$1/$2/last.safetensors" ]]; then start "$1" "$2" --resume; else start "$1" "$2"; fi
}

# ---------------------------------------------------------------------------------------------------------
# Checks. Each prints the problem and returns 1, or returns 0 silently.

error_line() { grep -m1 "error:" "$1" || tail -n 1 "$1"; }
listing() { find "$1" -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null || true; }
temporaries() { find "$1" -maxdepth 1 \( -name '*.tmp' -o -name '*.tmp.*' \) -printf '%f ' 2>/dev/null; }

# metrics_complete DIR: header, then the rows of epochs 1..EPOCHS in order, each once.
metrics_complete() {
  local f=$1/metrics.csv want got
  [[ -f $f ]] || { echo "metrics.csv missing"; return 1; }
  want=$(printf 'epoch,\n'; seq 1 "$EPOCHS" | sed 's/$/,/')
  got=$(sed -E 's/^([^,]*,).*/\1/' "$f")
  [[ $got == "$want" ]] || { echo "metrics.csv rows are [$(echo "$got" | tr '\n' ' ')], want [$(echo "$want" | tr '\n' ' ')]"; return 1; }
}

# folder_complete DIR: every file of a finished run, complete metrics, no temporaries.
folder_complete() {
  local f t
  for f in config.json metrics.csv best.safetensors last.safetensors results.csv report.md; do
    [[ -s $1/$f ]] || { echo "$f missing or empty"; return 1; }
  done
  metrics_complete "$1" || return 1
  t=$(temporaries "$1")
  [[ -z $t ]] || { echo "temporaries left: $t"; return 1; }
}

# tensor_data FILE: the safetensors data section (after the 8-byte header length and the JSON header).
header_len() { od -An -t u8 -N8 "$1" | tr -d ' '; }
tensor_data() { tail -c +$((9 + $(header_len "$1"))) "$1"; }
# header_without_config FILE: the JSON header minus the run's config (name, runs_dir, resume differ by design).
header_without_config() {
  head -c $((8 + $(header_len "$1"))) "$1" | tail -c +9 |
    jq -S '.__metadata__.spikegrad |= (fromjson | del(.config))'
}

# same_results A B: B's results equal A's (see the top of the file).
same_results() {
  local f
  if ! diff <(rev "$1/metrics.csv" | cut -d, -f4- | rev) <(rev "$2/metrics.csv" | cut -d, -f4- | rev) >"$WORK/diff" 2>&1; then
    echo "metrics.csv differs from the baseline's (timing columns aside): $(head -c 300 "$WORK/diff" | tr '\n' ' ')"
    return 1
  fi
  for f in last.safetensors best.safetensors; do
    cmp -s <(tensor_data "$1/$f") <(tensor_data "$2/$f") || { echo "$f tensors differ from the baseline's"; return 1; }
    if command -v jq >/dev/null; then
      # Tensor names/shapes/offsets and progress (epochs, best epoch, generator, loader, optimizer state).
      cmp -s <(header_without_config "$1/$f") <(header_without_config "$2/$f") ||
        { echo "$f header (tensor table or progress metadata) differs from the baseline's"; return 1; }
    fi
  done
  cmp -s "$1/report.md" "$2/report.md" || { echo "report.md differs from the baseline's"; return 1; }
  cmp -s "$1/results.csv" "$2/results.csv" || { echo "results.csv differs from the baseline's"; return 1; }
}

# loadable CHECKPOINT: `spikegrad eval` reads it (a copy, so the run folder is not touched).
loadable() {
  local copy=$WORK/loadable.safetensors
  cp "$1" "$copy"
  "$SG" eval --checkpoint "$copy" --data-dir "$DATA" --device cpu --no-progress --test-subset 32 \
    --attack-subset 8 --eval-batch 64 >"$LOGS/eval.out" 2>"$LOGS/eval.err" ||
    { echo "eval of $1 failed: $(tail -n 1 "$LOGS/eval.err")"; return 1; }
}

# ---------------------------------------------------------------------------------------------------------
# 1. Baseline

# Every run uses --name run in its own runs dir, so the report.md titles agree.
A=$WORK/base/run
# Epochs take anything from 0.2 s to 3 s here depending on the load, so a kill "inside an epoch" follows an
# event that marks its start (the training loop reached, or the previous epoch's checkpoint) by a short delay.
MID_EPOCH_DELAY=0.05
# The report has no such marker, so the baseline measures how long it takes (from the last row to the exit)
# and "during the report" is 40% of that after the last row. EPOCH_S (the shortest epoch) is only shown.
EPOCH_S=1
REPORT_S=2
now() { echo "$EPOCHREALTIME"; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
fraction() { awk -v x="$1" -v f="$2" 'BEGIN { printf "%.3f", x * f }'; }
case_baseline() {
  local why t_rows
  start "$WORK/base" run
  wait_for 600 has_rows "$A" "$EPOCHS" || true
  t_rows=$(now)
  finish "$PID"
  REPORT_S=$(seconds_since "$t_rows")
  [[ $RC == 0 ]] || { fail baseline "exit $RC: $(tail -n 1 "$LAST_ERR")"; return 1; }
  why=$(folder_complete "$A") || { fail baseline "$why"; return 1; }
  # The shortest epoch (the seconds column, third from the end) is the safe estimate for a kill inside one.
  EPOCH_S=$(rev "$A/metrics.csv" | cut -d, -f2 | rev | tail -n +2 | sort -g | head -n 1)
  pass baseline "exit 0, $EPOCHS epochs (shortest ${EPOCH_S} s), report ${REPORT_S} s, checkpoints of $(stat -c %s "$A/last.safetensors") bytes"
}

# ---------------------------------------------------------------------------------------------------------
# 2. kill -9 at several points, resuming after each

case_kill9() {
  local runs=$WORK/kill9 dir=$WORK/kill9/run rc why points=()
  # (a) 0.3 s after the start: loading data or the first steps; usually nothing is committed yet.
  start "$runs" run
  sleep 0.3
  kill9 "$PID"
  points+=("0.3s($(at "$dir"))")
  # (b) the moment epoch 1's commit completes (last.safetensors replaced after the row): epoch 2 starting.
  continue_bg "$runs" run
  wait_for 60 committed "$dir" 1 || true
  kill9 "$PID"
  points+=("after-epoch-1($(at "$dir"))")
  [[ -e $dir/last.safetensors ]] || { fail kill9 "no last.safetensors after the epoch-1 kill: $(listing "$dir")"; return; }
  # (c) mid-epoch 2: 50 ms after the resumed run reaches its training loop (a step takes 20-300 ms here).
  start "$runs" run --resume
  wait_for 60 in_loop || true
  sleep "$MID_EPOCH_DELAY"
  kill9 "$PID"
  points+=("mid-epoch-2($(at "$dir"))")
  # (d) the moment epoch 2's row appears: inside epoch 2's commit (row written, last.safetensors not yet or
  # just renamed), the point --resume repairs by dropping the row and redoing the epoch.
  start "$runs" run --resume
  wait_for 60 has_rows "$dir" 2 || true
  kill9 "$PID"
  points+=("epoch-2-row($(at "$dir"))")
  # (e) during the final report: every row written, last.safetensors of the last epoch, no report.md yet.
  start "$runs" run --resume
  wait_for 60 has_rows "$dir" "$EPOCHS" || true
  sleep "$(fraction "$REPORT_S" 0.4)"  # past the last checkpoint's save, well before the report's end
  if [[ -e $dir/report.md ]]; then
    finish "$PID"
    fail kill9 "report.md already written $(fraction "$REPORT_S" 0.4) s after the last row: the report kill point was missed"
    return
  fi
  kill9 "$PID"
  rc=$RC
  points+=("report($(at "$dir"))")
  [[ $rc == 137 ]] || { fail kill9 "the kill during the report did not land (exit $rc)"; return; }
  why=$(metrics_complete "$dir") || { fail kill9 "killed in the report: $why"; return; }
  train "$runs" run --resume
  rc=$RC
  [[ $rc == 0 ]] || { fail kill9 "final --resume: exit $rc: $(tail -n 1 "$LAST_ERR")"; return; }
  why=$(folder_complete "$dir") || { fail kill9 "$why"; return; }
  why=$(same_results "$A" "$dir") || { fail kill9 "$why"; return; }
  pass kill9 "killed at ${points[*]}, resumed after each; equals the baseline"
}

# 2b. kill -9 inside epoch 1's commit. The commit writes best.safetensors, then the metrics row, then
# last.safetensors; a kill the moment best.safetensors appears used to leave results but no checkpoint,
# which neither --resume nor a new run would continue (found by this script; a new run now writes
# last.safetensors, the state before epoch 1, first). A user continues the way the messages say (--resume
# if there is a checkpoint, else start again); one of the two must lead to a finished run. (Epoch 2's
# commit is point (d) above; both points of epoch 1 are unit tests too.)
case_kill9_first_commit() {
  local runs=$WORK/kill9c dir=$WORK/kill9c/run rc why state other first_err
  start "$runs" run
  wait_busy 60 "$dir/best.safetensors" || true
  kill9 "$PID"
  state="left: $(listing "$dir")"
  [[ $dir/last.safetensors -nt $dir/best.safetensors ]] && state+="(the kill came after the commit; the window was missed)"
  continue_run "$runs" run
  rc=$RC
  if [[ $rc != 0 ]]; then
    first_err=$LAST_ERR
    # The other way too, so the report says whether any way is open.
    if [[ -e $dir/last.safetensors ]]; then train "$runs" run; else train "$runs" run --resume; fi
    other=$RC
    fail kill9-first-commit "killed when best.safetensors appeared ($state): the run cannot be continued: \
exit $rc, '$(error_line "$first_err")'; the other way (with/without --resume): exit $other, '$(error_line "$LAST_ERR")'"
    return
  fi
  why=$(folder_complete "$dir") || { fail kill9-first-commit "$why"; return; }
  why=$(same_results "$A" "$dir") || { fail kill9-first-commit "$why"; return; }
  pass kill9-first-commit "killed when best.safetensors appeared ($state); continued; equals the baseline"
}

# ---------------------------------------------------------------------------------------------------------
# 3. SIGINT / SIGTERM: a clean stop (exit 130, a message saying how to continue), then --resume.
# (Background jobs of a non-interactive shell start with SIGINT ignored; spikegrad installs its own handler,
# so the signal still reaches it.)

# signal_case NAME SIGNAL WHEN: WHEN is "mid-epoch-1" (50 ms after the training loop starts), "mid-epoch-2"
# (50 ms after epoch 1's checkpoint) or "report" (during the final report; the message then need not say
# "interrupted at epoch", only how to continue). The point actually hit depends on the machine's speed; the PASS line names
# it ("interrupted at epoch E step S"); any point must pass. PLANT=1 leaves stale temporaries before the
# resume (case 6).
signal_case() {
  local name=$1 sig=$2 when=$3 runs=$WORK/$1 dir=$WORK/$1/run rc why err
  start "$runs" run
  if [[ $when == mid-epoch-2 ]]; then
    # The moment epoch 1's row appears (its commit in flight): the signal is seen at epoch 2's start at the
    # latest, however fast the machine (a fixed delay after it overshot into the report on a fast one).
    wait_for 60 has_rows "$dir" 1 || true
  elif [[ $when == report ]]; then
    wait_for 60 has_rows "$dir" "$EPOCHS" || true
    sleep "$(fraction "$REPORT_S" 0.4)"
  else
    wait_for 60 in_loop || true
    sleep "$MID_EPOCH_DELAY"
  fi
  kill -"$sig" "$PID" 2>/dev/null || true
  finish "$PID"
  rc=$RC
  err=$LAST_ERR
  [[ $rc == 130 ]] || { fail "$name" "SIG$sig at $when: exit $rc, want 130: $(tail -n 1 "$err")"; return; }
  [[ $when == report ]] || grep -q "interrupted at epoch" "$err" || { fail "$name" "no 'interrupted at epoch' on stderr: $(tail -n 1 "$err")"; return; }
  if [[ $when == report ]]; then
    grep -q -- "--resume" "$err" || { fail "$name" "the message does not say to continue with --resume: $(tail -n 1 "$err")"; return; }
  else
    grep -q "continue with --resume" "$err" || { fail "$name" "no 'continue with --resume' on stderr: $(tail -n 1 "$err")"; return; }
  fi
  [[ -e $dir/last.safetensors ]] || { fail "$name" "no last.safetensors after the stop"; return; }
  [[ -z $(temporaries "$dir") ]] || { fail "$name" "temporaries left after the stop: $(temporaries "$dir")"; return; }
  why=$(loadable "$dir/last.safetensors") || { fail "$name" "$why"; return; }
  local stopped
  stopped=$(grep -m1 -o "interrupted [^;(]*" "$err" || true)
  if [[ ${PLANT:-0} == 1 ]]; then plant_temporaries "$dir"; fi
  train "$runs" run --resume
  rc=$RC
  [[ $rc == 0 ]] || { fail "$name" "--resume: exit $rc: $(tail -n 1 "$LAST_ERR")"; return; }
  if [[ ${PLANT:-0} == 1 ]]; then check_temporaries_removed "$dir" "$LAST_ERR"; fi
  why=$(folder_complete "$dir") || { fail "$name" "$why"; return; }
  why=$(same_results "$A" "$dir") || { fail "$name" "$why"; return; }
  pass "$name" "SIG$sig $when: exit 130, '$stopped'; resumed; equals the baseline"
}

# ---------------------------------------------------------------------------------------------------------
# 6. Stale temporaries (the names write_file_atomically uses: <file>.tmp.<pid>.<n>; also a bare *.tmp),
# planted in an interrupted run's folder; the resume must remove them and say so on stderr.

STALE=(last.safetensors.tmp.999999.0 metrics.csv.tmp.999999.3 report.md.tmp)
plant_temporaries() {
  local f
  for f in "${STALE[@]}"; do head -c 1000 /dev/urandom >"$1/$f"; done
}
check_temporaries_removed() {
  local f left=() unsaid=()
  for f in "${STALE[@]}"; do
    [[ -e $1/$f ]] && left+=("$f")
    grep -q "removed .*$f" "$2" || unsaid+=("$f")
  done
  if ((${#left[@]})); then
    fail stale-temporaries "still there after the resume: ${left[*]}"
  elif ((${#unsaid[@]})); then
    fail stale-temporaries "removed, but not reported on stderr: ${unsaid[*]}"
  else
    pass stale-temporaries "${#STALE[@]} planted temporaries removed by the resume and reported"
  fi
}

# ---------------------------------------------------------------------------------------------------------
# 4. Two runs with the same --name at once

case_concurrent() {
  local runs=$WORK/concurrent dir=$WORK/concurrent/run p1 p2 e1 e2 first rc1 rc2 loser_err t0 why
  start "$runs" run
  p1=$PID e1=$LAST_ERR
  start "$runs" run
  p2=$PID e2=$LAST_ERR
  t0=$SECONDS
  # The loser must stop fast (before loading data), long before the winner's ~13 s.
  while kill -0 "$p1" 2>/dev/null && kill -0 "$p2" 2>/dev/null && ((SECONDS - t0 < 10)); do sleep 0.02; done
  first=$((SECONDS - t0))  # when the first of the two ended
  finish "$p1"
  rc1=$RC
  finish "$p2"
  rc2=$RC
  if [[ $rc1 == 2 && $rc2 == 0 ]]; then loser_err=$e1; elif [[ $rc1 == 0 && $rc2 == 2 ]]; then loser_err=$e2; else
    fail concurrent "exit codes $rc1 and $rc2, want one 0 and one 2: $(tail -n 1 "$e1") / $(tail -n 1 "$e2")"
    return
  fi
  grep -qiE "in use|lock" "$loser_err" ||
    { fail concurrent "the refused run's message does not say the folder is in use: $(tail -n 1 "$loser_err")"; return; }
  ((first < 10)) || { fail concurrent "neither run stopped within 10 s: the refused one did not stop fast"; return; }
  why=$(folder_complete "$dir") || { fail concurrent "$why"; return; }
  why=$(same_results "$A" "$dir") || { fail concurrent "$why"; return; }
  pass concurrent "one refused (exit 2: $(grep -oiE "is in use[^;]*" "$loser_err" | head -n 1)); the other equals the baseline"
}

# ---------------------------------------------------------------------------------------------------------
# 5. Disk full

# after_write_failure NAME DIR ERRFILE RC: the checks common to both ways of filling the disk.
after_write_failure() {
  local name=$1 dir=$2 err=$3 rc=$4 msg why
  msg=$(grep -m1 "error:" "$err" || tail -n 1 "$err")
  [[ $rc == 2 ]] || { echo "exit $rc, want 2: $msg"; return 1; }
  # The wording differs between the writers (run_folder.cpp, save_safetensors): only the path is required.
  grep -F "$dir/" "$err" | grep -qE "(config\.json|metrics\.csv|best\.safetensors|last\.safetensors|report\.md)" ||
    { echo "the message does not name the file that failed: $msg"; return 1; }
  [[ -z $(temporaries "$dir") ]] || { echo "temporaries left: $(temporaries "$dir")"; return 1; }
  if [[ -e $dir/last.safetensors ]]; then
    why=$(loadable "$dir/last.safetensors") || { echo "$why"; return 1; }
  fi
  echo "$msg"
}

case_disk_full_tmpfs() {
  local mnt=$WORK/tmpfs dir=$WORK/tmpfs/run ckpt size rc out why
  mkdir -p "$mnt"
  ckpt=$(stat -c %s "$A/last.safetensors")
  # Room for two checkpoint-sized files and the small ones: the last.safetensors written before epoch 1 and
  # epoch 1's best.safetensors fit, epoch 1's last.safetensors (a temporary beside the old one) does not,
  # so the run fails inside epoch 1's commit, its row already written, and must resume from the state
  # before epoch 1. (Any later commit needs three such files at once, so there is no later point to fill.)
  size=$(((2 * ckpt + 40000) / 1024))
  if ! mount -t tmpfs -o "size=${size}k" tmpfs "$mnt" 2>"$WORK/mount.err"; then
    skip disk-full-tmpfs "cannot mount a tmpfs here ($(head -n 1 "$WORK/mount.err")); RLIMIT_FSIZE case below"
    return
  fi
  MOUNTS+=("$mnt")
  train "$mnt" run
  rc=$RC
  out=$(after_write_failure disk-full-tmpfs "$dir" "$LAST_ERR" "$rc") || { fail disk-full-tmpfs "tmpfs of ${size} KiB: $out"; return; }
  [[ -e $dir/last.safetensors ]] || { fail disk-full-tmpfs "no last.safetensors: the disk filled before epoch 1; size $size KiB too small"; return; }
  [[ ! -e $dir/report.md ]] || { fail disk-full-tmpfs "report.md written although the run failed"; return; }
  # Room again: the run continues from its last good checkpoint and ends as the baseline did.
  mount -o remount,size=16m "$mnt"
  train "$mnt" run --resume
  rc=$RC
  [[ $rc == 0 ]] || { fail disk-full-tmpfs "--resume after enlarging the tmpfs: exit $rc: $(tail -n 1 "$LAST_ERR")"; return; }
  why=$(folder_complete "$dir") || { fail disk-full-tmpfs "$why"; return; }
  why=$(same_results "$A" "$dir") || { fail disk-full-tmpfs "$why"; return; }
  pass disk-full-tmpfs "tmpfs ${size} KiB: exit 2, '${out#spikegrad: error: }'; resumed after remount; equals the baseline"
}

# RLIMIT_FSIZE works unprivileged: a file may not grow past the limit, a write past it fails with EFBIG
# (SIGXFSZ ignored, as a shell's `trap '' XFSZ` is inherited by the program). The limit is per file, so the
# first checkpoint write fails (the small files fit); afterwards the same command without the limit must
# start and finish the run: the failure left nothing that blocks it.
case_disk_full_fsize() {
  local runs=$WORK/fsize dir=$WORK/fsize/run ckpt blocks rc out why
  ckpt=$(stat -c %s "$A/last.safetensors")
  blocks=$((ckpt / 1024 / 2))  # ulimit -f counts 1024-byte blocks in bash
  RUN_N=$((RUN_N + 1))
  LAST_ERR=$LOGS/$RUN_N.fsize.err
  rc=0
  (
    trap '' XFSZ
    ulimit -f "$blocks"
    exec "$SG" train "${FLAGS[@]}" --runs-dir "$runs" --name run
  ) >"$LOGS/$RUN_N.fsize.out" 2>"$LAST_ERR" || rc=$?
  out=$(after_write_failure disk-full-fsize "$dir" "$LAST_ERR" "$rc") || { fail disk-full-fsize "ulimit -f $blocks: $out"; return; }
  [[ ! -e $dir/report.md ]] || { fail disk-full-fsize "report.md written although the run failed"; return; }
  continue_run "$runs" run
  rc=$RC
  [[ $rc == 0 ]] || { fail disk-full-fsize "the run cannot be continued after the failed write: exit $rc: $(tail -n 1 "$LAST_ERR")"; return; }
  why=$(folder_complete "$dir") || { fail disk-full-fsize "$why"; return; }
  why=$(same_results "$A" "$dir") || { fail disk-full-fsize "$why"; return; }
  pass disk-full-fsize "ulimit -f $blocks: exit 2, '${out#spikegrad: error: }'; run again; equals the baseline"
}

# ---------------------------------------------------------------------------------------------------------
# 7. A second `train` without --resume into a folder holding a finished run

case_no_resume() {
  local before after rc
  # The lock file's content is the pid of the last process that held the lock (informational); the run's
  # files are what must not change.
  before=$(cd "$A" && find . -type f ! -name .spikegrad.lock -print0 | sort -z | xargs -0 sha256sum)
  train "$WORK/base" run
  rc=$RC
  after=$(cd "$A" && find . -type f ! -name .spikegrad.lock -print0 | sort -z | xargs -0 sha256sum)
  [[ $rc == 2 ]] || { fail no-resume "exit $rc, want 2: $(tail -n 1 "$LAST_ERR")"; return; }
  [[ $before == "$after" ]] || { fail no-resume "the folder changed: $(diff <(echo "$before") <(echo "$after") | tr '\n' ' ')"; return; }
  pass no-resume "exit 2 ('$(head -n 1 "$LAST_ERR" | grep -oE "already holds [^;]*" || head -n 1 "$LAST_ERR")'); every file unchanged"
}

# ---------------------------------------------------------------------------------------------------------

echo "spikegrad reliability: $SG_ORIG (scratch $WORK)"
if ! case_baseline; then
  echo "the baseline failed: every other case compares against it; stopping" >&2
  exit 1
fi
# RELIABILITY_CASES="kill9 concurrent ..." runs only those (after the baseline), for debugging one case.
want() { [[ -z ${RELIABILITY_CASES:-} || " $RELIABILITY_CASES " == *" $1 "* ]]; }
if want kill9; then case_kill9; fi
if want kill9-first-commit; then case_kill9_first_commit; fi
if want sigint; then signal_case sigint INT mid-epoch-2; fi
if want sigint-report; then signal_case sigint-report INT report; fi
if want sigterm; then PLANT=1 signal_case sigterm TERM mid-epoch-1; fi  # also stale-temporaries
if want concurrent; then case_concurrent; fi
if want disk-full-tmpfs; then case_disk_full_tmpfs; fi
if want disk-full-fsize; then case_disk_full_fsize; fi
if want no-resume; then case_no_resume; fi

echo "total $((SECONDS - START)) s"
if ((${#FAILED[@]})); then
  echo "${#FAILED[@]} failed:"
  printf '  %s\n' "${FAILED[@]}"
  exit 1
fi
echo "all passed"
