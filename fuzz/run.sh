#!/usr/bin/env bash
# `make fuzz`: runs every cargo-fuzz target for a bounded time, one after the other.
#
#   fuzz/run.sh [TARGET...]        all targets when none is named
#
# Env:
#   FUZZ_SECONDS      time per target (default 60)
#   FUZZ_TARGET_DIR   build directory (default $SUPPORTGATE_CACHE/fuzz-target, kept apart from
#                     the stable build because the sanitizer flags rebuild every crate)
#
# Each target starts from its checked-in corpus (fuzz/corpus/<target>/) and writes new inputs
# to fuzz/.work/<target>/ (ignored by git); at the end, the inputs that add coverage are merged
# into fuzz/corpus/<target>/, which tests/fuzz_corpus.rs replays in `make test`. A crash or
# timeout makes the script fail; its input is copied into fuzz/corpus/<target>/ as crash-* so it
# stays a regression test once fixed.
#
# Limits: libFuzzer fails an input that allocates more than 512 MiB in one malloc, that takes
# the process over 2 GiB of RSS, or that runs longer than 10 s.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
seconds="${FUZZ_SECONDS:-60}"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-${SUPPORTGATE_CACHE:-$repo/.cache}/fuzz-target}"

log() { printf '[fuzz] %s\n' "$*" >&2; }

# cargo-fuzz needs a nightly toolchain (-Z sanitizer flags).
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  log "installing the nightly toolchain (rustup)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --locked
fi

cd "$here"
if (($#)); then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

dict_for() {
  case "$1" in
    admission_review) echo "dict/admission_review.dict" ;;
    parse_objects) echo "dict/parse_objects.dict" ;;
    *) echo "dict/versions.dict" ;;
  esac
}

log "building ${#targets[@]} targets ($(cargo +nightly --version))"
cargo +nightly fuzz build -O

failed=()
for t in "${targets[@]}"; do
  mkdir -p ".work/$t" "corpus/$t" "artifacts/$t"
  before=$(find "corpus/$t" -type f | wc -l)
  log "$t: ${seconds}s from $before corpus inputs"
  status=0
  cargo +nightly fuzz run -O "$t" ".work/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -dict="$(dict_for "$t")" -print_final_stats=1 2> ".work/$t.log" || status=$?
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs)' ".work/$t.log" \
    | sed "s/^/[fuzz] $t: /" >&2 || true
  if ((status != 0)); then
    log "$t FAILED (exit $status); the end of its log:"
    tail -40 ".work/$t.log" >&2
    for a in "artifacts/$t"/*; do
      [[ -f "$a" ]] || continue
      cp "$a" "corpus/$t/crash-$(basename "$a")"
      log "$t: kept $a as corpus/$t/crash-$(basename "$a")"
    done
    failed+=("$t")
    continue
  fi
  # Keep the checked-in corpus small: the smallest set of inputs (old and new) that covers every
  # edge reached (set cover, edge coverage without hit counts). Seeds and crashes always stay.
  min=".work/$t.min"
  rm -rf "$min" && mkdir -p "$min"
  cargo +nightly fuzz run -O "$t" "$min" "corpus/$t" ".work/$t" -- \
    -set_cover_merge=1 -use_counters=0 2> ".work/$t.merge.log" \
    || { log "$t: merge failed"; tail -20 ".work/$t.merge.log" >&2; failed+=("$t"); continue; }
  kept=$(cd "corpus/$t" && find . -type f \( -name 'seed-*' -o -name 'crash-*' \) -exec sha1sum {} + | cut -d' ' -f1)
  find "corpus/$t" -type f ! -name 'seed-*' ! -name 'crash-*' -delete
  for f in "$min"/*; do
    [[ -f "$f" ]] || continue
    grep -qx "$(basename "$f")" <<<"$kept" || cp "$f" "corpus/$t/"
  done
  after=$(find "corpus/$t" -type f | wc -l)
  log "$t: ok; corpus $before -> $after inputs"
done

if ((${#failed[@]})); then
  log "failed: ${failed[*]}"
  exit 1
fi
log "all ${#targets[@]} targets ran ${seconds}s each without a failure"
