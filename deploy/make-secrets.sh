#!/usr/bin/env bash
# Generates every secret the compose kit needs into deploy/secrets/ (ignored by git), once:
# a file that already exists is kept, so running it again never changes a secret the hubs'
# store depends on. Needs only bash and openssl.
#
#   bash deploy/make-secrets.sh            # then: docker compose -f deploy/compose.yaml up --build
#
# What it writes, and who reads it:
#   hub.secret, data.keys          every hub: the person_key secret and the data keyring
#   token-hr-system                the partner `hr-system` (gRPC Submit, xAPI) and the hubs
#   token-appointment              the appointment system (dossier:read, coverage:read)
#   token-ops                      the ops team (dashboard, sync health, review, replay)
#   hub.env                        the hubs: store URL with the database password, broker password
#   pg-password                    PostgreSQL's own password file
#   rabbitmq.env                   the broker nodes: user, password, Erlang cookie
#   grafana-admin                  Grafana's admin password
#   envoy.crt, envoy.key           Envoy's TLS certificate (self-signed, for localhost and this
#                                  host's name; replace both files with your own certificate)
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir"
chmod 0700 "$dir"
umask 0022 # the containers read these files under their own users; the folder keeps others out

made=()
write() { # write NAME CONTENT: creates the file unless it exists
  if [[ -e "$dir/$1" ]]; then
    echo "kept      secrets/$1"
  else
    printf '%s\n' "$2" >"$dir/$1"
    made+=("$1")
    echo "generated secrets/$1"
  fi
}
hex() { openssl rand -hex "$1"; }
value_of() { # value_of FILE KEY: a KEY=value line of an existing env file
  sed -n "s/^$2=//p" "$dir/$1"
}

write hub.secret "$(hex 32)"
write data.keys "k$(date -u +%Y%m%d)-$(hex 2):$(hex 32)"
for who in hr-system appointment ops; do
  write "token-$who" "$(hex 32)"
done
write pg-password "$(hex 24)"
write rabbitmq.env "RABBITMQ_DEFAULT_USER=trainhub
RABBITMQ_DEFAULT_PASS=$(hex 24)
RABBITMQ_ERLANG_COOKIE=$(hex 32)"
write hub.env "TRAINHUB_STORE__URL=postgres://trainhub:$(cat "$dir/pg-password")@postgres:5432/trainhub
BROKER_PASSWORD=$(value_of rabbitmq.env RABBITMQ_DEFAULT_PASS)"
write grafana-admin "$(hex 16)"
if [[ -e "$dir/envoy.crt" && -e "$dir/envoy.key" ]]; then
  echo "kept      secrets/envoy.crt, secrets/envoy.key"
else
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=trainhub" \
    -addext "subjectAltName=DNS:localhost,DNS:$(hostname),IP:127.0.0.1" \
    -keyout "$dir/envoy.key" -out "$dir/envoy.crt" 2>/dev/null
  chmod 0644 "$dir/envoy.key"
  made+=(envoy.crt envoy.key)
  echo "generated secrets/envoy.crt, secrets/envoy.key (self-signed)"
fi
echo "${#made[@]} file(s) generated in $dir; give each partner and reader its token file's"
echo "content as its bearer token, and keep the folder out of backups that others can read."
