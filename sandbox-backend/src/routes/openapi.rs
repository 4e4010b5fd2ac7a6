//! `GET /v1/openapi.json`: the API described as OpenAPI 3.1. Kept true by
//! `tests/api/openapi.rs`, which checks that its operations are exactly the router's
//! routes ([`super::ROUTES`]) and validates real responses against its schemas.

use axum::Json;
use serde_json::{Value, json};

pub async fn serve() -> Json<Value> {
    Json(document())
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn json_body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": reference(schema)}}})
}

fn answer(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": reference(schema)}}})
}

fn ndjson(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": {"application/x-ndjson": {"schema": reference(schema)}}})
}

fn errors() -> Value {
    json!({
        "400": answer("Invalid request (`invalid_request`, `invalid_json`)", "Error"),
        "401": answer("Missing or wrong bearer token (`unauthorized`)", "Error"),
        "404": answer("No such sandbox, process or template", "Error"),
        "409": answer("Not allowed in the sandbox's current status (`conflict`)", "Error"),
        "503": answer("The provider is unavailable (`sandbox_unavailable`)", "Error"),
    })
}

fn operation(summary: &str, responses: Value, body: Option<Value>, parameters: &[Value]) -> Value {
    let mut all = errors();
    if let (Some(all), Some(extra)) = (all.as_object_mut(), responses.as_object()) {
        for (status, response) in extra {
            all.insert(status.clone(), response.clone());
        }
    }
    let mut op = json!({"summary": summary, "responses": all, "parameters": parameters});
    if let Some(body) = body {
        op["requestBody"] = body;
    }
    op
}

fn path_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
}

fn query_param(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description})
}

/// The whole document.
pub fn document() -> Value {
    let id = path_param("id");
    let pid = path_param("pid");
    let relay = operation(
        "Relay to the sandbox's gateway (port 9000 of its own loopback, whatever the path says): any method, and WebSocket upgrades; `Authorization` is not passed on, `X-Gateway-Authorization` is passed on as `Authorization`",
        json!({
            "200": {"description": "Whatever the gateway answers (any status, headers and body)"},
            "101": {"description": "The gateway switched protocols; the connection is spliced to it"},
            "413": answer("A request body over 16 MiB (`payload_too_large`)", "Error"),
            "501": answer("The provider has no relay (`unsupported`)", "Error"),
        }),
        None,
        &[id.clone(), path_param("path")],
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Nightshift sandbox backend",
            "version": nightshift_protocol::VERSION,
            "description": "Sandboxes through one provider-neutral API. Every route but /v1/health needs `Authorization: Bearer <SANDBOX_BACKEND_TOKEN>`."
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/health": {"get": {"summary": "Liveness (no token needed)", "security": [], "responses": {"200": answer("Up", "BackendHealth")}}},
            "/v1/openapi.json": {"get": operation("This document", json!({"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}), None, &[])},
            "/v1/providers": {"get": operation("Configured providers and their capabilities", json!({"200": answer("Providers", "ProviderList")}), None, &[])},
            "/v1/sandboxes": {
                "get": operation("Sandboxes that are not destroyed, oldest first", json!({"200": answer("Sandboxes", "SandboxList")}), None, &[]),
                "post": operation("Create and start a sandbox", json!({"201": answer("Created (status `ready`)", "Sandbox")}), Some(json_body("CreateSandboxRequest")), &[]),
            },
            "/v1/sandboxes/{id}": {
                "get": operation("One sandbox", json!({"200": answer("The sandbox", "Sandbox")}), None, std::slice::from_ref(&id)),
                "delete": operation("Destroy (final; repeating it is harmless)", json!({"200": answer("Destroyed", "Sandbox")}), None, std::slice::from_ref(&id)),
            },
            "/v1/sandboxes/{id}/stop": {"post": operation("Stop its processes; files stay (concurrent lifecycle calls share one operation)", json!({"200": answer("Stopped", "Sandbox")}), None, std::slice::from_ref(&id))},
            "/v1/sandboxes/{id}/start": {"post": operation("Start a stopped sandbox again (not a destroyed one)", json!({"200": answer("Ready", "Sandbox")}), None, std::slice::from_ref(&id))},
            "/v1/sandboxes/{id}/sleep": {"post": operation("Stop it, keeping its files, and answer what was kept (providers without the sleep capability refuse)", json!({"200": answer("Stopped, with its snapshot", "SandboxSnapshot")}), None, std::slice::from_ref(&id))},
            "/v1/sandboxes/{id}/wake": {"post": operation("Start a sandbox put to sleep again, its runner with a new token when given", json!({"200": answer("Ready", "Sandbox")}), Some(json_body("WakeSandboxRequest")), std::slice::from_ref(&id))},
            "/v1/sandboxes/{id}/fork": {"post": operation("A new, started sandbox with a copy of this one's files", json!({"201": answer("The fork", "Sandbox")}), Some(json!({"required": false, "content": {"application/json": {"schema": reference("ForkRequest")}}})), std::slice::from_ref(&id))},
            "/v1/sandboxes/{id}/checkpoints": {
                "get": operation("The sandbox's checkpoints, oldest first", json!({"200": answer("The checkpoints", "CheckpointList"), "501": answer("The provider keeps no checkpoints (`unsupported`)", "Error")}), None, std::slice::from_ref(&id)),
                "post": operation(
                    "Record the workspace as it is now (content-addressed: unchanged files cost nothing; links are kept as links; sockets, fifos and devices are skipped)",
                    json!({"201": answer("Kept", "CheckpointTaken"), "413": answer("More files or bytes than a checkpoint keeps (`payload_too_large`); nothing was kept", "Error"), "501": answer("The provider keeps no checkpoints (`unsupported`)", "Error")}),
                    None,
                    std::slice::from_ref(&id),
                ),
            },
            "/v1/sandboxes/{id}/checkpoints/{checkpoint}/restore": {"post": operation(
                "Make the workspace exactly what the checkpoint recorded; a running sandbox is stopped for the restore and started again (processes are not restored)",
                json!({"200": answer("Restored", "CheckpointRestored"), "501": answer("The provider keeps no checkpoints (`unsupported`)", "Error")}),
                None,
                &[id.clone(), path_param("checkpoint")],
            )},
            "/v1/sandboxes/{id}/exec": {"post": operation(
                "Run a command: NDJSON lines as output happens, the exit line last; one object with ?stream=false",
                json!({"200": {"description": "Output", "content": {
                    "application/x-ndjson": {"schema": reference("ExecOutputLine")},
                    "application/json": {"schema": reference("ExecResult")}
                }}}),
                Some(json_body("ExecRequest")),
                &[id.clone(), query_param("stream", json!({"type": "boolean"}), "false for one JSON object")],
            )},
            "/v1/sandboxes/{id}/files": {
                "get": operation("Read one file of the workspace", json!({"200": {"description": "Its bytes", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}), None, &[id.clone(), json!({"name": "path", "in": "query", "required": true, "schema": {"type": "string"}, "description": "Relative to the workspace; `..`, absolute paths and symlinks leading out are refused"})]),
                "put": operation("Write one file (parents created)", json!({"204": {"description": "Written"}}), Some(json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}})), &[id.clone(), json!({"name": "path", "in": "query", "required": true, "schema": {"type": "string"}})]),
            },
            "/v1/sandboxes/{id}/processes": {
                "get": operation("Background processes", json!({"200": answer("Processes", "ProcessList")}), None, std::slice::from_ref(&id)),
                "post": operation("Start a background process", json!({"201": answer("Started", "ProcessInfo")}), Some(json_body("StartProcessRequest")), std::slice::from_ref(&id)),
            },
            "/v1/sandboxes/{id}/processes/{pid}": {"get": operation("One process: running or its exit, with bounded output buffers", json!({"200": answer("The process", "ProcessInfo")}), None, &[id.clone(), pid.clone()])},
            "/v1/sandboxes/{id}/processes/{pid}/output": {"get": operation(
                "Its stdout and stderr as NDJSON from an offset; with follow (default) until it exits",
                json!({"200": ndjson("Output lines, `dropped` when the offset is older than the buffer, `exit` last", "ProcessOutputLine")}),
                None,
                &[id.clone(), pid.clone(),
                  query_param("offset", json!({"type": "integer", "minimum": 0}), "Start of both streams"),
                  query_param("stdout_offset", json!({"type": "integer", "minimum": 0}), "Start of stdout"),
                  query_param("stderr_offset", json!({"type": "integer", "minimum": 0}), "Start of stderr"),
                  query_param("follow", json!({"type": "boolean"}), "Keep streaming until the process exits (default true)")],
            )},
            "/v1/sandboxes/{id}/processes/{pid}/stdin": {"post": operation("Write to its stdin", json!({"204": {"description": "Written"}}), Some(json_body("ProcessStdinRequest")), &[id.clone(), pid.clone()])},
            "/v1/sandboxes/{id}/processes/{pid}/kill": {"post": operation("Kill it with its children and wait for it to exit", json!({"200": answer("The ended process", "ProcessInfo")}), None, &[id.clone(), pid.clone()])},
            "/v1/sandboxes/{id}/tunnels": {"get": operation(
                "Where the sandbox's gateway is reached: this backend's relay (local provider) or the provider's tunnel, with the headers to send and the gateway's status",
                json!({"200": answer("Where the gateway is", "SandboxTunnels"), "501": answer("The provider does not say (`unsupported`)", "Error")}),
                None,
                std::slice::from_ref(&id),
            )},
            "/v1/sandboxes/{id}/gateway/{path}": {
                "get": relay.clone(), "post": relay.clone(), "put": relay.clone(), "delete": relay.clone(), "patch": relay,
            },
            "/v1/templates": {
                "get": operation("Built templates", json!({"200": answer("Templates", "TemplateList")}), None, &[]),
                "post": operation("Build a template (cached by its spec)", json!({"201": answer("Built now", "Template"), "200": answer("Built before", "Template")}), Some(json_body("CreateTemplateRequest")), &[]),
            },
            "/v1/templates/{id}": {
                "get": operation("One template", json!({"200": answer("The template", "Template")}), None, std::slice::from_ref(&id)),
                "delete": operation("Remove a template", json!({"204": {"description": "Removed"}}), None, &[id]),
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        }
    })
}

fn schemas() -> Value {
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let mut all = serde_json::Map::new();
    for part in [
        sandbox_schemas(&string_map),
        exec_schemas(&string_map),
        other_schemas(&string_map),
    ] {
        if let Value::Object(part) = part {
            all.extend(part);
        }
    }
    Value::Object(all)
}

fn sandbox_schemas(string_map: &Value) -> Value {
    let string_map = string_map.clone();
    json!({
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
                "BackendHealth": {"type": "object", "required": ["ok", "version", "providers"], "properties": {"ok": {"type": "boolean"}, "version": {"type": "string"}, "providers": {"type": "array", "items": {"type": "string"}}}},
                "NetworkMode": {"type": "string", "enum": ["isolated", "private", "none"]},
                "SandboxStatus": {"type": "string", "enum": ["pending", "initializing", "ready", "stopping", "stopped", "destroying", "destroyed", "error"]},
                "Sandbox": {"type": "object", "required": ["id", "provider", "status", "error", "network", "labels", "created_at"], "properties": {
                    "id": {"type": "string"}, "provider": {"type": "string"}, "status": reference("SandboxStatus"),
                    "error": {"type": ["string", "null"]}, "network": reference("NetworkMode"), "labels": string_map,
                    "created_at": {"type": "integer"}, "status_reason": {"type": ["string", "null"]},
                    "template": {"type": ["string", "null"]}, "forked_from": {"type": ["string", "null"]},
                    "runner_digest": {"type": ["string", "null"]}
                }},
                "SandboxList": {"type": "object", "required": ["sandboxes"], "properties": {"sandboxes": {"type": "array", "items": reference("Sandbox")}}},
                "SandboxSnapshot": {"type": "object", "required": ["sandbox_id", "kind", "runner_version", "made_at"], "properties": {
                    "sandbox_id": {"type": "string"}, "kind": {"type": "string", "enum": ["directory", "stopped_container", "filesystem_image", "checkpoint"]},
                    "runner_version": {"type": "string"}, "image": {"type": ["string", "null"]}, "made_at": {"type": "integer"}, "bytes": {"type": ["integer", "null"], "minimum": 0}
                }},
                "WakeSandboxRequest": {"type": "object", "additionalProperties": false, "properties": {"runner": {"oneOf": [reference("RunnerLaunch"), {"type": "null"}]}}},
                "RunnerLaunch": {"type": "object", "required": ["worker_url", "session_id", "token"], "properties": {"worker_url": {"type": "string"}, "session_id": {"type": "string"}, "token": {"type": "string"}}},
                "CreateSandboxRequest": {"type": "object", "additionalProperties": false, "properties": {
                    "provider": {"type": ["string", "null"]}, "template": {"oneOf": [{"type": "string"}, reference("TemplateSpec"), {"type": "null"}]},
                    "env": string_map, "network": {"oneOf": [reference("NetworkMode"), {"type": "null"}]},
                    "idle_timeout_minutes": {"type": ["integer", "null"], "minimum": 0}, "default_timeout_ms": {"type": ["integer", "null"], "minimum": 1},
                    "labels": string_map, "runner": {"oneOf": [reference("RunnerLaunch"), {"type": "null"}]},
                    "gateway": {"oneOf": [reference("GatewayLaunch"), {"type": "null"}]},
                    "from_checkpoint": {"oneOf": [reference("CheckpointSource"), {"type": "null"}]}
                }},
                "CheckpointSource": {"type": "object", "required": ["sandbox", "checkpoint"], "additionalProperties": false, "properties": {
                    "sandbox": {"type": "string"}, "checkpoint": {"type": "string", "pattern": "^cp_[0-9a-f]{32}$"}
                }},
                "CheckpointTaken": {"type": "object", "required": ["id", "bytes_added", "files", "ms"], "properties": {
                    "id": {"type": "string"}, "bytes_added": {"type": "integer", "minimum": 0}, "files": {"type": "integer", "minimum": 0}, "ms": {"type": "integer", "minimum": 0}
                }},
                "CheckpointInfo": {"type": "object", "required": ["id", "created_at", "files", "bytes"], "properties": {
                    "id": {"type": "string"}, "created_at": {"type": "integer"}, "files": {"type": "integer", "minimum": 0}, "bytes": {"type": "integer", "minimum": 0}
                }},
                "CheckpointList": {"type": "object", "required": ["checkpoints"], "properties": {
                    "checkpoints": {"type": "array", "items": reference("CheckpointInfo")}
                }},
                "CheckpointRestored": {"type": "object", "required": ["id", "files", "ms"], "properties": {
                    "id": {"type": "string"}, "files": {"type": "integer", "minimum": 0}, "ms": {"type": "integer", "minimum": 0}
                }},
                "GatewayLaunch": {"type": "object", "required": ["session", "key"], "additionalProperties": false, "properties": {
                    "session": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"}, "key": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$", "description": "The session's derived gateway key; never shown again"}
                }},
                "GatewayStatus": {"type": "string", "enum": ["running", "restarting", "unavailable", "none", "unknown"]},
                "GatewayTunnel": {"type": "object", "required": ["url", "headers", "status"], "properties": {
                    "url": {"type": "string"}, "headers": string_map, "status": reference("GatewayStatus"), "reason": {"type": ["string", "null"]}
                }},
                "SandboxTunnels": {"type": "object", "required": ["gateway"], "properties": {"gateway": reference("GatewayTunnel")}}
    })
}

fn exec_schemas(string_map: &Value) -> Value {
    let string_map = string_map.clone();
    json!({
                "ForkRequest": {"type": "object", "additionalProperties": false, "properties": {
                    "idle_timeout_minutes": {"type": ["integer", "null"]}, "network": {"oneOf": [reference("NetworkMode"), {"type": "null"}]},
                    "env": {"oneOf": [string_map, {"type": "null"}]}, "labels": {"oneOf": [string_map, {"type": "null"}]}
                }},
                "ExecRequest": {"type": "object", "required": ["command"], "additionalProperties": false, "properties": {
                    "command": {"type": "string"}, "args": {"type": "array", "items": {"type": "string"}}, "env": string_map,
                    "cwd": {"type": ["string", "null"]}, "timeout_ms": {"type": ["integer", "null"], "minimum": 1}, "stdin": {"type": ["string", "null"]}
                }},
                "ExecExit": {"type": "object", "required": ["code", "timed_out", "killed", "duration_ms"], "properties": {
                    "code": {"type": "integer"}, "timed_out": {"type": "boolean"}, "killed": {"type": "boolean"}, "duration_ms": {"type": "integer"}
                }},
                "ExecOutputLine": {"oneOf": [
                    {"type": "object", "required": ["stdout"], "properties": {"stdout": {"type": "string"}}},
                    {"type": "object", "required": ["stderr"], "properties": {"stderr": {"type": "string"}}},
                    {"type": "object", "required": ["exit"], "properties": {"exit": reference("ExecExit")}}
                ]},
                "ExecResult": {"type": "object", "required": ["stdout", "stderr", "exit", "truncated"], "properties": {
                    "stdout": {"type": "string"}, "stderr": {"type": "string"}, "exit": reference("ExecExit"), "truncated": {"type": "boolean"}
                }},
                "StartProcessRequest": {"type": "object", "required": ["command"], "additionalProperties": false, "properties": {
                    "command": {"type": "string"}, "args": {"type": "array", "items": {"type": "string"}}, "env": string_map, "cwd": {"type": ["string", "null"]}
                }},
                "OutputBuffer": {"type": "object", "required": ["total_bytes", "dropped_bytes", "tail"], "properties": {
                    "total_bytes": {"type": "integer"}, "dropped_bytes": {"type": "integer"}, "tail": {"type": "string"}
                }},
                "ProcessInfo": {"type": "object", "required": ["id", "command", "args", "running", "exit", "started_at", "stdout", "stderr"], "properties": {
                    "id": {"type": "string"}, "command": {"type": "string"}, "args": {"type": "array", "items": {"type": "string"}},
                    "running": {"type": "boolean"}, "exit": {"oneOf": [reference("ExecExit"), {"type": "null"}]}, "started_at": {"type": "integer"},
                    "stdout": reference("OutputBuffer"), "stderr": reference("OutputBuffer")
                }}
    })
}

fn other_schemas(string_map: &Value) -> Value {
    let string_map = string_map.clone();
    json!({
                "ProcessList": {"type": "object", "required": ["processes"], "properties": {"processes": {"type": "array", "items": reference("ProcessInfo")}}},
                "ProcessOutputLine": {"oneOf": [
                    {"type": "object", "required": ["stdout"], "properties": {"stdout": {"type": "object", "required": ["offset", "data"], "properties": {"offset": {"type": "integer"}, "data": {"type": "string"}}}}},
                    {"type": "object", "required": ["stderr"], "properties": {"stderr": {"type": "object", "required": ["offset", "data"], "properties": {"offset": {"type": "integer"}, "data": {"type": "string"}}}}},
                    {"type": "object", "required": ["dropped"], "properties": {"dropped": {"type": "object", "required": ["stream", "bytes"], "properties": {"stream": {"type": "string"}, "bytes": {"type": "integer"}}}}},
                    {"type": "object", "required": ["exit"], "properties": {"exit": reference("ExecExit")}}
                ]},
                "ProcessStdinRequest": {"type": "object", "additionalProperties": false, "properties": {"data": {"type": "string"}, "eof": {"type": "boolean"}}},
                "ProviderCapabilities": {"type": "object", "required": ["network_modes", "isolated", "fork", "templates", "stdin", "processes", "snapshots", "reattach", "restart", "tunnels", "package_managers"], "properties": {
                    "network_modes": {"type": "array", "items": reference("NetworkMode")}, "isolated": {"type": "boolean"}, "fork": {"type": "boolean"},
                    "templates": {"type": "boolean"}, "stdin": {"type": "boolean"}, "processes": {"type": "boolean"}, "snapshots": {"type": "boolean"},
                    "reattach": {"type": "boolean"}, "restart": {"type": "boolean"}, "sleep": {"type": "boolean"}, "tunnels": {"type": "boolean"}, "gateway": {"type": "boolean"},
                    "package_managers": {"type": "array", "items": {"type": "string"}},
                    "enforced_limits": {"type": "array", "items": {"type": "string", "enum": ["pids", "memory", "cpu", "tmp", "disk"]}},
                    "missing_limits": {"type": "array", "items": {"type": "string", "enum": ["pids", "memory", "cpu", "tmp", "disk"]}}
                }},
                "ProviderInfo": {"type": "object", "required": ["name", "default", "capabilities"], "properties": {"name": {"type": "string"}, "default": {"type": "boolean"}, "capabilities": reference("ProviderCapabilities")}},
                "ProviderList": {"type": "object", "required": ["providers"], "properties": {"providers": {"type": "array", "items": reference("ProviderInfo")}}},
                "TemplateSpec": {"type": "object", "additionalProperties": false, "properties": {
                    "base": {"type": ["string", "null"]}, "packages": {"type": "array", "items": {"type": "string"}, "description": "`manager:name`, e.g. `pip:requests`"},
                    "commands": {"type": "array", "items": {"type": "string"}}, "workdir": {"type": ["string", "null"]}, "env": string_map
                }},
                "CreateTemplateRequest": {"type": "object", "description": "A TemplateSpec plus an optional provider", "properties": {
                    "provider": {"type": ["string", "null"]}, "base": {"type": ["string", "null"]}, "packages": {"type": "array", "items": {"type": "string"}},
                    "commands": {"type": "array", "items": {"type": "string"}}, "workdir": {"type": ["string", "null"]}, "env": string_map
                }},
                "Template": {"type": "object", "required": ["id", "provider", "spec", "created_at", "build_log"], "properties": {
                    "id": {"type": "string"}, "provider": {"type": "string"}, "spec": reference("TemplateSpec"), "created_at": {"type": "integer"}, "build_log": {"type": "string"}
                }},
                "TemplateList": {"type": "object", "required": ["templates"], "properties": {"templates": {"type": "array", "items": reference("Template")}}}
    })
}
