//! GitHub's own definition of its REST API, as a checker: every exchange with the
//! fake GitHub ([`crate::fake_github`]) is held to the official OpenAPI description
//! published by GitHub as the npm package `@octokit/openapi` (pinned exactly in the
//! root `package.json`, read from `node_modules`), so the fake cannot drift into
//! agreeing with our client instead of with GitHub.
//!
//! An exchange is checked this way: the operation is found by method and path
//! template (a literal segment beats a `{parameter}`), the request's JSON body is
//! validated against the operation's request schema, the status must be one the
//! operation lists, and the response's JSON body is validated against that status's
//! schema. The schemas are OpenAPI 3.0 (JSON Schema draft 4 plus `nullable`), so
//! `nullable` is rewritten to a `null` type before they are compiled with the
//! `jsonschema` crate (draft 4).
//!
//! One deliberate allowance: GitHub answers 401 (`Bad credentials`, `Requires
//! authentication`) from every endpoint, yet the description lists 401 for only
//! some; a 401 is accepted everywhere, and its body must still be a `basic-error`.

pub mod layer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

/// The loaded description: paths and the converted `components`.
pub struct Description {
    version: String,
    paths: Map<String, Value>,
    components: Value,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// Where the description lives: the npm package in the repository's `node_modules`.
pub fn description_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../node_modules/@octokit/openapi/generated/api.github.com.json")
}

/// The description, loaded once per test process (13 MB of JSON).
pub fn description() -> anyhow::Result<&'static Description> {
    static LOADED: OnceLock<Result<Description, String>> = OnceLock::new();
    LOADED
        .get_or_init(|| Description::load().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("GitHub's OpenAPI description: {e} (run `npm ci`)"))
}

impl Description {
    fn load() -> anyhow::Result<Description> {
        let path = description_path();
        let text =
            std::fs::read(&path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let mut doc: Value = serde_json::from_slice(&text)?;
        let package = path
            .parent()
            .and_then(|p| p.parent())
            .map(|p| p.join("package.json"))
            .unwrap_or_default();
        let version = std::fs::read(package)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|p| p["version"].as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".to_string());
        let mut components = doc["components"].take();
        rewrite_nullable(&mut components);
        let Value::Object(mut paths) = doc["paths"].take() else {
            anyhow::bail!("the description has no paths");
        };
        for operation in paths.values_mut() {
            rewrite_nullable(operation);
        }
        Ok(Description {
            version,
            paths,
            components,
            validators: Mutex::new(HashMap::new()),
        })
    }

    /// The `@octokit/openapi` version the checks use.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The path template and operation for a request, if GitHub describes one.
    pub fn operation(&self, method: &str, path: &str) -> Option<(&str, &Value)> {
        let method = method.to_ascii_lowercase();
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let mut best: Option<(usize, &str, &Value)> = None;
        for (template, item) in &self.paths {
            let Some(operation) = item.get(&method) else {
                continue;
            };
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                continue;
            }
            let mut literal = 0;
            let matches = parts.iter().zip(&segments).all(|(part, segment)| {
                if part.starts_with('{') && part.ends_with('}') {
                    !segment.is_empty()
                } else {
                    literal += 1;
                    part == segment
                }
            });
            if matches && best.is_none_or(|(score, _, _)| literal > score) {
                best = Some((literal, template, operation));
            }
        }
        best.map(|(_, template, operation)| (template, operation))
    }

    /// Checks the path's and query's parameters against the operation's: each one
    /// present is validated (its text read as the schema's type), each required one
    /// must be there. Query parameters GitHub does not declare are ignored, as
    /// GitHub ignores them.
    pub fn check_parameters(
        &self,
        template: &str,
        operation: &Value,
        path: &str,
        query: &str,
    ) -> Result<(), String> {
        let mut given: HashMap<(&str, String), String> = HashMap::new();
        for (part, segment) in template.split('/').zip(path.split('/')) {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                given.insert(("path", name.to_string()), segment.to_string());
            }
        }
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            given.insert(("query", name.into_owned()), value.into_owned());
        }
        let declared = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for parameter in &declared {
            let parameter = self.resolve(parameter);
            let (Some(place), Some(name)) = (parameter["in"].as_str(), parameter["name"].as_str())
            else {
                continue;
            };
            if place != "path" && place != "query" {
                continue;
            }
            let schema = &parameter["schema"];
            let Some(text) = given.get(&(place, name.to_string())) else {
                if parameter["required"].as_bool() == Some(true) {
                    return Err(format!("the {place} parameter `{name}` is required"));
                }
                continue;
            };
            let value = match schema["type"].as_str() {
                Some("integer") => match text.parse::<i64>() {
                    Ok(n) => json!(n),
                    Err(_) => {
                        return Err(format!(
                            "the {place} parameter `{name}` is not an integer: {text:?}"
                        ));
                    }
                },
                Some("boolean") => match text.as_str() {
                    "true" => json!(true),
                    "false" => json!(false),
                    _ => {
                        return Err(format!(
                            "the {place} parameter `{name}` is not a boolean: {text:?}"
                        ));
                    }
                },
                _ => json!(text),
            };
            let key = format!("{template} {place} parameter {name}");
            self.validate(&key, schema, &value)
                .map_err(|e| format!("the {place} parameter `{name}`: {e}"))?;
        }
        Ok(())
    }

    /// Checks a request body against the operation's request schema.
    pub fn check_request(
        &self,
        template: &str,
        operation: &Value,
        body: Option<&Value>,
    ) -> Result<(), String> {
        let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
        let required = operation["requestBody"]["required"].as_bool() == Some(true);
        match (body, schema.is_null()) {
            (None, _) if required => Err("the request needs a JSON body".to_string()),
            (None, _) => Ok(()),
            (Some(_), true) => Err("the operation takes no JSON body".to_string()),
            (Some(body), false) => self.validate(&format!("{template} request"), schema, body),
        }
    }

    /// Checks a status and response body against the operation's responses.
    pub fn check_response(
        &self,
        template: &str,
        operation: &Value,
        status: u16,
        body: Option<&Value>,
    ) -> Result<(), String> {
        let responses = &operation["responses"];
        let listed = responses
            .get(status.to_string())
            .or_else(|| responses.get("default"));
        let schema = match listed {
            Some(response) => {
                let response = self.resolve(response);
                response["content"]["application/json"]["schema"].clone()
            }
            // See the module comment: GitHub answers 401 everywhere.
            None if status == 401 => json!({"$ref": "#/components/schemas/basic-error"}),
            None => {
                let codes: Vec<&String> = responses
                    .as_object()
                    .map(|r| r.keys().collect())
                    .unwrap_or_default();
                return Err(format!("status {status} is not listed (listed: {codes:?})"));
            }
        };
        match (body, schema.is_null()) {
            (None, true) => Ok(()),
            (None, false) => Err(format!("status {status} needs a JSON body")),
            (Some(_), true) => Err(format!("status {status} has no body in the description")),
            (Some(body), false) => {
                self.validate(&format!("{template} {status} response"), &schema, body)
            }
        }
    }

    /// Follows a `$ref` to `#/components/...` (responses are often references).
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components"))
        {
            Some(pointer) => self.components.pointer(pointer).unwrap_or(value),
            None => value,
        }
    }

    fn validate(&self, key: &str, schema: &Value, instance: &Value) -> Result<(), String> {
        let validator = self.validator(key, schema)?;
        if validator.is_valid(instance) {
            return Ok(());
        }
        // The evaluation names the failures inside `oneOf`/`anyOf` branches too,
        // where the plain error would only say that no branch matched; each is cut
        // short, since a failure's text can quote the whole instance.
        let evaluation = validator.evaluate(instance);
        let errors: Vec<String> = evaluation
            .iter_errors()
            .take(8)
            .map(|e| {
                let text: String = e.error.to_string().chars().take(200).collect();
                format!("at `{}`: {text}", e.instance_location.as_str())
            })
            .collect();
        Err(errors.join("; "))
    }

    fn validator(&self, key: &str, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let mut cache = self
            .validators
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(found) = cache.get(key) {
            return Ok(found.clone());
        }
        // The schema's `#/components/...` references resolve against this root,
        // which carries the description's components beside the schema itself.
        let root = json!({"allOf": [schema], "components": self.components});
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(true)
            .build(&root)
            .map(Arc::new)
            .map_err(|e| format!("compiling the schema for {key}: {e}"))?;
        cache.insert(key.to_string(), validator.clone());
        Ok(validator)
    }
}

/// OpenAPI 3.0's `nullable: true` in JSON Schema terms: `null` joins the type (or
/// the enum), or, with no type to extend, the schema becomes "this or null".
fn rewrite_nullable(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(rewrite_nullable),
        Value::Object(map) => {
            map.values_mut().for_each(rewrite_nullable);
            if map.remove("nullable") != Some(Value::Bool(true)) {
                return;
            }
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.push(Value::Null);
            }
            match map.get_mut("type") {
                Some(Value::String(kind)) => {
                    let kind = std::mem::take(kind);
                    map.insert("type".to_string(), json!([kind, "null"]));
                }
                Some(_) => {}
                None => {
                    let inner = Value::Object(std::mem::take(map));
                    map.insert("anyOf".to_string(), json!([inner, {"type": "null"}]));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_becomes_a_null_type() {
        let mut schema = json!({"type": "string", "nullable": true, "enum": ["a"]});
        rewrite_nullable(&mut schema);
        assert_eq!(
            schema,
            json!({"type": ["string", "null"], "enum": ["a", null]})
        );
        let mut schema = json!({"allOf": [{"$ref": "#/x"}], "nullable": true});
        rewrite_nullable(&mut schema);
        assert_eq!(
            schema,
            json!({"anyOf": [{"allOf": [{"$ref": "#/x"}]}, {"type": "null"}]})
        );
    }
}
