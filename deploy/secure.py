"""Checks that the deploy kit in the given folder runs no hub open and publishes nothing in clear.

Run by validate.sh. Each rule names what it found; any finding fails the check:
  - a hub (a compose service built from the Dockerfile, the Kubernetes Deployment) listens beyond
    loopback without principals (partners or readers with a token or a certificate), or names a
    token file that is not mounted from a secret;
  - a compose service is published beyond the host's loopback, except Envoy on listeners that
    terminate TLS; a Kubernetes Service of the hubs is a NodePort or a LoadBalancer;
  - a credential is written into the kit: a password, cookie, secret or token in an environment
    value, a URL with a password that is not a `${VARIABLE}`, Grafana's anonymous access on.
"""

import os
import re
import sys
import tomllib

import yaml

problems = []
CREDENTIAL_NAME = re.compile(r"(PASS|PASSWORD|COOKIE|SECRET|TOKEN)$")
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/:@\s]+:([^@\s]+)@")
LOOPBACK = ("127.", "::1", "[::1]", "localhost")


def problem(where, what):
    problems.append(f"{where}: {what}")


def literal_credentials(where, env):
    """env: name -> value. Flags credential-named variables with values, and URL passwords."""
    for name, value in env.items():
        value = "" if value is None else str(value)
        if CREDENTIAL_NAME.search(name) and value and not value.startswith("/"):
            problem(where, f"{name} is written into the kit; give it from a secret (a *_FILE "
                           f"variable, an env_file in secrets/, or a secretKeyRef)")
        strings_with_url_passwords(f"{where} {name}", value)


def strings_with_url_passwords(where, value):
    for password in URL_PASSWORD.findall(value):
        if not re.fullmatch(r"\$\{[A-Za-z0-9_]+\}", password):
            problem(where, "a URL carries a password; write ${VARIABLE} and set the variable "
                           "from a secret")


def walk_strings(where, value):
    if isinstance(value, str):
        strings_with_url_passwords(where, value)
    elif isinstance(value, dict):
        for key, item in value.items():
            walk_strings(f"{where}.{key}", item)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            walk_strings(f"{where}[{i}]", item)


def hub_principals(where, config, mounted):
    """Problems with a hub configuration's principals; mounted(path) says whether a token file
    comes from a secret."""
    entries = config.get("partners", []) + config.get("readers", [])
    able = [e for e in entries
            if e.get("token_sha256") or e.get("token_file") or e.get("cert_subject")]
    if not able:
        problem(where, "the hub has no partners or readers with a token or a certificate, so it "
                       "would answer every call unauthenticated (it could run open)")
    for entry in entries:
        path = entry.get("token_file")
        if path and not mounted(path):
            problem(where, f"`{entry.get('name')}`: token_file {path} is not mounted from a secret")
    walk_strings(where, config)


def dockerfile_env(path):
    env = {}
    if not os.path.isfile(path):
        return env
    text = open(path).read().replace("\\\n", " ")
    for line in text.splitlines():
        if line.startswith("ENV "):
            for name, value in re.findall(r"(\w+)=(\S+)", line):
                env[name] = value
    return env


def envoy_tls_ports(path):
    envoy = yaml.safe_load(open(path))
    ports = set()
    for listener in envoy["static_resources"]["listeners"]:
        chains = listener.get("filter_chains", [])
        if chains and all("DownstreamTlsContext" in str(c.get("transport_socket", ""))
                          for c in chains):
            ports.add(listener["address"]["socket_address"]["port_value"])
    return ports


def host_binding(spec):
    """(host address or None, container port) of a compose `ports` entry."""
    if isinstance(spec, dict):
        return spec.get("host_ip"), int(str(spec["target"]).split("/")[0])
    parts = str(spec).rsplit(":", 2)
    container = int(parts[-1].split("/")[0])
    return (parts[0] if len(parts) == 3 else None), container


def check_compose(kit):
    compose = yaml.safe_load(open(os.path.join(kit, "compose.yaml")))
    secrets = compose.get("secrets", {})
    for name, svc in compose["services"].items():
        where = f"compose.yaml {name}"
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
        literal_credentials(where, env)
        if str(env.get("GF_AUTH_ANONYMOUS_ENABLED", "false")).lower() == "true":
            problem(where, "Grafana lets anonymous users in; keep GF_AUTH_ANONYMOUS_ENABLED off")
        image = str(svc.get("image", ""))
        tls_ports = set()
        if image.startswith("envoyproxy/"):
            for volume in svc.get("volumes", []):
                if "envoy.yaml" in str(volume):
                    tls_ports = envoy_tls_ports(os.path.join(kit, str(volume).split(":")[0]))
        for spec in svc.get("ports", []):
            host, container = host_binding(spec)
            if host and host.startswith(LOOPBACK):
                continue
            if container not in tls_ports:
                problem(where, f"port {container} is published beyond the host's loopback "
                               f"without TLS; publish only Envoy's TLS listeners, or bind "
                               f"127.0.0.1")
        build = svc.get("build")
        if build and "Dockerfile" in str(build.get("dockerfile", "")):
            check_compose_hub(kit, where, svc, env, secrets)


def check_compose_hub(kit, where, svc, env, secrets):
    build = svc["build"]
    env = {**dockerfile_env(os.path.join(kit, build.get("context", "."),
                                         build.get("dockerfile"))), **env}
    command = svc.get("command", [])
    config = {}
    if "--config" in command:
        inside = command[command.index("--config") + 1]
        for volume in svc.get("volumes", []):
            source, _, target = str(volume).partition(":")
            if target.split(":")[0] == inside:
                config = tomllib.load(open(os.path.join(kit, source), "rb"))
    addrs = [env.get("TRAINHUB_SERVER__GRPC_ADDR", "127.0.0.1"),
             env.get("TRAINHUB_SERVER__HTTP_ADDR", "127.0.0.1")]
    addrs += [config.get("server", {}).get(k, "") for k in ("grpc_addr", "http_addr")]
    if not any(a and not a.startswith(LOOPBACK) for a in addrs):
        return
    names = [s if isinstance(s, str) else s.get("source") for s in svc.get("secrets", [])]

    def mounted(path):
        return any(path == f"/run/secrets/{n}" and n in secrets for n in names)

    hub_principals(where, config, mounted)


def check_kubernetes(kit):
    documents = []
    k8s = os.path.join(kit, "k8s")
    for file in sorted(os.listdir(k8s)):
        if file.endswith((".yaml", ".yml")):
            documents += [(file, d) for d in yaml.safe_load_all(open(os.path.join(k8s, file))) if d]
    configs = {d["metadata"]["name"]: d.get("data", {}) for _, d in documents
               if d["kind"] == "ConfigMap"}
    for file, doc in documents:
        where = f"k8s/{file} {doc['kind']} {doc['metadata']['name']}"
        if doc["kind"] == "Service" and doc["spec"].get("type") in ("NodePort", "LoadBalancer"):
            problem(where, "publishes the hubs outside the cluster; use a TLS ingress")
        if doc["kind"] == "ConfigMap":
            for key, text in doc.get("data", {}).items():
                walk_strings(f"{where} {key}", text)
        if doc["kind"] == "Deployment":
            check_deployment(where, doc["spec"]["template"]["spec"], configs)


def check_deployment(where, pod, configs):
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for container in pod["containers"]:
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        literal_credentials(where, env)
        secret_dirs, config = [], {}
        for mount in container.get("volumeMounts", []):
            volume = volumes.get(mount["name"], {})
            if "secret" in volume:
                secret_dirs.append(mount["mountPath"].rstrip("/") + "/")
            if "configMap" in volume:
                data = configs.get(volume["configMap"]["name"], {})
                if "trainhub.toml" in data:
                    config = tomllib.loads(data["trainhub.toml"])
        if container.get("args", [None])[0] != "serve":
            continue
        hub_principals(where, config, lambda p: any(p.startswith(d) for d in secret_dirs))


def main():
    kit = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    check_compose(kit)
    check_kubernetes(kit)
    if problems:
        sys.exit("the deploy kit is not secure by default:\n  " + "\n  ".join(problems))
    print("deploy kit: no hub runs open, only Envoy's TLS listeners are published beyond "
          "loopback, no credential is written into it")


main()
