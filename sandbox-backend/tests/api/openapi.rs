//! `/v1/openapi.json` stays true: its operations are exactly the router's routes, and
//! real answers of the API validate against its schemas.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sandbox_backend::routes::ROUTES;
use sandbox_backend::routes::openapi::document;
use serde_json::{Value, json};

use super::support::Backend;

/// Validates `value` against `schema` (the subset of JSON Schema the document uses).
fn validate(root: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/components/schemas/");
        let target = &root["components"]["schemas"][name];
        assert!(!target.is_null(), "dangling $ref {reference}");
        return validate(root, target, value, at);
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options
            .iter()
            .filter(|option| validate(root, option, value, at).is_ok())
            .count();
        return if matching == 1 {
            Ok(())
        } else {
            Err(format!("{at}: {matching} of oneOf match {value}"))
        };
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let ok = types.contains(&actual) || (actual == "integer" && types.contains(&"number"));
        if !ok {
            return Err(format!("{at}: {value} is not {types:?}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Value::Object(object) = value {
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = required.as_str().unwrap();
            if !object.contains_key(name) {
                return Err(format!("{at}: missing {name} in {value}"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, field) in object {
            match properties.and_then(|properties| properties.get(name)) {
                Some(property) => validate(root, property, field, &format!("{at}.{name}"))?,
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        return Err(format!("{at}: undocumented field {name}"));
                    }
                    Some(extra @ Value::Object(_)) => {
                        validate(root, extra, field, &format!("{at}.{name}"))?
                    }
                    // Responses must not carry undocumented fields either.
                    _ if properties.is_some() => {
                        return Err(format!("{at}: undocumented field {name}"));
                    }
                    _ => {}
                },
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (index, item) in items.iter().enumerate() {
            validate(root, item_schema, item, &format!("{at}[{index}]"))?;
        }
    }
    Ok(())
}

fn check(doc: &Value, schema: &str, value: &Value) {
    let reference = json!({"$ref": format!("#/components/schemas/{schema}")});
    if let Err(error) = validate(doc, &reference, value, schema) {
        panic!("an answer does not match the OpenAPI schema {schema}: {error}");
    }
}

#[test]
fn the_document_lists_exactly_the_routes() {
    let doc = document();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(documented, routed);
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "sbx_none")
        .replace("{pid}", "proc_1")
        .replace("{path}", "status")
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_no_other_method_is() {
    let backend = Backend::start().await;
    for (method, path) in ROUTES {
        let request = Request::builder()
            .method(method)
            .uri(concrete(path))
            .body(Body::empty())
            .unwrap();
        let status = backend.send(request).await.status();
        let expected = if path == "/v1/health" {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(status, expected, "{method} {path}");
    }
    let paths: BTreeSet<&str> = ROUTES.iter().map(|(_, path)| *path).collect();
    for path in paths {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if ROUTES.contains(&(method, path)) {
                continue;
            }
            let (status, _) = backend.call(method, &concrete(path), None).await;
            assert_eq!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is routed but not documented"
            );
        }
    }
}

#[tokio::test]
async fn real_answers_match_the_schemas() {
    let backend = Backend::start().await;
    let (status, served) = backend.call("GET", "/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&served).unwrap();
    assert_eq!(doc, document());
    let json_of = |bytes: &[u8]| -> Value { serde_json::from_slice(bytes).unwrap() };

    let (_, health) = backend.call("GET", "/v1/health", None).await;
    check(&doc, "BackendHealth", &json_of(&health));
    let (_, providers) = backend.call("GET", "/v1/providers", None).await;
    check(&doc, "ProviderList", &json_of(&providers));

    let (status, created) = backend
        .call(
            "POST",
            "/v1/sandboxes",
            Some(json!({"labels": {"a": "b"}, "env": {"X": "1"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let created = json_of(&created);
    check(&doc, "Sandbox", &created);
    let id = created["id"].as_str().unwrap().to_string();
    let (_, list) = backend.call("GET", "/v1/sandboxes", None).await;
    check(&doc, "SandboxList", &json_of(&list));
    let (status, tunnels) = backend
        .call("GET", &format!("/v1/sandboxes/{id}/tunnels"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    check(&doc, "SandboxTunnels", &json_of(&tunnels));

    let (_, result) = backend
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/exec?stream=false"),
            Some(json!({"command": "sh", "args": ["-c", "echo out; echo err >&2"]})),
        )
        .await;
    check(&doc, "ExecResult", &json_of(&result));
    let (_, streamed) = backend
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/exec"),
            Some(json!({"command": "echo", "args": ["x"]})),
        )
        .await;
    for line in String::from_utf8_lossy(&streamed).lines() {
        check(&doc, "ExecOutputLine", &serde_json::from_str(line).unwrap());
    }

    let (status, process) = backend
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes"),
            Some(json!({"command": "sh", "args": ["-c", "echo p; exit 2"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let process = json_of(&process);
    check(&doc, "ProcessInfo", &process);
    let pid = process["id"].as_str().unwrap().to_string();
    let (_, output) = backend
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/processes/{pid}/output"),
            None,
        )
        .await;
    let lines: Vec<Value> = String::from_utf8_lossy(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(lines.last().unwrap().get("exit").is_some(), "{lines:?}");
    for line in &lines {
        check(&doc, "ProcessOutputLine", line);
    }
    let (_, processes) = backend
        .call("GET", &format!("/v1/sandboxes/{id}/processes"), None)
        .await;
    check(&doc, "ProcessList", &json_of(&processes));

    let (status, forked) = backend
        .call("POST", &format!("/v1/sandboxes/{id}/fork"), None)
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&forked)
    );
    check(&doc, "Sandbox", &json_of(&forked));

    let (status, template) = backend
        .call(
            "POST",
            "/v1/templates",
            Some(json!({"commands": ["touch made"]})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&template)
    );
    check(&doc, "Template", &json_of(&template));
    let (_, templates) = backend.call("GET", "/v1/templates", None).await;
    check(&doc, "TemplateList", &json_of(&templates));

    let (status, error) = backend.call("GET", "/v1/sandboxes/sbx_missing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    check(&doc, "Error", &json_of(&error));
    let (_, stopped) = backend
        .call("POST", &format!("/v1/sandboxes/{id}/stop"), None)
        .await;
    check(&doc, "Sandbox", &json_of(&stopped));
    let (_, started) = backend
        .call("POST", &format!("/v1/sandboxes/{id}/start"), None)
        .await;
    check(&doc, "Sandbox", &json_of(&started));
    let (_, destroyed) = backend
        .call("DELETE", &format!("/v1/sandboxes/{id}"), None)
        .await;
    check(&doc, "Sandbox", &json_of(&destroyed));
}

#[test]
fn the_validator_catches_mismatches() {
    let doc = document();
    let sandbox = json!({"id": "x", "provider": "local", "status": "ready", "error": null, "network": "private", "labels": {}, "created_at": 1});
    assert!(
        validate(
            &doc,
            &json!({"$ref": "#/components/schemas/Sandbox"}),
            &sandbox,
            "s"
        )
        .is_ok()
    );
    let mut wrong = sandbox.clone();
    wrong["status"] = json!("sleeping");
    assert!(
        validate(
            &doc,
            &json!({"$ref": "#/components/schemas/Sandbox"}),
            &wrong,
            "s"
        )
        .is_err()
    );
    let mut extra = sandbox.clone();
    extra["secret_env"] = json!({});
    assert!(
        validate(
            &doc,
            &json!({"$ref": "#/components/schemas/Sandbox"}),
            &extra,
            "s"
        )
        .is_err()
    );
    let missing = json!({"id": "x"});
    assert!(
        validate(
            &doc,
            &json!({"$ref": "#/components/schemas/Sandbox"}),
            &missing,
            "s"
        )
        .is_err()
    );
}
