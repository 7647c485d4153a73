#!/usr/bin/env python3
"""The real OPA engine for guardsh's Rego tests (tests/rego.rs), from the PyPI wheel
opa-golib-python-bindings (OPA v1.20 as a Go shared library, loaded with ctypes).

  opa_harness.py generate N SEED DIR      writes DIR/cases.toml: N invocations for `guardsh policy test`
  opa_harness.py diff POLICY DATA         reads `guardsh policy test --json` lines on stdin, evaluates
                                          each Rego input with OPA, and fails on any difference
  opa_harness.py serve POLICY PORTFILE LOG  an OPA Data API on 127.0.0.1 (plus misbehaving paths)

The wheel's directory (holding opa_bindings/) is GUARDSH_OPA_BINDINGS; .ci/run puts it there.
"""

import json
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.environ.get("GUARDSH_OPA_BINDINGS", ""))
from opa_bindings import OpaEngine, OpaError, OpaUndefinedError  # noqa: E402


def engine(policy, data=None):
    e = OpaEngine()
    with open(policy) as f:
        e.add_policy(policy, f.read())
    if data:
        with open(data) as f:
            e.add_data(json.load(f))
    return e


def decide(e, inp):
    """The decision, None when undefined, or {"error": ...} when evaluation fails."""
    try:
        return e.eval_document("guardsh.decision", inp)
    except OpaUndefinedError:
        return None
    except OpaError as err:
        return {"error": str(err)}


# --- generate ---------------------------------------------------------------------------------

CONTEXTS = ["prod", "prod-eu", "eu-prod", "staging", "dev", "production", "preprod", "kind-local"]
NAMESPACES = ["prod", "prod-db", "kube-system", "default", "dev", "team-a", "production", "kube-public"]
KUBE = [
    ["get", "pods"], ["get", "secrets"], ["describe", "pod", "web-1"], ["logs", "web-1"],
    ["delete", "pod", "web-1"], ["delete", "ns", "NS"], ["delete", "namespace", "NS"],
    ["delete", "namespaces/NS"], ["delete", "deploy/web"], ["apply", "-f", "-"],
    ["label", "pod", "x", "a=b"], ["scale", "deploy/web", "--replicas=3"], ["rollout", "undo", "deploy/web"],
    ["rollout", "status", "deploy/web"], ["exec", "web-1", "--", "sh"], ["create", "secret", "generic", "s"],
    ["config", "view", "--raw"], ["edit", "deploy/web"], ["drain", "node-1"], ["frobnicate", "x"],
    ["auth", "can-i", "delete", "pods"], ["port-forward", "web-1", "8080"], ["get", "pods", "--help"],
    ["delete", "pod", "x", "--dry-run=server"],
]
PROFILES = ["prod", "prod-admin", "production", "dev", "sandbox", "staging"]
AWS = [
    ["s3", "ls"], ["s3", "rm", "s3://b/k"], ["s3", "rb", "s3://b", "--force"], ["s3", "cp", "a", "s3://b/a"],
    ["ec2", "describe-instances"], ["ec2", "terminate-instances", "--instance-ids", "i-1"],
    ["iam", "create-access-key"], ["sts", "get-caller-identity"], ["lambda", "invoke", "--function-name", "f", "o"],
    ["dynamodb", "delete-table", "--table-name", "t"], ["secretsmanager", "get-secret-value", "--secret-id", "s"],
]
DBS = ["prod_main", "prod", "production", "dev", "app_test", "analytics"]
SQL = [
    "select 1", "SELECT count(*) FROM users", "delete from users", "DELETE FROM users WHERE id = 1",
    "update t set a = 1", "UPDATE t SET a = 1 WHERE id = 2", "drop table audit", "TRUNCATE events",
    "insert into t values (1)", "create table x (a int)", "grant all on t to bob", "\\dt",
    "select 1; drop table users", "begin; delete from t where a = 1; commit", "ALTER TABLE t ADD COLUMN b int",
    "select pg_sleep(1)", "vacuum",
]


def toml_str(s):
    return json.dumps(s)


def generate(n, seed, out_dir):
    rnd = random.Random(seed)
    kubeconfigs = []
    for ctx in CONTEXTS:
        path = os.path.join(out_dir, f"kubeconfig-{ctx}")
        with open(path, "w") as f:
            f.write(f"apiVersion: v1\nkind: Config\ncurrent-context: {ctx}\ncontexts: []\n")
        kubeconfigs.append(path)
    lines = []
    for i in range(n):
        env = {}
        stdin = None
        tool = rnd.choice(["kubectl", "kubectl", "kubectl", "aws", "psql", "psql"])
        if tool == "kubectl":
            words = [w.replace("NS", rnd.choice(NAMESPACES)) for w in rnd.choice(KUBE)]
            pre = []
            r = rnd.random()
            if r < 0.35:
                pre += rnd.choice([["--context", rnd.choice(CONTEXTS)], [f"--context={rnd.choice(CONTEXTS)}"]])
            elif r < 0.6:
                env["KUBECONFIG"] = rnd.choice(kubeconfigs)
            if rnd.random() < 0.5:
                pre += rnd.choice([["-n", rnd.choice(NAMESPACES)], [f"--namespace={rnd.choice(NAMESPACES)}"]])
            if rnd.random() < 0.1:
                pre += ["-A"]
            argv = ["kubectl"] + (pre + words if rnd.random() < 0.5 else words + pre)
        elif tool == "aws":
            pre = []
            r = rnd.random()
            if r < 0.4:
                env["AWS_PROFILE"] = rnd.choice(PROFILES)
            elif r < 0.7:
                pre = ["--profile", rnd.choice(PROFILES)]
            if rnd.random() < 0.3:
                env["AWS_REGION"] = rnd.choice(["eu-west-1", "us-east-1"])
            argv = ["aws"] + pre + rnd.choice(AWS)
        else:
            db = rnd.choice(DBS)
            sql = rnd.choice(SQL)
            r = rnd.random()
            target = rnd.choice([[db], ["--dbname", db], ["-d", db], ["-h", rnd.choice(["prod-db.internal", "localhost"]), db]])
            if r < 0.6:
                argv = ["psql"] + target + ["-c", sql]
            elif r < 0.8:
                argv = ["psql"] + target
                stdin = sql
            else:
                argv = ["psql"] + target + ["-f", "script.sql"]
        if rnd.random() < 0.1:
            env["GUARDSH_MODE"] = "ci"
        lines.append("[[case]]")
        lines.append(f"name = {toml_str(f'generated {i}')}")
        lines.append("argv = [" + ", ".join(toml_str(a) for a in argv) + "]")
        if env:
            lines.append("env = { " + ", ".join(f"{k} = {toml_str(v)}" for k, v in env.items()) + " }")
        if stdin is not None:
            lines.append(f"stdin = {toml_str(stdin)}")
        lines.append("")
    with open(os.path.join(out_dir, "cases.toml"), "w") as f:
        f.write("\n".join(lines))


# --- diff -------------------------------------------------------------------------------------

def diff(policy, data):
    e = engine(policy, data)
    total = same = 0
    actions = {}
    differences = []
    for line in sys.stdin:
        case = json.loads(line)
        stage = case["policy"]
        rego = next(o for o in stage["engines"] if o["engine"] == "rego")
        theirs = decide(e, stage["input"])
        total += 1
        both_failed = isinstance(theirs, dict) and "error" in theirs and rego["error"] is not None
        if both_failed or (rego["error"] is None and rego["result"] == theirs):
            same += 1
            act = "error" if both_failed else (theirs or {}).get("action", "undefined")
            actions[act] = actions.get(act, 0) + 1
        else:
            differences.append({"name": case["name"], "regorus": rego["result"], "error": rego["error"], "opa": theirs, "input": stage["input"]})
    print(json.dumps({"total": total, "same": same, "actions": actions, "differences": differences[:5]}))
    sys.exit(0 if total > 0 and same == total else 1)


# --- serve ------------------------------------------------------------------------------------

def serve(policy, portfile, log):
    e = engine(policy)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, code, body):
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            with lock, open(log, "a") as f:
                f.write(json.dumps({"path": self.path, "body": body}) + "\n")
            path = self.path[len("/v1/data/"):] if self.path.startswith("/v1/data/") else None
            if path is None:
                return self.answer(404, {"code": "not_found"})
            kind = path.split("/")[0]
            if kind == "fail500":
                return self.answer(500, {"code": "internal_error", "message": "storage unavailable"})
            if kind == "slow":
                time.sleep(5)
                return self.answer(200, {"result": {"action": "allow", "reasons": []}})
            if kind == "garbage":
                return self.answer(200, b"<html>this is not OPA</html>")
            if kind == "shape":
                return self.answer(200, {"result": {"action": "permit"}})
            with lock:
                try:
                    result = e.eval_document(path.replace("/", "."), body.get("input"))
                except OpaUndefinedError:
                    return self.answer(200, {})
            return self.answer(200, {"result": result})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(portfile + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(portfile + ".tmp", portfile)
    server.serve_forever()


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "generate":
        generate(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif cmd == "diff":
        diff(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    elif cmd == "serve":
        serve(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(f"unknown command {cmd}")
