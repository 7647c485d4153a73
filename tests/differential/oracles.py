"""Oracles the real tools cannot fool: a logging stand-in of the Kubernetes API, and a logging
proxy in front of moto (the AWS stand-in). Both record every request (method, path, operation)
and say which were mutations or secret reads. Python standard library only."""

import http.client
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# ---------------------------------------------------------------------------------------------
# Kubernetes API stand-in
# ---------------------------------------------------------------------------------------------

# resource -> (kind, namespaced, shortNames, verbs, group/version, categories)
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
CORE = {
    "pods": ("Pod", True, ["po"], ["all"]),
    "secrets": ("Secret", True, [], []),
    "configmaps": ("ConfigMap", True, ["cm"], []),
    "services": ("Service", True, ["svc"], ["all"]),
    "namespaces": ("Namespace", False, ["ns"], []),
    "nodes": ("Node", False, ["no"], []),
    "serviceaccounts": ("ServiceAccount", True, ["sa"], []),
    "events": ("Event", True, ["ev"], []),
    "persistentvolumeclaims": ("PersistentVolumeClaim", True, ["pvc"], []),
}
GROUPS = {
    ("apps", "v1"): {
        "deployments": ("Deployment", True, ["deploy"], ["all"]),
        "replicasets": ("ReplicaSet", True, ["rs"], ["all"]),
        "statefulsets": ("StatefulSet", True, ["sts"], ["all"]),
        "daemonsets": ("DaemonSet", True, ["ds"], ["all"]),
    },
    ("batch", "v1"): {
        "jobs": ("Job", True, [], ["all"]),
        "cronjobs": ("CronJob", True, ["cj"], ["all"]),
    },
    ("rbac.authorization.k8s.io", "v1"): {
        "roles": ("Role", True, [], []),
        "clusterroles": ("ClusterRole", False, [], []),
    },
    ("authorization.k8s.io", "v1"): {
        "selfsubjectaccessreviews": ("SelfSubjectAccessReview", False, [], []),
    },
}
SUBRESOURCES = {
    "pods": ["log", "exec", "attach", "portforward", "proxy", "status", "eviction", "ephemeralcontainers"],
    "deployments": ["scale", "status"],
    "services": ["proxy"],
    "nodes": ["proxy"],
    "serviceaccounts": ["token"],
}


def resource_list(group_version, table):
    out = []
    for name, (kind, namespaced, short, cats) in table.items():
        r = {"name": name, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
             "verbs": ALL_VERBS, "shortNames": short}
        if cats:
            r["categories"] = cats
        if name == "selfsubjectaccessreviews":
            r["verbs"] = ["create"]
        out.append(r)
        for sub in SUBRESOURCES.get(name, []):
            out.append({"name": f"{name}/{sub}", "singularName": "", "namespaced": namespaced, "kind": kind,
                        "verbs": ["get", "create", "update", "patch"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": out}


def kind_of(resource):
    if resource in CORE:
        return CORE[resource][0], "v1"
    for (g, v), table in GROUPS.items():
        if resource in table:
            return table[resource][0], f"{g}/{v}"
    return "Unknown", "v1"


def an_object(resource, name, ns):
    kind, api = kind_of(resource)
    meta = {"name": name, "uid": f"uid-{resource}-{name}", "resourceVersion": "1",
            "creationTimestamp": "2024-01-01T00:00:00Z"}
    if ns and resource not in ("namespaces", "nodes", "clusterroles"):
        meta["namespace"] = ns
    obj = {"apiVersion": api, "kind": kind, "metadata": meta}
    if kind == "Secret":
        obj["data"] = {"password": "aHVudGVyMg=="}
        obj["type"] = "Opaque"
    elif kind == "ConfigMap":
        obj["data"] = {"k": "v"}
    elif kind == "Pod":
        obj["spec"] = {"containers": [{"name": "c", "image": "nginx"}], "nodeName": "node-1"}
        obj["status"] = {"phase": "Running"}
    elif kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        obj["spec"] = {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                       "template": {"metadata": {"labels": {"app": name}},
                                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
        obj["status"] = {"replicas": 1, "readyReplicas": 1}
    return obj


DEFAULT_NAMES = {"pods": "web", "secrets": "db", "configmaps": "cfg", "services": "api", "namespaces": "prod",
                 "nodes": "node-1", "deployments": "api", "serviceaccounts": "default"}


class KubeLog:
    def __init__(self):
        self.lock = threading.Lock()
        self.entries = []
        self.deleted = set()

    def take(self):
        with self.lock:
            e, self.entries = self.entries, []
            self.deleted = set()
        return e


def classify_kube(method, path, query, body=b""):
    """What one request to the API means: 'deletion' (destroys an object), 'mutation' (creates or
    changes one: a write, which the posture lets run), 'secret-fetch' (kubectl received a Secret;
    it is a secret read only if a value reaches the output, which the harness looks for), 'exec',
    or None (a read)."""
    parts = [p for p in path.split("/") if p]
    q = urllib.parse.parse_qs(query)
    # A server-side dry run: in the query, or for DELETE in the DeleteOptions body.
    if "dryRun" in q or (method == "DELETE" and b'"dryRun":["All"]' in body.replace(b" ", b"")):
        return None
    if any(p in ("exec", "attach", "portforward", "proxy") for p in parts[-2:]) or (
            "proxy" in parts and "namespaces" in parts):
        return "exec"
    if method == "DELETE":
        return "deletion"
    if method in ("PATCH", "PUT"):
        return "mutation"
    if method == "POST":
        if parts and parts[-1] in ("selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews",
                                   "subjectaccessreviews", "tokenreviews"):
            return None
        return "mutation"
    if method == "GET" and "secrets" in parts:
        return "secret-fetch"
    if method == "GET" and parts and parts[-1] == "token":
        return "secret-read"
    return None


def make_kube_handler(log):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send_json(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def handle_any(self):
            u = urllib.parse.urlsplit(self.path)
            n = int(self.headers.get("Content-Length") or 0)
            body = b""
            if n:
                body = self.rfile.read(n)
            elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    body += self.rfile.read(size)
                    self.rfile.read(2)
            with log.lock:
                log.entries.append((self.command, u.path, u.query, body))
            self.answer(u.path, u.query)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any

        def answer(self, path, query):
            parts = [p for p in path.split("/") if p]
            if path == "/version":
                return self.send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0",
                                            "platform": "linux/amd64"})
            if path == "/api":
                return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                            "serverAddressByClientCIDRs": [
                                                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
            if path == "/apis":
                groups = []
                for (g, v) in GROUPS:
                    gv = {"groupVersion": f"{g}/{v}", "version": v}
                    groups.append({"name": g, "versions": [gv], "preferredVersion": gv})
                return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
            if path == "/api/v1":
                return self.send_json(200, resource_list("v1", CORE))
            if len(parts) == 3 and parts[0] == "apis" and (parts[1], parts[2]) in GROUPS:
                return self.send_json(200, resource_list(f"{parts[1]}/{parts[2]}", GROUPS[(parts[1], parts[2])]))
            if parts[:1] == ["openapi"] or parts[:1] == ["healthz"] or parts[:1] == ["livez"]:
                return self.send_json(404, {"kind": "Status", "status": "Failure", "code": 404})
            # Objects: /api/v1/... or /apis/G/V/...
            if parts[:2] == ["api", "v1"]:
                rest = parts[2:]
            elif parts[:1] == ["apis"] and len(parts) >= 3:
                rest = parts[3:]
            else:
                return self.send_json(404, {"kind": "Status", "status": "Failure", "code": 404})
            ns = None
            if len(rest) >= 3 and rest[0] == "namespaces":
                ns, rest = rest[1], rest[2:]
            if not rest:
                return self.send_json(404, {"kind": "Status", "status": "Failure", "code": 404})
            resource = rest[0]
            q = urllib.parse.parse_qs(query)
            if self.command == "DELETE":
                with log.lock:
                    log.deleted.add(path)
            if "watch" in q and q["watch"][0] in ("1", "true"):
                sel = q.get("fieldSelector", ["metadata.name=x"])[0].split("=")[-1]
                obj = an_object(resource, sel, ns)
                return self.send_json(200, {"type": "DELETED", "object": obj})
            if len(rest) == 1 and self.command == "GET" and "fieldSelector" in q:
                sel = q["fieldSelector"][0].split("=")[-1]
                kind, api = kind_of(resource)
                gone = any(d.endswith("/" + resource + "/" + sel) for d in log.deleted)
                items = [] if gone else [an_object(resource, sel, ns)]
                return self.send_json(200, {"kind": kind + "List", "apiVersion": api,
                                            "metadata": {"resourceVersion": "1"}, "items": items})
            if self.command == "GET" and path in log.deleted:
                return self.send_json(404, {"kind": "Status", "status": "Failure", "code": 404,
                                            "reason": "NotFound", "message": "not found"})
            if len(rest) == 1:
                if self.command == "POST":
                    return self.send_json(201, an_object(resource, "created", ns))
                if self.command == "DELETE":
                    return self.send_json(200, {"kind": "Status", "status": "Success"})
                kind, api = kind_of(resource)
                item = an_object(resource, DEFAULT_NAMES.get(resource, "one"), ns or "default")
                return self.send_json(200, {"kind": kind + "List", "apiVersion": api,
                                            "metadata": {"resourceVersion": "1"}, "items": [item]})
            name = rest[1]
            if len(rest) >= 3 and rest[2] == "log":
                body = b"log line\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                return self.wfile.write(body)
            if len(rest) >= 3 and rest[2] in ("exec", "attach", "portforward"):
                return self.send_json(400, {"kind": "Status", "status": "Failure", "code": 400,
                                            "message": "not supported here"})
            if len(rest) >= 3 and rest[2] == "scale":
                return self.send_json(200, {"kind": "Scale", "apiVersion": "autoscaling/v1",
                                            "metadata": {"name": name, "namespace": ns},
                                            "spec": {"replicas": 1}, "status": {"replicas": 1}})
            return self.send_json(200, an_object(resource, name, ns))

    return H


def start_kube():
    log = KubeLog()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_kube_handler(log))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, log


def kubeconfig(port, user="u", ns="default"):
    server = port if isinstance(port, str) else f"http://127.0.0.1:{port}"
    return (
        "apiVersion: v1\nkind: Config\nclusters:\n"
        f"- name: c\n  cluster: {{server: '{server}'}}\n"
        f"- name: other\n  cluster: {{server: '{server}'}}\n"
        "contexts:\n"
        f"- name: c\n  context: {{cluster: c, user: {user}, namespace: {ns}}}\n"
        f"- name: prod\n  context: {{cluster: other, user: {user}, namespace: prod}}\n"
        "current-context: c\nusers:\n"
        f"- name: {user}\n  user: {{token: t}}\n"
    )


# ---------------------------------------------------------------------------------------------
# AWS: a logging proxy in front of moto
# ---------------------------------------------------------------------------------------------

READ_PREFIXES = ("Get", "List", "Describe", "Head", "BatchGet", "Query", "Scan", "Search", "Lookup", "Check",
                 "Estimate", "Simulate", "Validate", "Preview", "Test", "Filter")
SECRET_OPS = {"GetSecretValue", "BatchGetSecretValue", "Decrypt", "GetSessionToken", "AssumeRole",
              "GetFederationToken", "AssumeRoleWithWebIdentity", "GetPasswordData", "CreateAccessKey",
              "GetAuthorizationToken", "GetCredentialsForIdentity", "GenerateDataKey"}


DELETION_PREFIXES = ("Delete", "Terminate", "Remove", "Purge", "Deregister", "Abort", "Drop", "Reset")


def classify_aws(method, path, query, target, body):
    """'deletion', 'mutation' (a write), 'secret-read' or None for one request to moto."""
    op = None
    if target:
        op = target.split(".")[-1]
    else:
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace")) if body else {}
        q = urllib.parse.parse_qs(query)
        if "Action" in form:
            op = form["Action"][0]
        elif "Action" in q:
            op = q["Action"][0]
    if op:
        if op in SECRET_OPS:
            return "secret-read"
        if op.startswith("GetParameter") and b'"WithDecryption": true' in body.replace(b'"WithDecryption":true',
                                                                                      b'"WithDecryption": true'):
            return "secret-read"
        if op.startswith(READ_PREFIXES):
            return None
        if op.startswith(DELETION_PREFIXES):
            return "deletion"
        return "mutation"
    # S3 (REST): reads are GET and HEAD; a DELETE deletes (a batch delete is a POST with ?delete).
    if method in ("GET", "HEAD"):
        return None
    if method == "DELETE" or (method == "POST" and "delete" in urllib.parse.parse_qs(query, keep_blank_values=True)):
        return "deletion"
    return "mutation"


class AwsLog(KubeLog):
    pass


def make_aws_proxy(log, upstream_port):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            if not n and self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.read(2)
                body = b"".join(chunks)
            u = urllib.parse.urlsplit(self.path)
            target = self.headers.get("X-Amz-Target", "")
            with log.lock:
                log.entries.append((self.command, u.path, u.query, target,
                                    classify_aws(self.command, u.path, u.query, target, body)))
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("content-length", "transfer-encoding", "connection", "expect")}
            headers["Content-Length"] = str(len(body))
            c = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
            try:
                c.request(self.command, self.path, body=body, headers=headers)
                r = c.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            finally:
                c.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any

    return H


def start_aws_proxy(upstream_port):
    log = AwsLog()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_aws_proxy(log, upstream_port))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, log
