#!/usr/bin/env bash
# Validates the deploy kit offline (run by .ci/run): the compose file against the Compose
# Specification schema, the Kubernetes manifests against the Kubernetes API schemas (strict:
# unknown fields are errors), every file the compose file mounts or builds from exists, and the
# kit is secure by default (secure.py: no hub runs open, only Envoy's TLS listeners are
# published, no credential is written into the files).
# Tools: `pip install check-jsonschema kubernetes-validate` (both carry their schemas).
#
#   bash deploy/validate.sh [KIT]     # KIT: a copy of deploy/ to check instead of this one
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "${1:-$here}"

check-jsonschema --builtin-schema vendor.compose-spec compose.yaml
kubernetes-validate --strict k8s/*.yaml

python3 - <<'PY'
import os, sys, yaml
compose = yaml.safe_load(open("compose.yaml"))
missing = []
for name, svc in compose["services"].items():
    build = svc.get("build")
    if build:
        context = build.get("context", ".")
        dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(dockerfile):
            missing.append(f"{name}: build file {dockerfile}")
    for volume in svc.get("volumes", []):
        source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
        if source.startswith(".") and not os.path.exists(source):
            missing.append(f"{name}: mounted {source}")
if missing:
    sys.exit("compose.yaml refers to missing files:\n  " + "\n  ".join(missing))
print("compose.yaml: every mounted and built file exists")
PY

python3 "$here/secure.py" .
