#!/bin/bash
# run.sh — build the libFuzzer harnesses with clang and run each for N seconds
# from its corpus (issue 4 "Tools in CI").
#
#   tests/fuzz/run.sh [SECONDS]     (default 60 per harness)
#
# Harnesses (one per entry point, zstd's habit):
#   fuzz_validate   src/tensor/validate.c (+ status.c, param.c; no MPI)
#   fuzz_benchopts  tools/benchopts.c (tpmm-bench's option parser)
# Built with -fsanitize=fuzzer,address,undefined (UB aborts). Each run starts
# from a temporary copy of tests/fuzz/corpus/<harness>/ so the repository is
# never modified; set KEEP_CORPUS=DIR to keep the grown corpora. Any crash,
# sanitizer report or failed property is a failure; the crashing input is
# saved under $ARTIFACTS (default a new /tmp/tpmm-fuzz-artifacts.*) and its bytes are
# printed in hex. Needs: clang, libclang-rt-14-dev (scripts/install-deps.sh --full).
# Ends with "fuzz: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
SECS=${1:-60}
CC=${FUZZ_CC:-clang}
OUT=${FUZZ_BUILD:-build-fuzz}
ARTIFACTS=${ARTIFACTS:-$(mktemp -d /tmp/tpmm-fuzz-artifacts.XXXXXX)}
mkdir -p "$OUT" "$ARTIFACTS"
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -Wall -Wextra"
set -e
$CC $FLAGS -Iinclude -o "$OUT/fuzz_validate" tests/fuzz/fuzz_validate.c src/tensor/validate.c \
  src/common/status.c src/common/param.c
$CC $FLAGS -Itools -o "$OUT/fuzz_benchopts" tests/fuzz/fuzz_benchopts.c tools/benchopts.c -lm
set +e
pass=0 fail=0
for h in fuzz_validate fuzz_benchopts; do
  work=$(mktemp -d)
  cp tests/fuzz/corpus/$h/* "$work/" 2>/dev/null
  log="$OUT/$h.log"
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$OUT/$h" -max_total_time="$SECS" -max_len=512 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$ARTIFACTS/$h-" "$work" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $rc -eq 0 ] && ! grep -qE "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|property failed" "$log"; then
    pass=$((pass + 1))
    echo "fuzz: ok   $h: ${runs:-?} inputs in ${SECS} s, $cov, corpus $(ls "$work" | wc -l) files"
  else
    fail=$((fail + 1))
    echo "fuzz: FAIL $h (exit $rc):"
    grep -E -A25 "ERROR:|runtime error:|property failed" "$log" | head -60
    for f in "$ARTIFACTS/$h-"*; do [ -f "$f" ] && { echo "input $f:"; od -An -tx1 "$f" | head -20; }; done
  fi
  if [ -n "${KEEP_CORPUS:-}" ]; then mkdir -p "$KEEP_CORPUS/$h" && cp "$work"/* "$KEEP_CORPUS/$h/"; fi
  rm -rf "$work"
done
echo "fuzz: $pass passed, $fail failed"
[ $fail -eq 0 ]
