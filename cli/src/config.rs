//! Where the CLI finds its server and token: `$XDG_CONFIG_HOME/nightshift/config.toml`
//! (else `~/.config/nightshift/config.toml`), overridden field by field by
//! `NIGHTSHIFT_SERVER` and `NIGHTSHIFT_TOKEN`.
//!
//! The file holds a secret, so it is written with mode 0600 in a directory of mode
//! 0700, through a temporary file renamed into place (a crash never leaves half a
//! token, and the token is never readable by others, not even for a moment).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nightshift_protocol::redacted::Redacted;
use serde::{Deserialize, Serialize};

use crate::error::{CliError, CliResult};

pub const SERVER_VAR: &str = "NIGHTSHIFT_SERVER";
pub const TOKEN_VAR: &str = "NIGHTSHIFT_TOKEN";

/// What `config.toml` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Redacted<String>>,
}

/// The server and token a command uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub server: String,
    pub token: Redacted<String>,
}

/// The config file's path, from the environment as `var` reads it.
pub fn config_path(var: impl Fn(&str) -> Option<String>) -> CliResult<PathBuf> {
    let base = match var("XDG_CONFIG_HOME").filter(|dir| Path::new(dir).is_absolute()) {
        Some(dir) => PathBuf::from(dir),
        None => var("HOME")
            .filter(|home| !home.is_empty())
            .map(|home| Path::new(&home).join(".config"))
            .ok_or_else(|| {
                CliError::Local("neither XDG_CONFIG_HOME nor HOME is set".to_string())
            })?,
    };
    Ok(base.join("nightshift").join("config.toml"))
}

/// Reads the config file; a missing file is an empty config.
pub fn load(path: &Path) -> CliResult<StoredConfig> {
    match fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .map_err(|error| CliError::Local(format!("{} is not valid: {error}", path.display()))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(StoredConfig::default()),
        Err(error) => Err(CliError::Local(format!(
            "cannot read {}: {error}",
            path.display()
        ))),
    }
}

/// Writes the config file with mode 0600 (its directory 0700).
pub fn save(path: &Path, config: &StoredConfig) -> CliResult<()> {
    let local = |what: &str, error: std::io::Error| {
        CliError::Local(format!("cannot {what} {}: {error}", path.display()))
    };
    let dir = path
        .parent()
        .ok_or_else(|| CliError::Local(format!("{} has no directory", path.display())))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| local("create the directory of", e))?;
    let text = toml::to_string(config)
        .map_err(|error| CliError::Local(format!("cannot write the config: {error}")))?;
    let temporary = dir.join(format!(".config.toml.{}", std::process::id()));
    let _ = fs::remove_file(&temporary);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(|e| local("write", e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| local("write", e))?;
    // The mode given at creation is masked by the umask; make sure it is 0600.
    fs::set_permissions(&temporary, fs::Permissions::from_mode(0o600))
        .map_err(|e| local("protect", e))?;
    fs::rename(&temporary, path).map_err(|e| local("write", e))
}

/// A server URL as given on the command line or in the environment, checked and
/// without a trailing slash.
pub fn normalize_server(url: &str) -> CliResult<String> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            CliError::Usage(format!(
                "the server must be an http:// or https:// URL, not {url:?}"
            ))
        })?;
    if rest.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err(CliError::Usage(format!("{url:?} is not a server URL")));
    }
    Ok(url.to_string())
}

/// True for a plain `http://` server that is not this machine: the token would cross
/// the network unencrypted.
pub fn is_plaintext_remote(server: &str) -> bool {
    let Some(rest) = server.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    !(host == "localhost" || host == "::1" || host.starts_with("127."))
}

/// The credentials a command uses: the environment's where set, else the file's.
pub fn resolve(
    stored: &StoredConfig,
    var: impl Fn(&str) -> Option<String>,
) -> CliResult<Credentials> {
    let server = var(SERVER_VAR)
        .filter(|s| !s.trim().is_empty())
        .or_else(|| stored.server.clone())
        .ok_or_else(|| {
            CliError::NotLoggedIn(format!(
                "no server is configured: run `nightshift login --server URL` or set {SERVER_VAR}"
            ))
        })?;
    let token = var(TOKEN_VAR)
        .filter(|t| !t.trim().is_empty())
        .map(Redacted::new)
        .or_else(|| stored.token.clone())
        .ok_or_else(|| {
            CliError::NotLoggedIn(format!(
                "no token is configured: run `nightshift login` or set {TOKEN_VAR}"
            ))
        })?;
    Ok(Credentials {
        server: normalize_server(&server)?,
        token: Redacted::new(token.expose().trim().to_string()),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn the_path_follows_xdg_then_home() {
        assert_eq!(
            config_path(env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])).unwrap(),
            Path::new("/x/nightshift/config.toml")
        );
        // A relative XDG_CONFIG_HOME is ignored, as the spec says.
        assert_eq!(
            config_path(env(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/h")])).unwrap(),
            Path::new("/h/.config/nightshift/config.toml")
        );
        assert!(config_path(env(&[])).is_err());
    }

    #[test]
    fn the_environment_overrides_the_file_field_by_field() {
        let stored = StoredConfig {
            server: Some("https://file.example/".into()),
            token: Some(Redacted::new("ns_file".into())),
        };
        let both = resolve(&stored, env(&[])).unwrap();
        assert_eq!(both.server, "https://file.example");
        assert_eq!(both.token.expose(), "ns_file");
        let over = resolve(&stored, env(&[(TOKEN_VAR, "ns_env")])).unwrap();
        assert_eq!(over.server, "https://file.example");
        assert_eq!(over.token.expose(), "ns_env");
        let over = resolve(&stored, env(&[(SERVER_VAR, "http://127.0.0.1:9")])).unwrap();
        assert_eq!(over.server, "http://127.0.0.1:9");

        let missing = resolve(&StoredConfig::default(), env(&[])).unwrap_err();
        assert_eq!(missing.exit_code(), crate::error::EXIT_UNAUTHENTICATED);
    }

    #[test]
    fn server_urls_are_checked() {
        assert_eq!(
            normalize_server(" https://ns.example.com/ ").unwrap(),
            "https://ns.example.com"
        );
        assert!(normalize_server("ns.example.com").is_err());
        assert!(normalize_server("ftp://x").is_err());
        assert!(normalize_server("https://").is_err());
    }

    #[test]
    fn plain_http_is_flagged_unless_it_stays_on_this_machine() {
        assert!(is_plaintext_remote("http://ns.example.com"));
        assert!(is_plaintext_remote("http://10.0.0.5:8787/x"));
        assert!(!is_plaintext_remote("http://127.0.0.1:8787"));
        assert!(!is_plaintext_remote("http://localhost"));
        assert!(!is_plaintext_remote("http://[::1]:8787"));
        assert!(!is_plaintext_remote("https://ns.example.com"));
    }

    #[test]
    fn the_file_is_written_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nightshift/config.toml");
        assert_eq!(load(&path).unwrap(), StoredConfig::default());
        let config = StoredConfig {
            server: Some("https://ns.example".into()),
            token: Some(Redacted::new("ns_secret".into())),
        };
        save(&path, &config).unwrap();
        assert_eq!(load(&path).unwrap(), config);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert!(!format!("{config:?}").contains("ns_secret"));

        fs::write(&path, "server = [").unwrap();
        assert!(load(&path).is_err());
    }
}
