#!/usr/bin/env bash
# `make load`: starts the chain in the background exactly as `make run` does (scripts/run.sh, with
# the config rendered for load, see k6/README.md), mints demo tokens, runs each k6 scenario in
# turn and stops the chain whatever happens. Exits non-zero if any scenario's thresholds fail.
set -euo pipefail
k6=$1 envoy=$2 upstream=$3 config=$4 devkit=$5
scenarios=${LOAD_SCENARIOS:-smoke ramp auth cache hostile burst}
out=.dev/load
mkdir -p "$out"

# A chain already on these ports (a `make run`) would answer in place of ours, with other limits.
if curl -s -m 2 -o /dev/null http://127.0.0.1:9901/ready \
  || curl -s -m 2 -o /dev/null http://127.0.0.1:8000/healthz \
  || curl -s -m 2 -o /dev/null --cacert .dev/certs/ca.crt https://localhost:8443/healthz; then
  echo "make load: something already listens on 127.0.0.1:8443, :9901 or :8000 (a \`make run\`?); stop it first"
  exit 1
fi

bash scripts/run.sh "$envoy" "$upstream" "$config" >"$out/chain.log" 2>&1 &
chain_pid=$!
stop() {
  local rc=$?
  trap - INT TERM EXIT
  # run.sh's own trap stops Envoy and the demo upstream.
  kill "$chain_pid" 2>/dev/null || true
  wait "$chain_pid" 2>/dev/null || true
  # The demo audit sink logs one line per request (hundreds of MB over a full run): keep the end.
  tail -n 5000 "$out/chain.log" >"$out/chain.tail.log" 2>/dev/null || true
  rm -f "$out/chain.log"
  echo "make load: chain stopped (the end of its log: $out/chain.tail.log)"
  exit "$rc"
}
trap stop INT TERM EXIT

ready=
for _ in $(seq 150); do
  curl -sf --cacert .dev/certs/ca.crt https://localhost:8443/healthz >/dev/null 2>&1 && { ready=1; break; }
  kill -0 "$chain_pid" 2>/dev/null || break
  sleep 0.2
done
[ -n "$ready" ] || { echo "make load: the chain did not start:"; tail -20 "$out/chain.log"; exit 1; }

# DEMO-ONLY tokens; they live in .dev/load (git-ignored with .dev) and never in a command line
# of k6 itself.
tokens=$out/tokens.json
{
  printf '{'
  sep=
  for role in viewer editor admin; do
    printf '%s"%s":"%s"' "$sep" "$role" "$("$devkit" token --role "$role" --sub "load-$role" --ttl 900)"
    sep=,
  done
  printf '}\n'
} >"$tokens"

failed=()
for s in $scenarios; do
  echo
  echo "=== k6 scenario: $s ==="
  if SSL_CERT_FILE=.dev/certs/ca.crt TOKENS_FILE="$PWD/$tokens" \
    "$k6" run --quiet --no-usage-report --summary-export "$out/$s.json" "k6/scenarios/$s.js"; then
    echo "=== $s: thresholds passed ==="
  else
    echo "=== $s: FAILED (thresholds or errors) ==="
    failed+=("$s")
  fi
done

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "make load: FAILED: ${failed[*]}"
  exit 1
fi
echo "make load: all scenarios passed ($scenarios)"
