#!/usr/bin/env bash
# Generates the development CA and the server certificate Envoy presents on :8443, into $1
# (default .dev/certs). Idempotent: keeps existing files while the server certificate is valid for
# at least another day. Private keys never leave .dev/ (git-ignored).
set -euo pipefail
dir=${1:-.dev/certs}
mkdir -p "$dir"
cd "$dir"

if [ -f server.crt ] && [ -f server.key ] && [ -f ca.crt ] &&
   openssl x509 -checkend 86400 -noout -in server.crt >/dev/null 2>&1; then
  exit 0
fi

umask 077
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -sha256 -days 825 -out ca.crt \
  -subj "/O=Portcullis development/CN=Portcullis development CA (not for production)" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign"

openssl ecparam -name prime256v1 -genkey -noout -out server.key 2>/dev/null
openssl req -new -key server.key -out server.csr -subj "/O=Portcullis development/CN=localhost"
cat > server.ext <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:envoy,IP:127.0.0.1,IP:::1
EXT
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 365 \
  -extfile server.ext -out server.crt 2>/dev/null
rm -f server.csr server.ext ca.srl
# Envoy in the official image runs as an unprivileged user and must read its key.
chmod 644 ca.crt server.crt server.key
chmod 600 ca.key
echo "dev certificates written to $dir (CA: $dir/ca.crt)"
