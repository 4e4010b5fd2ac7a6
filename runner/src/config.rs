//! The runner's boot configuration: the `RunnerBootConfig` file a sandbox provider
//! wrote for it, and the one field the runner writes back, a renewed token.
//!
//! The file lives outside the workspace, so commands the agent runs cannot read it.
//! Rewrites are atomic (a temporary file in the same directory, then a rename) and
//! leave the file readable by its owner only, so a runner restarted at any moment
//! finds either the old or the new token, never half of one. Depends on the protocol
//! and the standard library only.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nightshift_protocol::sandbox::RunnerBootConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path} is not a runner boot config: {cause}")]
    Parse {
        path: PathBuf,
        cause: serde_json::Error,
    },
    #[error("cannot write {path}: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// The config file on disk, kept so a renewed token can be written back to it.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
}

impl ConfigFile {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<(ConfigFile, RunnerBootConfig), ConfigError> {
        let text = fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        let config: RunnerBootConfig =
            serde_json::from_str(&text).map_err(|cause| ConfigError::Parse {
                path: path.to_path_buf(),
                cause,
            })?;
        Ok((
            ConfigFile {
                path: path.to_path_buf(),
            },
            config,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the `token` field and keeps every other field as it is, including
    /// fields this version of the runner does not know.
    pub fn store_token(&self, token: &str) -> Result<(), ConfigError> {
        let read_error = |cause| ConfigError::Read {
            path: self.path.clone(),
            cause,
        };
        let text = fs::read_to_string(&self.path).map_err(read_error)?;
        let mut value: serde_json::Value =
            serde_json::from_str(&text).map_err(|cause| ConfigError::Parse {
                path: self.path.clone(),
                cause,
            })?;
        let Some(object) = value.as_object_mut() else {
            let cause =
                serde_json::Error::io(std::io::Error::other("the config is not a JSON object"));
            return Err(ConfigError::Parse {
                path: self.path.clone(),
                cause,
            });
        };
        object.insert(
            "token".to_string(),
            serde_json::Value::String(token.to_string()),
        );
        let mut bytes = serde_json::to_vec_pretty(&value).map_err(|cause| ConfigError::Parse {
            path: self.path.clone(),
            cause,
        })?;
        bytes.push(b'\n');
        self.replace_contents(&bytes)
            .map_err(|cause| ConfigError::Write {
                path: self.path.clone(),
                cause,
            })
    }

    fn replace_contents(&self, bytes: &[u8]) -> std::io::Result<()> {
        let file_name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = self
            .path
            .with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)?;
            // `mode` applies only when the file is created; a stale temporary file
            // from a crashed runner keeps its old mode unless it is set again.
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temporary, &self.path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_config(dir: &Path) -> PathBuf {
        let path = dir.join("runner.json");
        let json = serde_json::json!({
            "worker_url": "http://127.0.0.1:8787",
            "session_id": "s1",
            "token": "old-token",
            "workspace_dir": "/tmp/w",
            "command_wrapper": ["bwrap", "--"],
            "sandbox_workspace_dir": "/workspace",
            "field_from_a_newer_backend": 7
        });
        fs::write(&path, json.to_string()).unwrap();
        path
    }

    #[test]
    fn loads_the_boot_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(dir.path());
        let (_, config) = ConfigFile::load(&path).unwrap();
        assert_eq!(config.session_id, "s1");
        assert_eq!(config.token.expose(), "old-token");
        assert_eq!(config.command_wrapper, vec!["bwrap", "--"]);
    }

    #[test]
    fn a_stored_token_replaces_the_old_one_and_keeps_other_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(dir.path());
        let (file, _) = ConfigFile::load(&path).unwrap();
        file.store_token("new-token").unwrap();

        let (_, config) = ConfigFile::load(&path).unwrap();
        assert_eq!(config.token.expose(), "new-token");
        assert_eq!(config.sandbox_workspace_dir, "/workspace");
        let raw: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(raw["field_from_a_newer_backend"], 7);

        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn a_missing_file_is_a_read_error() {
        let error = ConfigFile::load(Path::new("/nonexistent/runner.json")).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }));
    }
}
