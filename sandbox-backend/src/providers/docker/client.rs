//! A small Docker Engine API client: HTTP/1.1 over the daemon's unix socket
//! (`unix:///var/run/docker.sock`, the default) or TCP (`tcp://host:2375`), one
//! connection per call, speaking the API version agreed with the daemon on first use
//! ([`api_version`](super::api_version): Docker Engine 20.10 to 29). Exec output
//! comes over the hijacked connection of `POST /exec/{id}/start` (`Upgrade: tcp`),
//! in Docker's multiplexed stream format.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::api_version::{self, ApiVersion};
use crate::providers::ProviderError;

#[derive(Debug, Clone)]
pub enum DockerHost {
    Unix(PathBuf),
    Tcp(String),
}

impl DockerHost {
    pub fn parse(text: &str) -> Result<DockerHost, String> {
        if let Some(path) = text.strip_prefix("unix://") {
            Ok(DockerHost::Unix(PathBuf::from(path)))
        } else if let Some(address) = text.strip_prefix("tcp://") {
            Ok(DockerHost::Tcp(address.trim_end_matches('/').to_string()))
        } else {
            Err(format!(
                "DOCKER_HOST={text:?} is neither unix:///path nor tcp://host:port (TLS is not supported)"
            ))
        }
    }
}

/// An upgraded (hijacked) connection.
pub type Hijacked = TokioIo<hyper::upgrade::Upgraded>;

#[derive(Debug, Clone)]
pub struct DockerClient {
    host: DockerHost,
    /// Agreed once per client (and so per backend process); a failed agreement is
    /// tried again on the next call.
    version: Arc<OnceCell<ApiVersion>>,
}

/// The answer of one call.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
    /// The answer's headers (the archive API's path stat is one).
    pub headers: hyper::HeaderMap,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Docker's error message (`{"message": ...}`) or the body.
    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).trim().to_string())
    }
}

impl DockerClient {
    pub fn new(host: DockerHost) -> DockerClient {
        DockerClient {
            host,
            version: Arc::default(),
        }
    }

    /// The API version to speak, asked of the daemon (`GET /version`) the first time.
    pub async fn api_version(&self) -> Result<ApiVersion, ProviderError> {
        self.version
            .get_or_try_init(|| async {
                let answer = self
                    .send(
                        Method::GET,
                        "/version".into(),
                        Bytes::new(),
                        "application/json",
                        Duration::from_secs(30),
                    )
                    .await?;
                if !answer.status.is_success() {
                    return Err(docker_error("version", &answer));
                }
                api_version::negotiate(&answer.json()).map_err(ProviderError::Unavailable)
            })
            .await
            .copied()
    }

    async fn connect(&self) -> Result<http1::SendRequest<Full<Bytes>>, ProviderError> {
        let unavailable = |error: std::io::Error| {
            ProviderError::Unavailable(format!(
                "cannot reach the Docker daemon at {:?}: {error}",
                self.host
            ))
        };
        let connect = async {
            match &self.host {
                DockerHost::Unix(path) => {
                    let stream = tokio::net::UnixStream::connect(path)
                        .await
                        .map_err(unavailable)?;
                    handshake(TokioIo::new(stream)).await
                }
                DockerHost::Tcp(address) => {
                    let stream = tokio::net::TcpStream::connect(address)
                        .await
                        .map_err(unavailable)?;
                    handshake(TokioIo::new(stream)).await
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .map_err(|_| {
                ProviderError::Unavailable(format!(
                    "the Docker daemon at {:?} did not accept a connection within 10 s",
                    self.host
                ))
            })?
    }

    fn request(
        method: Method,
        uri: String,
        body: Bytes,
        content_type: &str,
    ) -> Request<Full<Bytes>> {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "docker")
            .header("content-type", content_type)
            .body(Full::new(body))
            .expect("a valid request")
    }

    /// One call with a JSON body (or none), read to its end within `timeout`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<Answer, ProviderError> {
        let body = body
            .map(|value| Bytes::from(value.to_string()))
            .unwrap_or_default();
        self.call_bytes(method, path, body, "application/json", timeout)
            .await
    }

    /// One call of a versioned path (`/containers/...`) within `timeout`.
    pub async fn call_bytes(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        content_type: &str,
        timeout: Duration,
    ) -> Result<Answer, ProviderError> {
        let uri = format!("{}{path}", self.api_version().await?.path_prefix());
        self.send(method, uri, body, content_type, timeout).await
    }

    async fn send(
        &self,
        method: Method,
        uri: String,
        body: Bytes,
        content_type: &str,
        timeout: Duration,
    ) -> Result<Answer, ProviderError> {
        let what = format!("{method} {uri}");
        let call = async {
            let mut sender = self.connect().await?;
            let response = sender
                .send_request(Self::request(method, uri, body, content_type))
                .await
                .map_err(|error| {
                    ProviderError::Unavailable(format!("Docker {what} failed: {error}"))
                })?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|error| {
                    ProviderError::Unavailable(format!(
                        "reading Docker's answer to {what}: {error}"
                    ))
                })?
                .to_bytes();
            Ok(Answer {
                status,
                body,
                headers,
            })
        };
        tokio::time::timeout(timeout, call).await.map_err(|_| {
            ProviderError::Unavailable(format!(
                "the Docker daemon did not answer {what} within {} s",
                timeout.as_secs()
            ))
        })?
    }

    /// `POST /exec/{id}/start`, hijacking the connection for the exec's streams.
    pub async fn start_exec(&self, exec_id: &str) -> Result<Hijacked, ProviderError> {
        let prefix = self.api_version().await?.path_prefix();
        let call = async {
            let mut sender = self.connect().await?;
            let mut request = Self::request(
                Method::POST,
                format!("{prefix}/exec/{exec_id}/start"),
                Bytes::from(r#"{"Detach":false,"Tty":false}"#),
                "application/json",
            );
            let headers = request.headers_mut();
            headers.insert("connection", "Upgrade".parse().expect("a header value"));
            headers.insert("upgrade", "tcp".parse().expect("a header value"));
            let response = sender.send_request(request).await.map_err(|error| {
                ProviderError::Unavailable(format!("Docker exec start failed: {error}"))
            })?;
            if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                let status = response.status();
                let headers = response.headers().clone();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map(|body| body.to_bytes())
                    .unwrap_or_default();
                return Err(docker_error(
                    "exec start",
                    &Answer {
                        status,
                        body,
                        headers,
                    },
                ));
            }
            let upgraded = hyper::upgrade::on(response).await.map_err(|error| {
                ProviderError::Unavailable(format!("Docker exec stream failed: {error}"))
            })?;
            Ok(TokioIo::new(upgraded))
        };
        tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .map_err(|_| {
                ProviderError::Unavailable("Docker did not start the exec within 30 s".into())
            })?
    }
}

async fn handshake<T>(io: TokioIo<T>) -> Result<http1::SendRequest<Full<Bytes>>, ProviderError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = http1::handshake(io).await.map_err(|error| {
        ProviderError::Unavailable(format!("HTTP handshake with Docker failed: {error}"))
    })?;
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    Ok(sender)
}

/// A non-success answer as a provider error.
pub fn docker_error(what: &str, answer: &Answer) -> ProviderError {
    let message = answer.message();
    match answer.status.as_u16() {
        400 | 409 => ProviderError::InvalidRequest(format!("Docker refused {what}: {message}")),
        401 | 403 => ProviderError::Unavailable(format!(
            "Docker refused access for {what} (check DOCKER_HOST and its permissions): {message}"
        )),
        404 => {
            ProviderError::Unavailable(format!("Docker has no such object for {what}: {message}"))
        }
        status => ProviderError::Unavailable(format!("Docker failed {what} ({status}): {message}")),
    }
}
