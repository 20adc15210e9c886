#!/usr/bin/env bash
# The README's run command, for real: `cargo run --release -- serve --demo` in a scratch folder,
# then a Python grpcio client lists the services by reflection and checks health.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
pid=""
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$root"
cargo build --release --quiet -p trainhub
# Where cargo put it: `target/` unless CARGO_TARGET_DIR (or a config) says otherwise.
bin="$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/trainhub"
cd "$work"
"$bin" serve --demo --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 >out.txt 2>err.txt &
pid=$!
for _ in $(seq 60); do grep -q "trainhub dossier" out.txt 2>/dev/null && break; sleep 1; done
cat out.txt
addr="$(awk '/gRPC/ {print $2; exit}' out.txt)"
python3 "$root/tests/python/reflection_check.py" "$addr" | tee check.txt
grep -q "trainhub.v1.IngestService" check.txt
grep -q "trainhub.v1.DossierService" check.txt
grep -q "health: SERVING" check.txt
http="$(awk '/ops HTTP/ {print $3; exit}' out.txt)"
curl -fsS "${http}readyz"
echo "smoke: ok"
