#!/usr/bin/env python3
"""Checks the packaging as far as the machine allows (tests/it/deploy.rs runs it).

Always: deploy/kubernetes renders with `kubectl kustomize` (or, without kubectl, its files are
read as they are) into a Deployment whose probes, ports, grace period, volumes and security
settings agree with the ConfigMap's sluice.toml, which `sluice check` accepts; the PDB, Service
and HPA select and target it. docker/compose.yaml has a primary, two replicas of it and Sluice
with the config mounted, and `sluice check` accepts docker/sluice.toml. docker/Dockerfile is a
multi-stage build whose final stage runs as non-root with a HEALTHCHECK on /health/ready, and
docker/Dockerfile.local has the same runtime lines.

With a container engine that can run containers here (podman): the image is built from the
given binary (docker/build-local, FROM scratch), run against the testbed, asked by a real
client (mariadb CLI), health-checked with its own HEALTHCHECK, checked to run as uid 65532,
and stopped with SIGTERM: it must exit 0.

Prints what it checked and what it could not; exits 1 on the first failed check.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def sluice_check(sluice, text, env=None, secrets=None):
    """Runs `sluice check` on config `text`; `secrets` maps password files to create."""
    with tempfile.TemporaryDirectory() as d:
        for path in secrets or []:
            local = os.path.join(d, os.path.basename(path))
            with open(local, "w") as f:
                f.write("secret\n")
            text = text.replace(path, local)
        p = os.path.join(d, "sluice.toml")
        with open(p, "w") as f:
            f.write(text)
        r = subprocess.run([sluice, "check", "--config", p], capture_output=True, text=True,
                           env={**os.environ, **(env or {})})
        check(r.returncode == 0, f"sluice check rejected the config: {r.stdout}{r.stderr}")


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def kubernetes(sluice):
    base = os.path.join(ROOT, "deploy/kubernetes")
    if shutil.which("kubectl"):
        out = subprocess.run(["kubectl", "kustomize", base], capture_output=True, text=True)
        check(out.returncode == 0, f"kubectl kustomize failed: {out.stderr}")
        docs = [d for d in yaml.safe_load_all(out.stdout) if d]
        how = "rendered with kubectl kustomize"
    else:
        kust = yaml.safe_load(open(os.path.join(base, "kustomization.yaml")))
        docs = [d for r in kust["resources"] for d in yaml.safe_load_all(open(os.path.join(base, r))) if d]
        toml_text = open(os.path.join(base, "sluice.toml")).read()
        docs.append({"kind": "ConfigMap", "metadata": {"name": "sluice-config"}, "data": {"sluice.toml": toml_text}})
        how = "read without kustomize (kubectl not installed: generators and labels not applied)"
    kinds = {d["kind"]: d for d in docs}
    for k in ["Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ConfigMap"]:
        check(k in kinds, f"kubernetes: no {k}")
    dep, cm = kinds["Deployment"], kinds["ConfigMap"]
    toml_text = cm["data"]["sluice.toml"]
    cfg = tomllib.loads(toml_text)
    secrets = [v for v in re.findall(r'password_file = "([^"]+)"', toml_text)]
    sluice_check(sluice, toml_text, secrets=secrets)
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check(ports.get("mysql") == port_of(cfg["proxy"]["listen"]), "kubernetes: mysql port differs from proxy.listen")
    check(ports.get("admin-http") == port_of(cfg["proxy"]["admin_listen"]), "kubernetes: admin port differs from admin_listen")
    check(c["livenessProbe"]["httpGet"]["path"] == "/health/live", "kubernetes: liveness probe is not /health/live")
    check(c["readinessProbe"]["httpGet"]["path"] == "/health/ready", "kubernetes: readiness probe is not /health/ready")
    for probe in ["livenessProbe", "readinessProbe"]:
        check(c[probe]["httpGet"]["port"] in ports, f"kubernetes: {probe} names an unknown port")
    req = c["resources"]["requests"]
    check("cpu" in req and "memory" in req, "kubernetes: resource requests missing (the HPA needs cpu)")
    grace_ms = pod["terminationGracePeriodSeconds"] * 1000
    stop = cfg["proxy"].get("shutdown_timeout_ms", 30000)
    check(grace_ms > stop, f"kubernetes: grace {grace_ms} ms is not above shutdown_timeout_ms {stop}")
    check(pod["securityContext"]["runAsNonRoot"] is True, "kubernetes: not runAsNonRoot")
    check(c["securityContext"]["readOnlyRootFilesystem"] is True, "kubernetes: root filesystem writable")
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    check(vols["config"]["configMap"]["name"] == cm["metadata"]["name"], "kubernetes: config volume names another ConfigMap")
    config_arg = c["args"][c["args"].index("--config") + 1]
    check(config_arg == mounts["config"] + "/sluice.toml", f"kubernetes: --config {config_arg} is not the mounted file")
    check("secret" in vols["secrets"], "kubernetes: no Secret volume")
    for s in secrets:
        check(s.startswith(mounts["secrets"] + "/"), f"kubernetes: {s} is not in the Secret's mount")
    labels = dep["spec"]["template"]["metadata"]["labels"] if "labels" in dep["spec"]["template"].get("metadata", {}) else None
    if labels is not None:
        sel = dep["spec"]["selector"]["matchLabels"]
        check(all(labels.get(k) == v for k, v in sel.items()), "kubernetes: Deployment selector misses its pods")
        for k in ["PodDisruptionBudget"]:
            s = kinds[k]["spec"]["selector"]["matchLabels"]
            check(all(labels.get(a) == b for a, b in s.items()), f"kubernetes: {k} selects other pods")
        s = kinds["Service"]["spec"]["selector"]
        check(all(labels.get(a) == b for a, b in s.items()), "kubernetes: Service selects other pods")
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    check(hpa["scaleTargetRef"]["kind"] == "Deployment" and hpa["scaleTargetRef"]["name"] == dep["metadata"]["name"],
          "kubernetes: HPA targets something else")
    check(any(m["resource"]["name"] == "cpu" for m in hpa["metrics"]), "kubernetes: HPA does not scale on CPU")
    print(f"kubernetes: {len(docs)} objects {how}; probes, ports, grace, volumes, selectors and sluice check agree")


def compose(sluice):
    doc = yaml.safe_load(open(os.path.join(ROOT, "docker/compose.yaml")))
    svc = doc["services"]
    for s in ["primary", "replica1", "replica2", "sluice"]:
        check(s in svc, f"compose: no service {s}")
    for r in ["replica1", "replica2"]:
        env = svc[r]["environment"]
        check(env.get("MARIADB_MASTER_HOST") == "primary", f"compose: {r} does not replicate from primary")
        check(svc[r]["image"].startswith("mariadb:10.11"), f"compose: {r} is not MariaDB 10.11")
    check("/etc/sluice/sluice.toml" in " ".join(svc["sluice"]["volumes"]), "compose: the config is not mounted")
    text = open(os.path.join(ROOT, "docker/sluice.toml")).read()
    cfg = tomllib.loads(text)
    hosts = {a.split(":")[0] for a in [cfg["shards"][0]["primary"]] + [r["addr"] for r in cfg["shards"][0]["replicas"]]}
    check(hosts == {"primary", "replica1", "replica2"}, f"compose: sluice.toml names {hosts}")
    published = {int(p.rsplit(":", 1)[1]) for p in svc["sluice"]["ports"]}
    for key in [cfg["proxy"]["listen"], cfg["proxy"]["admin_listen"], cfg["admin"]["listen"]]:
        check(port_of(key) in published, f"compose: {key} is not published")
    env = {k: str(v) for k, v in svc["sluice"]["environment"].items()}
    env = {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", v) for k, v in env.items()}
    sluice_check(sluice, text, env=env)
    print("compose: primary + two replicas + sluice; docker/sluice.toml passes sluice check with compose's environment")


def runtime_lines(path):
    """The number of stages and the final stage's runtime instructions."""
    lines, stages = [], 0
    text = open(path).read().replace("\\\n", " ")
    for line in text.splitlines():
        word = line.split(" ", 1)[0]
        if word == "FROM":
            stages += 1
            lines = []
        elif word in {"USER", "ENV", "EXPOSE", "HEALTHCHECK", "STOPSIGNAL", "ENTRYPOINT", "CMD"}:
            lines.append(line.strip())
    return stages, lines


def dockerfiles():
    stages, final = runtime_lines(os.path.join(ROOT, "docker/Dockerfile"))
    check(stages >= 2, "Dockerfile: not a multi-stage build")
    user = [l for l in final if l.startswith("USER ")]
    check(user and user[0].split()[1].split(":")[0] not in {"0", "root"}, "Dockerfile: final stage runs as root")
    check(any("probe" in l and "ready" in l for l in final if l.startswith("HEALTHCHECK")),
          "Dockerfile: no HEALTHCHECK on /health/ready")
    expose = [l for l in final if l.startswith("EXPOSE")]
    check(expose and {"3306", "9090"} <= set(expose[0].split()[1:]), "Dockerfile: client and admin ports not exposed")
    _, local = runtime_lines(os.path.join(ROOT, "docker/Dockerfile.local"))
    check(local == final, f"Dockerfile.local's runtime lines differ from Dockerfile's:\n{local}\n{final}")
    print("Dockerfile: multi-stage, non-root, HEALTHCHECK via `sluice probe ready`; Dockerfile.local matches it")


def container(sluice, primary, replica):
    podman = shutil.which("podman")
    if podman is None:
        print("container: NOT RUN (podman is not installed); the files were checked statically only")
        return
    tag = f"localhost/sluice-test:{os.getpid()}"
    r = subprocess.run([os.path.join(ROOT, "docker/build-local"), sluice, tag], capture_output=True, text=True)
    check(r.returncode == 0, f"container: build-local failed: {r.stderr}")
    # This machine's sandbox refuses crun's cgroup setup and raising rlimits: runc, lowered limits.
    run_opts = ["--runtime", "runc"] if shutil.which("runc") else []
    limits = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
    probe = subprocess.run([podman, *run_opts, "run", "--rm", *limits, tag, "--version"], capture_output=True, text=True)
    if probe.returncode != 0:
        subprocess.run([podman, "rmi", "-f", tag], capture_output=True)
        print(f"container: built, NOT RUN (the engine cannot run containers here: {probe.stderr.strip()[:200]})")
        return
    def free():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        return p
    port, http = free(), free()
    d = tempfile.mkdtemp()
    cfg = os.path.join(d, "sluice.toml")
    with open(cfg, "w") as f:
        f.write(f"""[proxy]
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:{http}"
[[users]]
name = "app"
password = "app_pw"
[monitor]
user = "app"
password = "app_pw"
[replicas]
consistency = "session"
[[shards]]
name = "main"
primary = "127.0.0.1:{primary}"
replicas = [ {{ addr = "127.0.0.1:{replica}" }} ]
""")
    os.chmod(d, 0o755)
    os.chmod(cfg, 0o644)
    name = f"sluice-test-{os.getpid()}"
    r = subprocess.run([podman, *run_opts, "run", "-d", "--name", name, "--network=host", *limits,
                        "-v", f"{cfg}:/etc/sluice/sluice.toml:ro", tag], capture_output=True, text=True)
    try:
        check(r.returncode == 0, f"container: run failed: {r.stderr}")
        deadline = time.time() + 20
        ready = None
        while time.time() < deadline:
            try:
                ready = urllib.request.urlopen(f"http://127.0.0.1:{http}/health/ready", timeout=2).read().decode()
                break
            except Exception:
                time.sleep(0.2)
        check(ready and ready.startswith("ready"), f"container: /health/ready never answered 200 ({ready})")
        hc = subprocess.run([podman, "healthcheck", "run", name], capture_output=True, text=True)
        check(hc.returncode == 0, f"container: the image's HEALTHCHECK failed: {hc.stdout}{hc.stderr}")
        top = subprocess.run([podman, "top", name, "huser"], capture_output=True, text=True).stdout.split()
        check(top[1:] == ["65532"], f"container: runs as {top[1:]}, not uid 65532")
        mysql = ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{port}", "-uapp", "-papp_pw", "-N", "-B", "sluice_test", "-e"]
        t = f"container_{os.getpid()}"
        out = subprocess.run(mysql + [f"CREATE TABLE {t} (id INT PRIMARY KEY); INSERT INTO {t} VALUES (7); "
                                      f"SELECT id FROM {t}; DROP TABLE {t}"], capture_output=True, text=True)
        check(out.returncode == 0 and out.stdout.strip() == "7", f"container: write and read back failed: {out.stdout}{out.stderr}")
        started = time.time()
        stop = subprocess.run([podman, "stop", "-t", "20", name], capture_output=True, text=True)
        took = time.time() - started
        code = subprocess.run([podman, "inspect", "--format", "{{.State.ExitCode}}", name], capture_output=True, text=True).stdout.strip()
        check(stop.returncode == 0 and code == "0", f"container: SIGTERM did not end it cleanly (exit {code})")
        print(f"container: built FROM scratch ({tag}), ran against the testbed, mariadb CLI wrote and read back, "
              f"HEALTHCHECK passed, uid 65532, SIGTERM -> exit 0 in {took:.2f} s")
    finally:
        subprocess.run([podman, "rm", "-f", name], capture_output=True)
        subprocess.run([podman, "rmi", "-f", tag], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", required=True)
    ap.add_argument("--primary", type=int, default=13306)
    ap.add_argument("--replica", type=int, default=13307)
    a = ap.parse_args()
    kubernetes(a.sluice)
    compose(a.sluice)
    dockerfiles()
    container(a.sluice, a.primary, a.replica)
    print("deploy checks passed")


if __name__ == "__main__":
    main()
