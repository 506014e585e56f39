#!/usr/bin/env bash
# `make run`: the demo upstream in the background, Envoy in the foreground; Ctrl-C stops both.
set -euo pipefail
envoy=$1 upstream=$2 config=$3

# The demo auth config verifies `make token` JWTs with this secret, passed to the auth VM only
# (vm_config.environment_variables); it never appears in the Envoy YAML.
PORTCULLIS_JWT_SECRET=$(cat .dev/demo-jwt-secret)
export PORTCULLIS_JWT_SECRET
# The key that seals audit records (HMAC-SHA-256), passed the same way.
PORTCULLIS_AUDIT_KEY=$(cat .dev/demo-audit-key)
export PORTCULLIS_AUDIT_KEY

"$upstream" --listen 127.0.0.1:8000 &
upstream_pid=$!
envoy_pid=
stop() {
  trap - INT TERM EXIT
  [ -n "$envoy_pid" ] && kill "$envoy_pid" 2>/dev/null && wait "$envoy_pid" 2>/dev/null
  kill "$upstream_pid" 2>/dev/null && wait "$upstream_pid" 2>/dev/null
  echo "stopped Envoy and the demo upstream"
}
trap stop INT TERM EXIT

"$envoy" -c "$config" --disable-hot-restart --concurrency 2 --log-level warn \
  --component-log-level wasm:info &
envoy_pid=$!

for _ in $(seq 100); do
  curl -sf http://127.0.0.1:9901/ready >/dev/null 2>&1 && break
  kill -0 "$envoy_pid" 2>/dev/null || { echo "Envoy exited; see the log above"; exit 1; }
  sleep 0.1
done

cat <<'TXT'

Portcullis is serving on https://localhost:8443 (demo upstream on http://127.0.0.1:8000).
  admin (loopback only)  http://127.0.0.1:9901/stats/prometheus
  health                 https://localhost:8443/healthz

Try (the dev CA is .dev/certs/ca.crt):
  curl --cacert .dev/certs/ca.crt https://localhost:8443/api/products
  curl --cacert .dev/certs/ca.crt -H 'accept-encoding: gzip' -sD - -o /dev/null https://localhost:8443/api/products
  curl --cacert .dev/certs/ca.crt -X POST -d '{"username":"ada"}' -H 'content-type: application/json' https://localhost:8443/login
  curl --cacert .dev/certs/ca.crt -H "authorization: Bearer $(make -s token ROLE=admin)" https://localhost:8443/admin
  curl -sI http://localhost:8080/api/products        # redirects to https
  curl -s http://127.0.0.1:9901/stats/prometheus | grep portcullis

Ctrl-C stops both.
TXT
wait "$envoy_pid"
