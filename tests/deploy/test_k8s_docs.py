"""docs/DEPLOYMENT.md's Kubernetes steps work in order on a fresh cluster.

The fenced shell blocks of section 6 are run by bash exactly as written, from the
repository's root, with ``kubectl`` and ``docker`` replaced by shell functions that record
their arguments; everything else (``openssl rand`` for the token) runs for real. The recorded
kubectl calls are then replayed, in order, on a model of a fresh cluster that knows what each
documented command does. It checks what a new user would otherwise find out the hard way:

* the namespace exists before any command that uses ``-n <namespace>``;
* the Secrets are created (with ``kubectl create secret generic``) before
  ``kubectl apply -k deploy/k8s``, under the names and keys the manifests read (the app's
  ``secretKeyRef``s, the Secret volume Prometheus reads its token from);
* ``kubectl apply -k`` renders no Secret of those names, so it never overwrites them;
* the app's pods get a valid fleet configuration from them, and Prometheus' Secret holds the
  same token and nothing else.

With kubectl installed, ``kubectl create secret --dry-run=client`` (no cluster needed) must
accept each documented command and build the Secret the model expects.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass, field

import pytest

from fastapi_error_codes.metrics import get_config_from_env
from tests.deploy._files import (
    K8S,
    ROOT,
    Manifest,
    k8s_manifests,
    load_yaml_all,
    run_documented,
    secret_references,
)

SECTION = "## 6. Kubernetes"
APP = "fastapi-errors-example"
MIN_TOKEN_LENGTH = 16  # MetricsConfig.auth_token

# Each stub appends its argv, as a JSON list, to the file named by $CALLS.
_STUBS = """\
set -euo pipefail
_record() { "$PY" -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@" >>"$CALLS"; }
kubectl() { _record kubectl "$@"; }
docker() { _record docker "$@"; }
"""

Key = tuple[str, str]  # (namespace, name)


@dataclass
class Walk:
    """What the documented commands did to a fresh cluster, in order."""

    calls: list[list[str]]
    namespaces: set[str] = field(default_factory=set)
    secrets: dict[Key, dict[str, str]] = field(default_factory=dict)
    secret_commands: list[list[str]] = field(default_factory=list)
    # The Secrets that existed when `kubectl apply -k deploy/k8s` ran, and what it applied.
    secrets_at_apply: dict[Key, dict[str, str]] | None = None
    applied: list[Manifest] = field(default_factory=list)


def _namespace_flag(args: list[str]) -> tuple[str | None, list[str]]:
    """The -n/--namespace value of a kubectl command line, and the other arguments."""
    namespace, rest = None, []
    items = iter(args)
    for arg in items:
        if arg in ("-n", "--namespace"):
            namespace = next(items)
        elif arg.startswith("--namespace="):
            namespace = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return namespace, rest


def _literals(args: list[str]) -> dict[str, str]:
    """The --from-literal=KEY=VALUE pairs of a `kubectl create secret generic`."""
    pairs: dict[str, str] = {}
    items = iter(args)
    for arg in items:
        if arg == "--from-literal":
            arg = f"--from-literal={next(items)}"
        if arg.startswith("--from-literal="):
            key, _, value = arg.split("=", 1)[1].partition("=")
            assert key not in pairs, f"key {key} given twice"
            pairs[key] = value
        else:
            assert not arg.startswith("--from-"), f"only --from-literal is modelled: {arg}"
    return pairs


def _replay(walk: Walk) -> None:
    """Replay the recorded calls on the model of a fresh cluster (no namespace, no Secret)."""
    for argv in walk.calls:
        tool, *args = argv
        if tool == "docker":
            continue
        command = " ".join(argv)
        namespace, rest = _namespace_flag(args)
        if namespace is not None:
            assert namespace in walk.namespaces, (
                f"`{command}` runs in the namespace {namespace!r} before it is created"
            )
        match rest:
            case ["create", "namespace" | "ns", name]:
                walk.namespaces.add(name)
            case ["apply", "-f", path]:
                for doc in load_yaml_all(ROOT / path):
                    if doc["kind"] == "Namespace":
                        walk.namespaces.add(doc["metadata"]["name"])
                    else:
                        target = namespace or doc["metadata"].get("namespace", "default")
                        assert target in walk.namespaces, f"`{command}`: no namespace {target}"
            case ["create", "secret", "generic", name, *options]:
                key = (namespace or "default", name)
                assert key not in walk.secrets, f"`{command}`: Secret {key} exists already"
                walk.secrets[key] = _literals(options)
                walk.secret_commands.append(args)
            case ["apply", "-k", path]:
                assert (ROOT / path).resolve() == K8S.resolve(), command
                assert walk.secrets_at_apply is None, "`kubectl apply -k` documented twice"
                walk.secrets_at_apply = dict(walk.secrets)
                walk.applied = k8s_manifests()
                walk.namespaces.update(
                    m["metadata"]["name"] for m in walk.applied if m["kind"] == "Namespace"
                )
            case _:
                raise AssertionError(f"the walk does not model `{command}`")


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> list[list[str]]:
    """The documented commands run by bash: the argv of each kubectl and docker call."""
    found: list[list[str]] = run_documented(SECTION, _STUBS, tmp_path_factory.mktemp("k8s-docs"))
    return found


def test_the_documented_commands_run_in_order_on_a_fresh_cluster(calls: list[list[str]]) -> None:
    _replay(Walk(calls))  # each step's precondition is an assertion of its own


@pytest.fixture(scope="module")
def walk(calls: list[list[str]]) -> Walk:
    """The replayed walk (the tests below error when the replay itself fails)."""
    replayed = Walk(calls)
    _replay(replayed)
    return replayed


def test_the_steps_end_with_applying_the_kustomization(walk: Walk) -> None:
    kubectl_calls = [argv for argv in walk.calls if argv[0] == "kubectl"]
    assert kubectl_calls, "no kubectl command documented"
    assert _namespace_flag(kubectl_calls[-1][1:])[1][:2] == ["apply", "-k"]
    assert walk.secrets_at_apply is not None


def test_secrets_are_created_before_apply_with_the_names_and_keys_the_manifests_read(
    walk: Walk,
) -> None:
    assert walk.secrets_at_apply is not None
    references = secret_references(walk.applied)
    assert len(references) >= 2, "the app and Prometheus each read a Secret"
    for (namespace, name), keys in references.items():
        created = walk.secrets_at_apply.get((namespace, name))
        assert created is not None, (
            f"the manifests read the Secret {name} in {namespace}, which the documented "
            "commands do not create before `kubectl apply -k`"
        )
        assert keys <= set(created), f"{name}: keys read {sorted(keys)}, created {created}"
    # And nothing documented that no manifest reads (a typo in a name would show here).
    assert set(walk.secrets) == set(references)


def test_apply_k_holds_no_secret_of_those_names(walk: Walk) -> None:
    kinds_and_names = {(m["kind"], m["metadata"]["name"]) for m in walk.applied}
    for _namespace, name in walk.secrets:
        assert ("Secret", name) not in kinds_and_names, f"apply -k would overwrite {name}"
    assert "Secret" not in {kind for kind, _ in kinds_and_names}


def _app_environment(walk: Walk) -> dict[str, str]:
    """The environment of the app's pods: its ConfigMap plus the Secrets' values."""
    assert walk.secrets_at_apply is not None
    (deployment,) = [
        m for m in walk.applied if m["kind"] == "Deployment" and m["metadata"]["name"] == APP
    ]
    namespace = deployment["metadata"]["namespace"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    configmaps = {m["metadata"]["name"]: m for m in walk.applied if m["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = walk.secrets_at_apply[(namespace, ref["name"])][ref["key"]]
    return env


def test_the_pods_get_a_valid_fleet_configuration(walk: Walk) -> None:
    env = _app_environment(walk)
    config = get_config_from_env(env)  # raises on a token shorter than 16 characters
    assert config.auth_token and len(config.auth_token) >= MIN_TOKEN_LENGTH
    assert config.redis_url
    # The documented URL names the demo Redis Service of the manifests: host and port.
    host, _, port = config.redis_url.split("://", 1)[1].split("/")[0].rpartition(":")
    name, namespace = host.split(".")[:2]
    (redis,) = [
        m
        for m in walk.applied
        if m["kind"] == "Service"
        and m["metadata"]["name"] == name
        and m["metadata"]["namespace"] == namespace
    ]
    assert int(port) in [p["port"] for p in redis["spec"]["ports"]]


def test_prometheus_gets_the_same_token_and_nothing_else(walk: Walk) -> None:
    assert walk.secrets_at_apply is not None
    token = _app_environment(walk)["FEC_AUTH_TOKEN"]
    references = secret_references(walk.applied)
    (prometheus,) = [
        m
        for m in walk.applied
        if m["kind"] == "Deployment" and m["metadata"]["name"] == "prometheus"
    ]
    namespace = prometheus["metadata"]["namespace"]
    volumes = prometheus["spec"]["template"]["spec"]["volumes"]
    (secret_name,) = [v["secret"]["secretName"] for v in volumes if "secret" in v]
    created = walk.secrets_at_apply[(namespace, secret_name)]
    assert set(created) == references[(namespace, secret_name)], "the token only"
    assert list(created.values()) == [token], "Prometheus must send the app's token"
    assert not [k for k in walk.secrets if k[1] == secret_name and k != (namespace, secret_name)]


def test_kubectl_accepts_the_documented_secret_commands(walk: Walk, kubectl: str) -> None:
    assert walk.secret_commands
    for args in walk.secret_commands:
        result = subprocess.run(
            [kubectl, *args, "--dry-run=client", "-o", "json"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env={**os.environ, "KUBECONFIG": os.devnull},  # never a real cluster
        )
        assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stderr}"
        secret = json.loads(result.stdout)
        assert secret["kind"] == "Secret"
        key = (secret["metadata"]["namespace"], secret["metadata"]["name"])
        decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        assert decoded == walk.secrets[key]
