# Sourced by hack/run-local.sh and hack/run-cluster.sh: the walk-through both demos print.
# Needs `k` (kubectl against the demo cluster), `log` and `$state` (the demo's state directory).

# Applies examples/clusters/konvoyclusters.yaml one cluster at a time, printing ADMITTED (with
# kubectl's warnings) or REFUSED (with the webhook's answer) for each.
apply_examples() {
  log "kubectl apply -f examples/clusters/konvoyclusters.yaml, one cluster at a time"
  python3 - examples/clusters/konvoyclusters.yaml "$state/docs" <<'PY'
import os, sys
text = open(sys.argv[1]).read()
os.makedirs(sys.argv[2], exist_ok=True)
docs = [d for d in text.split("\n---\n") if "kind:" in d]
for i, d in enumerate(docs):
    open(os.path.join(sys.argv[2], f"{i:02d}.yaml"), "w").write(d + "\n")
PY
  local f name out
  for f in "$state"/docs/*.yaml; do
    name="$(awk '/^  name:/ {print $2; exit}' "$f")"
    if out="$(k apply -f "$f" 2>&1)"; then
      printf '\n\033[32mADMITTED\033[0m %s\n' "$name"
      grep '^Warning:' <<<"$out" | sed 's/^/  /' || true
    else
      printf '\n\033[31mREFUSED\033[0m  %s\n' "$name"
      sed 's/^/  /' <<<"$out"
    fi
  done
}
