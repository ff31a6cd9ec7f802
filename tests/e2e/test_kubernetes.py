"""test_kubernetes.py - the Kubernetes manifests (deploy/kubernetes/single
and deploy/kubernetes/cluster) are valid for the API's schemas, checked by
an independent validator from npm (kubernetes-models, pinned in
tests/tools/package-lock.json, run by tests/tools/k8s-validate.mjs), and
say what the issue asks: probes on /healthz and /readyz, resources, a
non-root read-only container (the Containerfile's uid and volume), and
for the cluster a PodDisruptionBudget and a HorizontalPodAutoscaler on
the StatefulSet, selectors that match the pods, and only settings the
server has.
"""

import copy
import json
import os
import re
import subprocess

from harness import e2e_test, check, check_eq
from test_openapi import tools_node
import test_container

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
TOOLS = os.path.join(ROOT, "tests", "tools")
K8S = os.path.join(ROOT, "deploy", "kubernetes")


def validate(*files):
    node = tools_node()
    p = subprocess.run([node, os.path.join(TOOLS, "k8s-validate.mjs")] +
                       list(files), capture_output=True, text=True,
                       timeout=120)
    check(p.returncode in (0, 1), "k8s-validate: %s" % p.stderr)
    return p.returncode, json.loads(p.stdout)["documents"]


def by_kind(docs):
    out = {}
    for d in docs:
        out.setdefault(d["object"]["kind"], []).append(d["object"])
    return out


def image_user():
    final = test_container.stages(test_container.instructions())[-1]
    uid = [a for i, a in final if i == "USER"][0].split(":")[0]
    return int(uid)


def check_pods(sts, where):
    """The pod template of a StatefulSet: probes, resources, sandbox."""
    pod = sts["spec"]["template"]["spec"]
    labels = sts["spec"]["template"]["metadata"]["labels"]
    check_eq(sts["spec"]["selector"]["matchLabels"], labels,
             "%s: the selector matches the pods" % where)
    sc = pod["securityContext"]
    check_eq((sc["runAsNonRoot"], sc["runAsUser"]), (True, image_user()),
             "%s: non-root, the image's uid" % where)
    check_eq(sc["seccompProfile"]["type"], "RuntimeDefault",
             "%s: seccomp" % where)
    check_eq(pod.get("automountServiceAccountToken"), False,
             "%s: no API token in the pod" % where)
    names = {v["name"] for v in pod.get("volumes", [])} | {
        t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]}
    for c in pod["containers"]:
        check_eq(c["readinessProbe"]["httpGet"]["path"], "/readyz",
                 "%s: readiness on /readyz" % where)
        check_eq(c["livenessProbe"]["httpGet"]["path"], "/healthz",
                 "%s: liveness on /healthz" % where)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            check(c[probe]["httpGet"]["port"] in ports,
                  "%s: %s on a named port" % (where, probe))
        r = c["resources"]
        check("cpu" in r["requests"] and "memory" in r["requests"] and
              "memory" in r["limits"], "%s: resources %r" % (where, r))
        csc = c["securityContext"]
        check_eq((csc["readOnlyRootFilesystem"],
                  csc["allowPrivilegeEscalation"],
                  csc["capabilities"]["drop"]), (True, False, ["ALL"]),
                 "%s: a read-only, unprivileged container" % where)
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        check("/var/lib/tpwallet" in mounts and "/tmp" in mounts,
              "%s: the state directory and /tmp are the writable paths"
              % where)
        check(set(mounts.values()) <= names, "%s: mounts of volumes it "
              "has" % where)
        env = {e["name"] for e in c.get("env", [])}
        listen = [e["value"] for e in c["env"]
                  if e["name"] == "TPWALLET_LISTEN"]
        check_eq(listen, ["0.0.0.0:%d" % ports["http"]],
                 "%s: it listens on its port" % where)
        with open(os.path.join(ROOT, "docs", "operations.md")) as f:
            ops = f.read()
        for name in env:
            check(not name.startswith("TPWALLET_") or
                  "`%s`" % name in ops,
                  "%s: %s is no setting of docs/operations.md"
                  % (where, name))
    return labels


def check_services(services, labels, sts, where):
    for svc in services:
        check_eq(svc["spec"]["selector"], labels,
                 "%s: Service %s selects the pods"
                 % (where, svc["metadata"]["name"]))
    check(sts["spec"]["serviceName"] in
          {s["metadata"]["name"] for s in services},
          "%s: the StatefulSet's serviceName is a Service" % where)


@e2e_test(timeout=300)  # the first run may install the validator
def test_kubernetes_manifests_are_valid_and_complete(ctx):
    single = os.path.join(K8S, "single", "tpwallet.yaml")
    cluster = os.path.join(K8S, "cluster", "tpwallet.yaml")
    rc, docs = validate(single, cluster)
    check_eq([(d["object"]["kind"], d["error"]) for d in docs if d["error"]],
             [], "documents the validator refuses")
    check_eq(rc, 0, "k8s-validate exit status")

    one = by_kind([d for d in docs if d["file"] == single])
    check_eq(sorted(one), ["Service", "StatefulSet"], "single: kinds")
    sts = one["StatefulSet"][0]
    check_eq(sts["spec"]["replicas"], 1, "single: one node")
    labels = check_pods(sts, "single")
    check_services(one["Service"], labels, sts, "single")

    many = by_kind([d for d in docs if d["file"] == cluster])
    check_eq(sorted(many), ["HorizontalPodAutoscaler",
                            "PodDisruptionBudget", "Service",
                            "StatefulSet"], "cluster: kinds")
    sts = many["StatefulSet"][0]
    labels = check_pods(sts, "cluster")
    check_services(many["Service"], labels, sts, "cluster")
    env = {e["name"]: e for e in
           sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    check("secretKeyRef" in env["TPWALLET_CLUSTER"]["valueFrom"],
          "cluster: the connection string from a Secret")
    check("$(POD_NAME)" in env["TPWALLET_CLUSTER_NODE"]["value"] and
          "$(POD_NAME)" in env["TPWALLET_CLUSTER_ADVERTISE"]["value"],
          "cluster: each node's own name and address")
    headless = [s for s in many["Service"]
                if s["spec"].get("clusterIP") == "None"]
    check_eq([s["metadata"]["name"] for s in headless],
             [sts["spec"]["serviceName"]], "cluster: the headless Service")
    pdb = many["PodDisruptionBudget"][0]
    check_eq(pdb["spec"]["selector"]["matchLabels"], labels,
             "cluster: the PDB selects the pods")
    hpa = many["HorizontalPodAutoscaler"][0]
    ref = hpa["spec"]["scaleTargetRef"]
    check_eq((ref["kind"], ref["name"]), ("StatefulSet",
                                          sts["metadata"]["name"]),
             "cluster: the HPA scales the StatefulSet")
    check(pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"] <=
          sts["spec"]["replicas"] <= hpa["spec"]["maxReplicas"],
          "cluster: the PDB leaves room for one disruption at the HPA's "
          "minimum, which the StatefulSet starts at")

    # The validator does refuse a broken manifest: a port as text.
    broken = copy.deepcopy(sts)
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0][
        "containerPort"] = "http"
    path = ctx.path("broken.yaml")
    with open(path, "w") as f:
        json.dump(broken, f)  # JSON is YAML
    rc, docs = validate(path)
    check(rc == 1 and docs[0]["error"] and
          re.search(r"containerPort", docs[0]["error"]),
          "a text containerPort passed: %r" % docs)
