#!/usr/bin/env bash
# The control plane watchdog of one test binary (started by tests/support/watchdog.rs).
#
# It runs in a session of its own, so a SIGKILL of the test binary's process group (a CI
# timeout, Ctrl-C) misses it. It learns that the binary is gone from EOF on stdin (a pipe whose
# write end only the binary holds, close-on-exec, so no child of the binary keeps it open) and,
# as a fallback, from the binary's pid no longer carrying the start time it had. Then it stops
# the control plane with hack/controlplane/down and removes DIR if the binary exited normally
# with no failed test; otherwise it keeps DIR, writes the reason to DIR/KEPT and prints the path.
#
# stdin lines: "failed THREAD" (a test panicked), "exited" (the binary is exiting normally).
# Usage: watchdog.sh PID STARTTIME DIR DOWN
set -u
trap '' PIPE HUP INT
pid="$1" start="$2" dir="$3" down="$4"
echo $$ > "$dir/watchdog.pid"

starttime() { # pid -> field 22 of /proc/PID/stat (counted after the ")" that ends the name)
  local s
  s="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  s="${s##*) }"
  # shellcheck disable=SC2086 # split the fields
  set -- $s
  echo "${20}"
}

failed="" exited=""
while :; do
  read -r -t 1 line
  rc=$?
  if (( rc == 0 )); then
    case "$line" in
      failed*) failed="${failed:-${line#failed }}" ;;
      exited) exited=1 ;;
    esac
    continue
  fi
  (( rc <= 128 )) && break                              # EOF: the binary is gone
  [[ "$(starttime "$pid")" == "$start" ]] || break      # gone, or its pid was reused
done

is_ours() { # name pid: alive, not a zombie, and its command line names its binary and DIR
  local cmd
  [[ "$2" =~ ^[0-9]+$ && -r "/proc/$2/cmdline" ]] || return 1
  cmd="$(tr '\0' ' ' < "/proc/$2/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *"/$1 "* && "$cmd" == *"$dir/"* ]]
}
survivors() {
  local name p left=""
  [[ -f "$dir/pids" ]] || return 0
  while read -r name p; do
    is_ours "$name" "$p" && left+="$name ($p) "
  done < "$dir/pids"
  echo "$left"
}

if [[ -x "$down" ]]; then
  "$down" --dir "$dir" --grace 5 >> "$dir/watchdog.log" 2>&1
else
  # The checkout is gone; stop exactly the recorded processes ourselves.
  echo "$down is missing; killing the recorded processes" >> "$dir/watchdog.log"
  while read -r name p; do
    is_ours "$name" "$p" && kill -KILL "$p" 2>/dev/null
  done < "$dir/pids"
  sleep 1
fi

left="$(survivors)"
if [[ -z "$failed" && -n "$exited" && -z "$left" ]]; then
  rm -rf "$dir"
  exit 0
fi
if [[ -n "$left" ]]; then
  reason="still running after down: $left"
elif [[ -n "$failed" ]]; then
  reason="a test failed (a panic on thread '$failed')"
else
  reason="the test binary was killed before it finished"
fi
echo "$reason" > "$dir/KEPT"
echo "[supportgate tests] kept the control plane dir $dir: $reason; remove it with: rm -rf $dir" >&2
