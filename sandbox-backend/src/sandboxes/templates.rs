//! Templates: built once per provider and spec, cached by a hash of both, persisted
//! under `<data>/templates/<id>/` (`template.json` plus whatever the provider keeps
//! there, e.g. the local provider's `workspace/` and `home/` images).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use nightshift_protocol::ErrorCode;
use nightshift_protocol::sandbox::{Template, TemplateSpec};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::store::write_private;
use crate::error::ApiError;
use crate::exec::validate_env;
use crate::providers::{Provider, ProviderHandle, TemplateBuild, TemplateRef};

/// The build log kept with a template.
const MAX_LOG_BYTES: usize = 64 * 1024;

/// What `template.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    template: Template,
    #[serde(default)]
    handle: ProviderHandle,
}

pub struct Templates {
    root: PathBuf,
    built: Mutex<HashMap<String, Stored>>,
    /// One build at a time per template id: concurrent requests share it.
    building: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The id of a spec for a provider: `tpl_` and 32 hex digits of a SHA-256 over the
/// provider's name and the spec's JSON (its fields in a fixed order).
pub fn template_id(provider: &str, spec: &TemplateSpec) -> String {
    let json = serde_json::to_vec(spec).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(provider.as_bytes());
    hasher.update([0]);
    hasher.update(&json);
    format!("tpl_{}", &hex::encode(hasher.finalize())[..32])
}

impl Templates {
    pub fn open(data_dir: &Path) -> std::io::Result<Templates> {
        let root = data_dir.join("templates");
        std::fs::create_dir_all(&root)?;
        let mut built = HashMap::new();
        for entry in std::fs::read_dir(&root)?.flatten() {
            let path = entry.path().join("template.json");
            let stored = std::fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Stored>(&bytes).ok());
            match stored {
                Some(stored) => {
                    built.insert(stored.template.id.clone(), stored);
                }
                // A build that never finished: start over next time.
                None => {
                    let _ = crate::files::remove_tree(&entry.path());
                }
            }
        }
        Ok(Templates {
            root,
            built: Mutex::new(built),
            building: Mutex::new(HashMap::new()),
        })
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    pub fn get(&self, id: &str) -> Option<Template> {
        self.lock().get(id).map(|stored| stored.template.clone())
    }

    pub fn list(&self) -> Vec<Template> {
        let mut list: Vec<Template> = self
            .lock()
            .values()
            .map(|stored| stored.template.clone())
            .collect();
        list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        list
    }

    /// What a provider needs of a built template.
    pub fn reference(&self, id: &str) -> Option<TemplateRef> {
        self.lock().get(id).map(|stored| TemplateRef {
            id: id.to_string(),
            dir: self.dir(id),
            handle: stored.handle.clone(),
            spec: stored.template.spec.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Stored>> {
        self.built.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Builds `spec` with `provider`, or finds it built. `true` when it was built now.
    pub async fn build(
        &self,
        provider: &Arc<dyn Provider>,
        spec: TemplateSpec,
        now: i64,
    ) -> Result<(Template, bool), ApiError> {
        if !provider.capabilities().templates {
            return Err(ApiError::invalid_request(format!(
                "the {} provider does not support templates",
                provider.name()
            )));
        }
        validate_env(&spec.env)?;
        if spec.commands.iter().any(|command| command.contains('\0')) {
            return Err(ApiError::invalid_request(
                "commands must not contain NUL bytes",
            ));
        }
        if let Some(workdir) = &spec.workdir {
            crate::files::WorkspacePath::parse(workdir)
                .map_err(|error| ApiError::invalid_request(format!("`workdir`: {error}")))?;
        }
        let id = template_id(provider.name(), &spec);
        let gate = self
            .building
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.clone())
            .or_default()
            .clone();
        let _building = gate.lock().await;
        if let Some(template) = self.get(&id) {
            return Ok((template, false));
        }
        let dir = self.dir(&id);
        let _ = crate::files::remove_tree(&dir);
        std::fs::create_dir_all(&dir).map_err(|error| {
            ApiError::internal(format!("cannot create {}: {error}", dir.display()))
        })?;
        let build = TemplateBuild {
            id: id.clone(),
            dir: dir.clone(),
            spec: spec.clone(),
        };
        let built = match provider.build_template(&build).await {
            Ok(built) => built,
            Err(error) => {
                let _ = crate::files::remove_tree(&dir);
                return Err(error.into());
            }
        };
        let mut log = built.log;
        if log.len() > MAX_LOG_BYTES {
            let mut cut = log.len() - MAX_LOG_BYTES;
            while !log.is_char_boundary(cut) {
                cut += 1;
            }
            log = log[cut..].to_string();
        }
        let stored = Stored {
            template: Template {
                id: id.clone(),
                provider: provider.name().to_string(),
                spec,
                created_at: now,
                build_log: log,
            },
            handle: built.handle,
        };
        let json = serde_json::to_vec_pretty(&stored)
            .map_err(|error| ApiError::internal(error.to_string()))?;
        write_private(&dir.join("template.json"), &json)?;
        self.lock().insert(id, stored.clone());
        Ok((stored.template, true))
    }

    /// Removes a template (sandboxes created from it keep their copies).
    pub async fn delete(
        &self,
        provider: Option<&Arc<dyn Provider>>,
        id: &str,
    ) -> Result<(), ApiError> {
        let Some(reference) = self.reference(id) else {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no template with id {id:?}"),
            ));
        };
        if let Some(provider) = provider {
            provider.delete_template(&reference).await?;
        }
        self.lock().remove(id);
        let _ = crate::files::remove_tree(&self.dir(id));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_depend_on_the_spec_and_the_provider() {
        let spec = TemplateSpec {
            commands: vec!["make".into()],
            ..TemplateSpec::default()
        };
        let id = template_id("local", &spec);
        assert!(id.starts_with("tpl_") && id.len() == 36);
        assert_eq!(id, template_id("local", &spec.clone()));
        assert_ne!(id, template_id("modal", &spec));
        let other = TemplateSpec {
            commands: vec!["make all".into()],
            ..TemplateSpec::default()
        };
        assert_ne!(id, template_id("local", &other));
    }
}
