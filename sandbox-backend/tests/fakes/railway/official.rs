//! Railway's own operations, as the fake Railway checks the provider's GraphQL against
//! them: the operation documents of Railway's TypeScript SDK (the `railway` npm
//! package, version [`SDK_VERSION`], checked against [`SDK_INTEGRITY`]), which its
//! authors generate from Railway's schema and ship compiled into `dist/index.js` as
//! JSON ASTs. No copy of the schema itself can be had from a registry.
//!
//! For every operation the provider sends, the root field must be one the SDK uses (or
//! one the Railway CLI uses that the SDK does not, [`CLI_ONLY`]), in the same kind of
//! operation, with the same argument names whose variables have the same types, and
//! every field it selects must be one the SDK selects. The package is fetched once
//! (`npm pack`) into `target/railway-sdk/<version>/`; when it cannot be had the Railway
//! tests fail saying so, unless the run opts out with `RAILWAY_SDK_TESTS=skip`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine;
use graphql_parser::query::{
    Definition, Document, OperationDefinition, Selection, SelectionSet, Value,
};
use serde_json::Value as Json;
use sha2::Digest;

pub const SDK_VERSION: &str = "3.11.0";
/// `dist.integrity` of `railway@3.11.0` on the npm registry.
pub const SDK_INTEGRITY: &str = "sha512-ehLFHCxV+gITWeBlIVaXulXaVRg4LCxqm0bq64iXSwYL1DESd0pUeLYMP/BMBhnZWeFFBYyJCREaq+Nka7Wgmw==";
/// Root fields the provider takes from the Railway CLI (v5.43) because the SDK has no
/// operation for them; they are not checked.
pub const CLI_ONLY: &[&str] = &["sandboxHeartbeat"];

/// One SDK operation: its kind, argument types and selected fields.
#[derive(Debug)]
struct Operation {
    /// Argument name → the type of the variable passed to it (`String!`).
    arguments: BTreeMap<String, String>,
    selected: BTreeSet<String>,
}

/// The SDK's operations by root field (a field may be both a query and a mutation).
pub struct Official {
    operations: BTreeMap<(String, String), Operation>,
}

pub use crate::fakes::Loaded;

static OFFICIAL: OnceLock<Result<Official, String>> = OnceLock::new();

/// Loads the SDK's operations; panics with the reason when they cannot be had and the
/// run did not opt out.
pub fn load() -> Loaded {
    if std::env::var("RAILWAY_SDK_TESTS").is_ok_and(|value| value == "skip") {
        return Loaded::Skipped;
    }
    match OFFICIAL.get_or_init(|| cached_sdk().and_then(|path| Official::read(&path))) {
        Ok(_) => Loaded::Ready,
        Err(why) => panic!(
            "Railway's TypeScript SDK (railway@{SDK_VERSION} on npm) is needed to check the Railway \
             provider's operations and could not be had: {why}. Set RAILWAY_SDK_TESTS=skip to run \
             without the Railway tests."
        ),
    }
}

pub fn get() -> &'static Official {
    match OFFICIAL.get() {
        Some(Ok(official)) => official,
        _ => panic!("the fake Railway runs only after official::load()"),
    }
}

/// `package/dist/index.js` of the SDK, from the cache or fetched and verified.
fn cached_sdk() -> Result<PathBuf, String> {
    let dir = crate::fakes::target_dir()
        .join("railway-sdk")
        .join(SDK_VERSION);
    let index = dir.join("package/dist/index.js");
    if index.is_file() {
        return Ok(index);
    }
    let download =
        tempfile::tempdir_in(crate::fakes::target_dir()).map_err(|error| error.to_string())?;
    let output = std::process::Command::new("npm")
        .args(["pack", "--silent", "--pack-destination"])
        .arg(download.path())
        .arg(format!("railway@{SDK_VERSION}"))
        .output()
        .map_err(|error| format!("cannot run npm: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "npm pack railway@{SDK_VERSION} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let tarball = download.path().join(format!("railway-{SDK_VERSION}.tgz"));
    let bytes =
        std::fs::read(&tarball).map_err(|error| format!("{}: {error}", tarball.display()))?;
    let integrity = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(&bytes))
    );
    if integrity != SDK_INTEGRITY {
        return Err(format!(
            "the package's integrity is {integrity}, not the pinned {SDK_INTEGRITY}"
        ));
    }
    let output = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(download.path())
        .arg("package/dist/index.js")
        .output()
        .map_err(|error| format!("cannot run tar: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "the package holds no dist/index.js: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    std::fs::remove_file(&tarball).map_err(|error| error.to_string())?;
    std::fs::create_dir_all(dir.parent().expect("the cache has a parent"))
        .map_err(|error| error.to_string())?;
    // Another test binary may have won the race; its copy is the same file.
    let _ = std::fs::rename(download.keep(), &dir);
    index
        .is_file()
        .then_some(index.clone())
        .ok_or_else(|| format!("{} was not written", index.display()))
}

impl Official {
    /// The `var Railway...Document = {...};` lines of the SDK's bundle.
    fn read(index: &Path) -> Result<Official, String> {
        let text = std::fs::read_to_string(index).map_err(|error| error.to_string())?;
        let mut operations = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("var Railway") else {
                continue;
            };
            // Only the generated JSON ASTs (`= { "kind": "Document", ... };`), not the
            // documents that name another constant.
            let Some((_, json)) = rest
                .split_once("Document = ")
                .filter(|(_, json)| json.starts_with('{'))
            else {
                continue;
            };
            let document: Json = serde_json::from_str(json.trim_end_matches(';'))
                .map_err(|error| format!("an SDK document is not JSON: {error}"))?;
            for (key, operation) in operations_of(&document) {
                operations.insert(key, operation);
            }
        }
        if !operations.contains_key(&("mutation".into(), "sandboxCreate".into())) {
            return Err("the SDK has no sandboxCreate operation".into());
        }
        Ok(Official { operations })
    }

    /// Whether `query` asks only for what the SDK's operations ask for; a GraphQL
    /// validation message otherwise.
    pub fn check(&self, query: &str) -> Result<(), String> {
        let document: Document<String> =
            graphql_parser::parse_query(query).map_err(|error| format!("Syntax Error: {error}"))?;
        let [Definition::Operation(operation)] = document.definitions.as_slice() else {
            return Err("expected exactly one operation and no fragments".into());
        };
        let (kind, variables, selection) = match operation {
            OperationDefinition::Query(query) => {
                ("query", &query.variable_definitions, &query.selection_set)
            }
            OperationDefinition::Mutation(mutation) => (
                "mutation",
                &mutation.variable_definitions,
                &mutation.selection_set,
            ),
            _ => return Err("only named queries and mutations are sent".into()),
        };
        let types: BTreeMap<&str, String> = variables
            .iter()
            .map(|variable| (variable.name.as_str(), variable.var_type.to_string()))
            .collect();
        for item in &selection.items {
            let Selection::Field(field) = item else {
                return Err("fragments are not sent".into());
            };
            if CLI_ONLY.contains(&field.name.as_str()) {
                continue;
            }
            let official = self
                .operations
                .get(&(kind.to_string(), field.name.clone()))
                .ok_or_else(|| {
                    format!("Cannot query field \"{}\" on type \"{kind}\" (not an operation of Railway's SDK)", field.name)
                })?;
            for (argument, value) in &field.arguments {
                let Value::Variable(variable) = value else {
                    return Err(format!("argument {argument} is not passed as a variable"));
                };
                let ours = types
                    .get(variable.as_str())
                    .ok_or_else(|| format!("Variable \"${variable}\" is not defined"))?;
                match official.arguments.get(argument) {
                    None => {
                        return Err(format!(
                            "Unknown argument \"{argument}\" on field \"{}\"",
                            field.name
                        ));
                    }
                    Some(theirs) if theirs != ours => {
                        return Err(format!(
                            "Variable \"${variable}\" of type \"{ours}\" used in position expecting type \"{theirs}\""
                        ));
                    }
                    Some(_) => {}
                }
            }
            for selected in leaf_names(&field.selection_set) {
                if !official.selected.contains(&selected) {
                    return Err(format!(
                        "Cannot query field \"{selected}\" of \"{}\" (Railway's SDK selects {:?})",
                        field.name, official.selected
                    ));
                }
            }
        }
        Ok(())
    }
}

fn leaf_names(selection: &SelectionSet<String>) -> Vec<String> {
    selection
        .items
        .iter()
        .filter_map(|item| match item {
            Selection::Field(field) => Some(field.name.clone()),
            _ => None,
        })
        .collect()
}

/// The operations of one SDK document (a JSON GraphQL AST): `(kind, root field)`.
fn operations_of(document: &Json) -> Vec<((String, String), Operation)> {
    let definitions = document["definitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let fragments: BTreeMap<String, &Json> = definitions
        .iter()
        .filter(|definition| definition["kind"] == "FragmentDefinition")
        .filter_map(|definition| {
            Some((
                definition["name"]["value"].as_str()?.to_string(),
                &definition["selectionSet"],
            ))
        })
        .collect();
    let mut found = Vec::new();
    for definition in definitions
        .iter()
        .filter(|d| d["kind"] == "OperationDefinition")
    {
        let kind = definition["operation"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let types: BTreeMap<String, String> = definition["variableDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|variable| {
                Some((
                    variable["variable"]["name"]["value"].as_str()?.to_string(),
                    type_name(&variable["type"]),
                ))
            })
            .collect();
        for field in definition["selectionSet"]["selections"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(name) = field["name"]["value"].as_str() else {
                continue;
            };
            let arguments = field["arguments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|argument| {
                    let variable = argument["value"]["name"]["value"].as_str()?;
                    Some((
                        argument["name"]["value"].as_str()?.to_string(),
                        types.get(variable)?.clone(),
                    ))
                })
                .collect();
            let mut selected = BTreeSet::new();
            collect(&field["selectionSet"], &fragments, &mut selected);
            found.push((
                (kind.clone(), name.to_string()),
                Operation {
                    arguments,
                    selected,
                },
            ));
        }
    }
    found
}

/// The field names of a selection set, fragments spread in (first level only).
fn collect(selection: &Json, fragments: &BTreeMap<String, &Json>, into: &mut BTreeSet<String>) {
    for item in selection["selections"].as_array().into_iter().flatten() {
        match item["kind"].as_str() {
            Some("Field") => {
                if let Some(name) = item["name"]["value"].as_str() {
                    into.insert(name.to_string());
                }
            }
            Some("FragmentSpread") => {
                if let Some(fragment) = item["name"]["value"]
                    .as_str()
                    .and_then(|name| fragments.get(name))
                {
                    collect(fragment, fragments, into);
                }
            }
            _ => {}
        }
    }
}

/// A JSON AST type as GraphQL writes it: `String!`, `[ID!]`.
fn type_name(node: &Json) -> String {
    match node["kind"].as_str() {
        Some("NonNullType") => format!("{}!", type_name(&node["type"])),
        Some("ListType") => format!("[{}]", type_name(&node["type"])),
        _ => node["name"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}
