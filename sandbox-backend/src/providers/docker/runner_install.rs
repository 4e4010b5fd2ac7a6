//! Starting a stopped docker sandbox on the backend's current runner, not on the one
//! frozen into its container.
//!
//! A container keeps the runner of the image it was created from. The runner a new
//! sandbox would get is the one in the image the backend creates sandboxes from now
//! (the sandbox's template's image, else `SANDBOX_DOCKER_IMAGE`), at [`IMAGE_RUNNER`],
//! built for that image's system (the host's `RUNNER_BIN` may need a newer C library
//! than the image has, and the Engine may be on another machine). So, before a stopped
//! container of a session starts again, the backend:
//! 1. creates a container of the current image without starting it, reads
//!    [`IMAGE_RUNNER`] out of it (`HEAD` then `GET /containers/{id}/archive`: a regular
//!    file of at most [`MAX_RUNNER_BYTES`]) and removes it;
//! 2. uploads it into the stopped container (`PUT /containers/{id}/archive?path=/`)
//!    as [`INSTALL_DIR`] and [`INSTALLED_RUNNER`], both root's and mode 0755;
//! 3. checks what the Engine made of it (`HEAD` of both: a directory and a regular
//!    file of the right size, no symbolic link) before starting the container, and
//!    the start script checks it again in the container (owner, mode, SHA-256) before
//!    it runs it ([`super::runner`]).
//!
//! Nothing is copied when the runner there is already the current image's: the
//! container was made from that image and has none installed, or the one installed
//! at an earlier start came from it (the handle keeps its digest and the image's
//! id; the start script checks the file is still that digest).
//!
//! Why there: the archive API resolves the `path` it extracts into, and every
//! directory of an entry's path, inside the container's root, following symbolic
//! links (a link planted at `/usr/local/bin` would carry the upload wherever it
//! points). `/` is the one directory nothing in the container can turn into a link,
//! and the upload brings its directory with it, so no name on the way is the
//! container's: an entry found at [`INSTALL_DIR`] that is not a directory (a planted
//! link) is removed and replaced by the Engine, one that is a directory is made
//! root's and 0755 again. Nothing runs in a stopped container, so nothing changes
//! between the upload, the check and the start; once started, the sandbox's user
//! cannot write to `/` or to a directory of root's. (Not so with
//! `SANDBOX_DOCKER_USER=0:0`, whose commands own what root owns: that setting keeps
//! no file of the container from them, this one included.)

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::client::{Answer, docker_error};
use super::{DockerProvider, query_encode, remote};
use crate::providers::{ProviderError, SandboxSpec};

/// Where the sandbox image built from `docker/` has the runner.
pub const IMAGE_RUNNER: &str = "/usr/local/bin/runner";
/// The directory a woken container's runner is installed in, at the container's root.
pub const INSTALL_DIR: &str = "/.nightshift-runner";
pub const INSTALLED_RUNNER: &str = "/.nightshift-runner/runner";
/// A runner larger than this is not copied (a debug build is about 100 MiB).
pub const MAX_RUNNER_BYTES: u64 = 512 * 1024 * 1024;
/// The handle's key for the digest of the runner installed at the last start.
pub const DIGEST_KEY: &str = crate::providers::ProviderHandle::RUNNER_DIGEST_KEY;
/// The handle's key for the id of the image that runner was copied from.
pub const IMAGE_KEY: &str = "runner_image";

/// How long a copy of the runner may take, each way.
const COPY_TIMEOUT: Duration = Duration::from_secs(120);

/// The runner to install: its bytes and their SHA-256 (hex).
pub struct CurrentRunner {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

impl CurrentRunner {
    pub fn new(bytes: Vec<u8>) -> CurrentRunner {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        CurrentRunner { bytes, sha256 }
    }
}

/// What the archive API says of a path (`X-Docker-Container-Path-Stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Directory,
    File {
        size: u64,
    },
    /// A link, a device, a socket or a pipe.
    Other,
}

// Go's `os.FileMode` type bits, as the Engine encodes them.
const GO_MODE_DIR: u64 = 1 << 31;
const GO_MODE_TYPE: u64 =
    GO_MODE_DIR | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19);

/// Reads the archive API's stat header (base64 of `{"name", "size", "mode", "mtime",
/// "linkTarget"}`); `None` when it is missing or not that.
pub fn path_kind(answer: &Answer) -> Option<PathKind> {
    let header = answer.headers.get("x-docker-container-path-stat")?;
    let json = base64::engine::general_purpose::STANDARD
        .decode(header.as_bytes())
        .ok()?;
    let stat: Value = serde_json::from_slice(&json).ok()?;
    let mode = stat["mode"].as_u64()?;
    let linked = stat["linkTarget"]
        .as_str()
        .is_some_and(|target| !target.is_empty());
    Some(match mode & GO_MODE_TYPE {
        _ if linked => PathKind::Other,
        GO_MODE_DIR => PathKind::Directory,
        0 => PathKind::File {
            size: stat["size"].as_u64()?,
        },
        _ => PathKind::Other,
    })
}

/// The tar the Engine extracts at `/`: [`INSTALL_DIR`], then the runner in it, both
/// root's and mode 0755.
pub fn install_archive(runner: &[u8]) -> std::io::Result<Vec<u8>> {
    let name = INSTALL_DIR.trim_start_matches('/');
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let mut archive = tar::Builder::new(Vec::new());
    let mut directory = tar::Header::new_gnu();
    directory.set_entry_type(tar::EntryType::Directory);
    directory.set_size(0);
    directory.set_mode(0o755);
    directory.set_uid(0);
    directory.set_gid(0);
    directory.set_mtime(mtime);
    directory.set_cksum();
    archive.append_data(&mut directory, format!("{name}/"), std::io::empty())?;
    let mut file = tar::Header::new_gnu();
    file.set_entry_type(tar::EntryType::Regular);
    file.set_size(runner.len() as u64);
    file.set_mode(0o755);
    file.set_uid(0);
    file.set_gid(0);
    file.set_mtime(mtime);
    file.set_cksum();
    archive.append_data(&mut file, format!("{name}/runner"), runner)?;
    archive.into_inner()
}

/// What a start installed: the runner's digest (`sha256:<hex>`) and the id of the
/// image it came from; neither when the container's own runner is the current one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Installed {
    pub digest: Option<String>,
    pub image: Option<String>,
}

impl Installed {
    /// Writes itself into the handle the start answers.
    pub fn record(self, handle: &mut Value) {
        let Some(fields) = handle.as_object_mut() else {
            return;
        };
        for (key, value) in [(DIGEST_KEY, self.digest), (IMAGE_KEY, self.image)] {
            match value {
                Some(value) => fields.insert(key.into(), Value::String(value)),
                None => fields.remove(key),
            };
        }
    }
}

/// The installed runner's SHA-256 a handle records, when it is one (64 hex digits).
pub fn recorded_digest(handle: &Value) -> Option<&str> {
    handle[DIGEST_KEY]
        .as_str()?
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

impl DockerProvider {
    /// The image a new container of this sandbox would be created from.
    pub(super) fn current_image(&self, sandbox: &SandboxSpec) -> String {
        sandbox
            .template
            .as_ref()
            .and_then(|template| template.handle.0.get("image"))
            .and_then(Value::as_str)
            .unwrap_or(&self.config.image)
            .to_string()
    }

    /// Installs the current image's runner into the stopped container, unless it
    /// is there already: installed from the same image at an earlier start (the
    /// start script checks it is still that file), or the container's own, made
    /// from that image and never replaced. Nothing is installed either when the
    /// current image has no runner at [`IMAGE_RUNNER`] that is a regular file (the
    /// container's own starts then, as before).
    pub(super) async fn install_current_runner(
        &self,
        sandbox: &SandboxSpec,
        container_id: &str,
    ) -> Result<Installed, ProviderError> {
        let image = self.current_image(sandbox);
        self.ensure_image(&image).await?;
        let image_id = self.image_id(&image).await?;
        let recorded = recorded_digest(&sandbox.handle.0);
        let recorded_image = sandbox.handle.0[IMAGE_KEY].as_str();
        if let Some(digest) = recorded
            && recorded_image == Some(image_id.as_str())
        {
            return Ok(Installed {
                digest: Some(format!("sha256:{digest}")),
                image: Some(image_id),
            });
        }
        if recorded.is_none() && self.container_image(container_id).await? == image_id {
            return Ok(Installed::default());
        }
        let Some(runner) = self.runner_of_image(&image_id).await? else {
            tracing::warn!(
                sandbox = %sandbox.id, %image,
                "the current image has no runner at {IMAGE_RUNNER}: the container's own starts"
            );
            return Ok(Installed::default());
        };
        let archive = install_archive(&runner.bytes)
            .map_err(|error| ProviderError::io("packing the runner", error))?;
        let answer = self
            .client
            .call_bytes(
                Method::PUT,
                &format!("/containers/{container_id}/archive?path=/"),
                Bytes::from(archive),
                "application/x-tar",
                COPY_TIMEOUT,
            )
            .await?;
        if answer.status != StatusCode::OK {
            return Err(docker_error("installing the runner", &answer));
        }
        let directory = self.stat(container_id, INSTALL_DIR).await?;
        let installed = self.stat(container_id, INSTALLED_RUNNER).await?;
        let size = runner.bytes.len() as u64;
        if directory != Some(PathKind::Directory) || installed != Some(PathKind::File { size }) {
            return Err(ProviderError::Unavailable(format!(
                "the runner was not installed as it was sent: {INSTALL_DIR} is {directory:?}, \
                 {INSTALLED_RUNNER} is {installed:?} (a {size}-byte file was sent)"
            )));
        }
        tracing::info!(sandbox = %sandbox.id, %image, sha256 = %runner.sha256, "installed the current runner");
        Ok(Installed {
            digest: Some(format!("sha256:{}", runner.sha256)),
            image: Some(image_id),
        })
    }

    /// The id of a local image.
    async fn image_id(&self, image: &str) -> Result<String, ProviderError> {
        let answer = self
            .client
            .call(
                Method::GET,
                &format!("/images/{}/json", super::encode(image)),
                None,
                remote::CALL_TIMEOUT,
            )
            .await?;
        if answer.status != StatusCode::OK {
            return Err(docker_error("image inspect", &answer));
        }
        answer.json()["Id"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| ProviderError::Unavailable(format!("Docker gave {image} no id")))
    }

    /// The id of the image a container was made from.
    async fn container_image(&self, container_id: &str) -> Result<String, ProviderError> {
        let answer = self
            .client
            .call(
                Method::GET,
                &format!("/containers/{container_id}/json"),
                None,
                remote::CALL_TIMEOUT,
            )
            .await?;
        if answer.status != StatusCode::OK {
            return Err(docker_error("container inspect", &answer));
        }
        Ok(answer.json()["Image"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// What the archive API says of `path` in a container; `None` when it is not there.
    async fn stat(
        &self,
        container_id: &str,
        path: &str,
    ) -> Result<Option<PathKind>, ProviderError> {
        let answer = self
            .client
            .call(
                Method::HEAD,
                &format!(
                    "/containers/{container_id}/archive?path={}",
                    query_encode(path)
                ),
                None,
                remote::CALL_TIMEOUT,
            )
            .await?;
        match answer.status {
            StatusCode::OK => Ok(Some(path_kind(&answer).unwrap_or(PathKind::Other))),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(docker_error("archive stat", &answer)),
        }
    }

    /// The runner in `image`, read from a container of it that never starts.
    async fn runner_of_image(&self, image: &str) -> Result<Option<CurrentRunner>, ProviderError> {
        let created = self
            .client
            .call(
                Method::POST,
                &format!(
                    "/containers/create?name=nightshift-runner-source-{}",
                    uuid::Uuid::new_v4().simple()
                ),
                Some(json!({
                    "Image": image,
                    "Entrypoint": ["/nonexistent"],
                    "Cmd": [],
                    "NetworkDisabled": true,
                    "Labels": {"nightshift.runner-source": "true"},
                    "HostConfig": {"NetworkMode": "none"},
                })),
                remote::CALL_TIMEOUT,
            )
            .await?;
        if created.status != StatusCode::CREATED {
            return Err(docker_error(
                "creating a container to read the runner from",
                &created,
            ));
        }
        let Some(source) = created.json()["Id"].as_str().map(String::from) else {
            return Err(ProviderError::Unavailable(
                "Docker created a container without an id".into(),
            ));
        };
        let read = self.read_runner(&source).await;
        self.remove(&source).await;
        read
    }

    async fn read_runner(
        &self,
        container_id: &str,
    ) -> Result<Option<CurrentRunner>, ProviderError> {
        match self.stat(container_id, IMAGE_RUNNER).await? {
            Some(PathKind::File { size }) if size <= MAX_RUNNER_BYTES => {}
            Some(PathKind::File { size }) => {
                return Err(ProviderError::Unavailable(format!(
                    "the image's {IMAGE_RUNNER} has {size} bytes, more than {MAX_RUNNER_BYTES}"
                )));
            }
            // None there, or not a file of its own (a link): no runner to copy.
            _ => return Ok(None),
        }
        let answer = self
            .client
            .call(
                Method::GET,
                &format!(
                    "/containers/{container_id}/archive?path={}",
                    query_encode(IMAGE_RUNNER)
                ),
                None,
                COPY_TIMEOUT,
            )
            .await?;
        if answer.status != StatusCode::OK {
            return Err(docker_error("reading the runner", &answer));
        }
        let unreadable = |error| ProviderError::io("reading the image's runner", error);
        let mut archive = tar::Archive::new(&answer.body[..]);
        let mut entry = archive
            .entries()
            .map_err(unreadable)?
            .next()
            .ok_or_else(|| ProviderError::Unavailable("Docker sent an empty archive".into()))?
            .map_err(unreadable)?;
        if !entry.header().entry_type().is_file() || entry.size() > MAX_RUNNER_BYTES {
            return Err(ProviderError::Unavailable(format!(
                "the image's {IMAGE_RUNNER} is not a regular file of at most {MAX_RUNNER_BYTES} bytes"
            )));
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(unreadable)?;
        Ok(Some(CurrentRunner::new(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_answer(stat: Value) -> Answer {
        let mut headers = hyper::HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(stat.to_string());
        headers.insert("x-docker-container-path-stat", encoded.parse().unwrap());
        Answer {
            status: StatusCode::OK,
            body: Bytes::new(),
            headers,
        }
    }

    #[test]
    fn the_archive_apis_stat_tells_links_from_directories_and_files() {
        let directory = stat_answer(
            json!({"name": "bin", "size": 4096, "mode": GO_MODE_DIR | 0o755, "linkTarget": ""}),
        );
        assert_eq!(path_kind(&directory), Some(PathKind::Directory));
        let file =
            stat_answer(json!({"name": "runner", "size": 42, "mode": 0o755, "linkTarget": ""}));
        assert_eq!(path_kind(&file), Some(PathKind::File { size: 42 }));
        let link = stat_answer(
            json!({"name": "bin", "size": 9, "mode": (1u64 << 27) | 0o777, "linkTarget": "/workspace"}),
        );
        assert_eq!(path_kind(&link), Some(PathKind::Other));
        // The Engine stats a link's target for the mode but names the link.
        let followed = stat_answer(
            json!({"name": "bin", "size": 4096, "mode": GO_MODE_DIR | 0o755, "linkTarget": "/workspace"}),
        );
        assert_eq!(path_kind(&followed), Some(PathKind::Other));
        let missing = Answer {
            status: StatusCode::OK,
            body: Bytes::new(),
            headers: hyper::HeaderMap::new(),
        };
        assert_eq!(path_kind(&missing), None);
    }

    #[test]
    fn the_upload_brings_its_directory_owned_by_root() {
        let archive = install_archive(b"\x7fELF runner").unwrap();
        let mut archive = tar::Archive::new(&archive[..]);
        let entries: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                (
                    entry.path().unwrap().display().to_string(),
                    header.entry_type(),
                    header.mode().unwrap(),
                    header.uid().unwrap(),
                    header.gid().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                (
                    ".nightshift-runner/".to_string(),
                    tar::EntryType::Directory,
                    0o755,
                    0,
                    0
                ),
                (
                    ".nightshift-runner/runner".to_string(),
                    tar::EntryType::Regular,
                    0o755,
                    0,
                    0
                ),
            ]
        );
    }

    #[test]
    fn a_start_records_what_it_installed_and_forgets_what_it_did_not() {
        let mut handle = json!({"container_id": "c"});
        Installed {
            digest: Some("sha256:ab".into()),
            image: Some("sha256:cd".into()),
        }
        .record(&mut handle);
        assert_eq!(
            handle,
            json!({"container_id": "c", DIGEST_KEY: "sha256:ab", IMAGE_KEY: "sha256:cd"})
        );
        Installed::default().record(&mut handle);
        assert_eq!(handle, json!({"container_id": "c"}));
    }

    #[test]
    fn only_a_well_formed_digest_is_passed_on() {
        let digest = CurrentRunner::new(b"runner".to_vec()).sha256;
        assert_eq!(
            recorded_digest(&json!({DIGEST_KEY: format!("sha256:{digest}")})),
            Some(digest.as_str())
        );
        assert_eq!(recorded_digest(&json!({DIGEST_KEY: digest})), None);
        assert_eq!(
            recorded_digest(&json!({DIGEST_KEY: "sha256:$(reboot)"})),
            None
        );
        assert_eq!(recorded_digest(&json!({"container_id": "c"})), None);
    }
}
