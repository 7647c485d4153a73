"""A scripted model server for the real-agent tests: the Anthropic Messages API (Claude Code)
and the OpenAI Responses API (Codex), streaming, on 127.0.0.1 only.

Usage: model_server.py SCRIPT LOG PORTFILE

SCRIPT is a JSON list of shell commands (or objects {"command": ..., "timeout_ms": N}, which set
Claude Code's own tool timeout for that call). Each request that offers the agent's shell tool and
carries N tool results so far is answered with a call of the shell tool running command N;
once the list is exhausted, with the text "done". Every request is logged to LOG as one JSON
line: its path, whether it offered the shell tool, and the tool results the agent reported
(what the model "saw"). The port it listens on is written to PORTFILE.
"""
import json
import sys
import time
import http.server

SCRIPT, LOG, PORTFILE = sys.argv[1], sys.argv[2], sys.argv[3]
COMMANDS = json.load(open(SCRIPT))


def log(entry):
    entry["time"] = time.time()
    with open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        log({"path": self.path, "method": "GET"})
        self.send_json({"data": [], "models": []})

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def sse(self, event, data):
        self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def do_POST(self):
        n = int(self.headers.get("content-length", 0))
        req = json.loads(self.rfile.read(n) or b"{}")
        if self.path.startswith("/v1/messages"):
            self.anthropic(req)
        elif "/responses" in self.path:
            self.openai(req)
        else:
            log({"path": self.path, "unknown": True})
            self.send_json({})
        self.close_connection = True

    # Anthropic Messages API (Claude Code).
    def anthropic(self, req):
        tools = [t.get("name") for t in req.get("tools", [])]
        results = []
        for m in req.get("messages", []):
            if isinstance(m.get("content"), list):
                for c in m["content"]:
                    if c.get("type") == "tool_result":
                        content = c.get("content")
                        if isinstance(content, list):
                            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
                        results.append(content)
        shell = "Bash" in tools
        log({"path": self.path, "shell": shell, "results": results})
        step = len(results)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        msg = {"id": "msg_%d" % step, "type": "message", "role": "assistant", "model": req.get("model", "m"),
               "content": [], "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": 1, "output_tokens": 1}}
        self.sse("message_start", {"type": "message_start", "message": msg})
        if shell and step < len(COMMANDS):
            block = {"type": "tool_use", "id": "toolu_%d_%d" % (step, int(time.time() * 1000)), "name": "Bash", "input": {}}
            self.sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
            step_cmd = COMMANDS[step]
            if isinstance(step_cmd, dict):
                args = {"command": step_cmd["command"], "description": "step %d" % step, "timeout": step_cmd["timeout_ms"]}
            else:
                args = {"command": step_cmd, "description": "step %d" % step}
            self.sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                             "delta": {"type": "input_json_delta", "partial_json": json.dumps(args)}})
            stop = "tool_use"
        else:
            self.sse("content_block_start", {"type": "content_block_start", "index": 0,
                                             "content_block": {"type": "text", "text": ""}})
            self.sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                             "delta": {"type": "text_delta", "text": "done"}})
            stop = "end_turn"
        self.sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        self.sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                   "usage": {"output_tokens": 1}})
        self.sse("message_stop", {"type": "message_stop"})

    # OpenAI Responses API (Codex).
    def openai(self, req):
        items = req.get("input", []) if isinstance(req.get("input"), list) else []
        results = [i.get("output") for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"]
        results = [r if isinstance(r, str) else json.dumps(r) for r in results]
        tools = [t.get("name") or t.get("type") for t in req.get("tools", []) if isinstance(t, dict)]
        shell_tool = next((t for t in ("shell", "exec_command", "local_shell") if t in tools), None)
        log({"path": self.path, "shell": bool(shell_tool), "tools": tools, "results": results})
        step = len(results)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        rid = "resp_%d" % step
        self.sse("response.created", {"type": "response.created", "response": {"id": rid}})
        if shell_tool and step < len(COMMANDS):
            call_id = "call_%d" % step
            step_cmd = COMMANDS[step]["command"] if isinstance(COMMANDS[step], dict) else COMMANDS[step]
            if shell_tool == "exec_command":
                args = {"cmd": step_cmd}
            else:
                args = {"command": ["bash", "-lc", step_cmd]}
            item = {"type": "function_call", "id": "fc_%d" % step, "call_id": call_id, "name": shell_tool,
                    "arguments": json.dumps(args), "status": "completed"}
        else:
            item = {"type": "message", "id": "m_%d" % step, "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": "done", "annotations": []}]}
        self.sse("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item})
        self.sse("response.completed", {"type": "response.completed", "response": {
            "id": rid, "output": [item], "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2,
                                                   "input_tokens_details": {"cached_tokens": 0},
                                                   "output_tokens_details": {"reasoning_tokens": 0}}}})


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(PORTFILE + ".tmp", PORTFILE)
server.serve_forever()
