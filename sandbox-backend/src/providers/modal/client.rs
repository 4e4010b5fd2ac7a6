//! A small gRPC client for Modal's control plane (`modal.client.ModalClient`), the way
//! libmodal's Go client calls it: HTTP/2 to `api.modal.com:443`, on every call the
//! metadata libmodal's Go client sends (`x-modal-client-type` 9 =
//! `CLIENT_TYPE_LIBMODAL_GO`, `x-modal-client-version` 1.0.0, `x-modal-libmodal-version`
//! `modal-go/<version>`, the token pair, and the short-lived `x-modal-auth-token` of
//! [`super::auth_token`]), and a deadline on every call.

use std::time::Duration;

use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic_prost::ProstCodec;

use super::auth_token::{self, AuthToken};
use super::proto;
use crate::providers::ProviderError;

/// `CLIENT_TYPE_LIBMODAL_GO` of `api.proto`'s `ClientType`: this client follows
/// libmodal's Go client, call for call.
pub const CLIENT_TYPE: &str = "9";
/// The Python SDK version whose behaviour libmodal (and so this client) follows; libmodal
/// sends the same.
pub const CLIENT_VERSION: &str = "1.0.0";
/// The libmodal release whose call sequence this client follows, as libmodal names
/// itself in `x-modal-libmodal-version` (Modal gates features on it).
pub const LIBMODAL_VERSION: &str = "modal-go/0.6.3";

/// The deadline of `AuthTokenGet`.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest message accepted from Modal (output batches can be large).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The call that gives the auth token, made without one.
const AUTH_TOKEN_GET: &str = "AuthTokenGet";

#[derive(Clone)]
pub struct ModalClient {
    channel: Channel,
    token_id: MetadataValue<tonic::metadata::Ascii>,
    token_secret: MetadataValue<tonic::metadata::Ascii>,
    /// The current auth token; one fetch at a time.
    auth: std::sync::Arc<tokio::sync::Mutex<Option<AuthToken>>>,
}

impl ModalClient {
    /// `server_url` is `https://api.modal.com:443` in production; plain `http://` is
    /// h2c (prior knowledge), which only a local server speaks.
    pub fn new(
        server_url: &str,
        token_id: &str,
        token_secret: &str,
    ) -> Result<ModalClient, String> {
        let mut endpoint = Endpoint::from_shared(server_url.to_string())
            .map_err(|error| format!("MODAL_SERVER_URL {server_url:?} is not a URL: {error}"))?
            .connect_timeout(Duration::from_secs(10))
            // Output arrives in large batches: a 64 KiB window would stall on them.
            .initial_stream_window_size(Some(8 * 1024 * 1024))
            .initial_connection_window_size(Some(16 * 1024 * 1024))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if server_url.starts_with("https://") {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_webpki_roots())
                .map_err(|error| format!("cannot set up TLS for {server_url}: {error}"))?;
        }
        let token_id = token_id.parse().map_err(|_| {
            "MODAL_TOKEN_ID contains characters not allowed in a header".to_string()
        })?;
        let token_secret = token_secret.parse().map_err(|_| {
            "MODAL_TOKEN_SECRET contains characters not allowed in a header".to_string()
        })?;
        Ok(ModalClient {
            channel: endpoint.connect_lazy(),
            token_id,
            token_secret,
            auth: Default::default(),
        })
    }

    /// The auth token for a call: the current one, or a new one from `AuthTokenGet`
    /// when it expires within the refresh window.
    async fn auth_token(&self) -> Result<MetadataValue<tonic::metadata::Ascii>, ProviderError> {
        let mut current = self.auth.lock().await;
        let now = auth_token::now();
        let token = match current.as_ref().filter(|token| token.fresh(now)) {
            Some(token) => token.clone(),
            None => {
                let response: proto::AuthTokenGetResponse = self
                    .call_unary(
                        AUTH_TOKEN_GET,
                        proto::AuthTokenGetRequest {},
                        None,
                        CALL_TIMEOUT,
                    )
                    .await?;
                if response.token.is_empty() {
                    return Err(ProviderError::Unavailable(
                        "Modal gave an empty auth token".into(),
                    ));
                }
                let token = AuthToken::new(response.token, now);
                *current = Some(token.clone());
                token
            }
        };
        token.token.parse().map_err(|_| {
            ProviderError::Unavailable("Modal's auth token is not a header value".into())
        })
    }

    fn request<M>(
        &self,
        message: M,
        timeout: Duration,
        auth_token: Option<MetadataValue<tonic::metadata::Ascii>>,
    ) -> tonic::Request<M> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        let metadata = request.metadata_mut();
        if let Some(token) = auth_token {
            metadata.insert("x-modal-auth-token", token);
        }
        metadata.insert("x-modal-token-id", self.token_id.clone());
        metadata.insert("x-modal-token-secret", self.token_secret.clone());
        metadata.insert(
            "x-modal-client-type",
            MetadataValue::from_static(CLIENT_TYPE),
        );
        metadata.insert(
            "x-modal-client-version",
            MetadataValue::from_static(CLIENT_VERSION),
        );
        metadata.insert(
            "x-modal-libmodal-version",
            MetadataValue::from_static(LIBMODAL_VERSION),
        );
        request
    }

    fn path(method: &str) -> PathAndQuery {
        PathAndQuery::try_from(format!("/{}/{method}", proto::SERVICE))
            .expect("method names are valid paths")
    }

    /// One unary call with a deadline; failures become provider errors naming the call.
    pub async fn unary<Req, Resp>(
        &self,
        method: &str,
        message: Req,
        timeout: Duration,
    ) -> Result<Resp, ProviderError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let auth_token = self.auth_token().await?;
        self.call_unary(method, message, Some(auth_token), timeout)
            .await
    }

    async fn call_unary<Req, Resp>(
        &self,
        method: &str,
        message: Req,
        auth_token: Option<MetadataValue<tonic::metadata::Ascii>>,
        timeout: Duration,
    ) -> Result<Resp, ProviderError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let mut grpc = Grpc::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES);
        let call = async {
            grpc.ready()
                .await
                .map_err(|error| unavailable(method, &error.to_string()))?;
            grpc.unary(
                self.request(message, timeout, auth_token),
                Self::path(method),
                ProstCodec::<Req, Resp>::default(),
            )
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| status_error(method, &status))
        };
        match tokio::time::timeout(timeout + Duration::from_secs(2), call).await {
            Ok(result) => result,
            Err(_) => Err(ProviderError::Unavailable(format!(
                "Modal did not answer {method} within {} s",
                timeout.as_secs()
            ))),
        }
    }

    /// Opens a server-streaming call whose whole run is bounded by `timeout` (sent as
    /// the call's deadline). Opening waits up to that same deadline, not less: a gRPC
    /// server may send the response headers only with the first message, and a long
    /// poll over a silent command has none until the poll ends, so a shorter deadline
    /// to open would fail commands that are merely quiet.
    pub async fn server_streaming<Req, Resp>(
        &self,
        method: &str,
        message: Req,
        timeout: Duration,
    ) -> Result<tonic::Streaming<Resp>, ProviderError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let auth_token = self.auth_token().await?;
        let mut grpc = Grpc::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES);
        let call = async {
            grpc.ready()
                .await
                .map_err(|error| unavailable(method, &error.to_string()))?;
            grpc.server_streaming(
                self.request(message, timeout, Some(auth_token)),
                Self::path(method),
                ProstCodec::<Req, Resp>::default(),
            )
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| status_error(method, &status))
        };
        match tokio::time::timeout(timeout + Duration::from_secs(2), call).await {
            Ok(result) => result,
            Err(_) => Err(ProviderError::Unavailable(format!(
                "Modal did not start answering {method} within {} s",
                timeout.as_secs()
            ))),
        }
    }
}

fn unavailable(method: &str, message: &str) -> ProviderError {
    ProviderError::Unavailable(format!("cannot reach Modal for {method}: {message}"))
}

/// A gRPC status from Modal as a provider error that says what went wrong.
pub fn status_error(method: &str, status: &tonic::Status) -> ProviderError {
    use tonic::Code;
    let message = status.message();
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => ProviderError::Unavailable(format!(
            "Modal refused the credentials (check MODAL_TOKEN_ID and MODAL_TOKEN_SECRET) on {method}: {message}"
        )),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            ProviderError::InvalidRequest(format!("Modal refused {method}: {message}"))
        }
        Code::NotFound => ProviderError::Unavailable(format!(
            "Modal does not know the object of {method}: {message}"
        )),
        code => ProviderError::Unavailable(format!("Modal failed {method} ({code:?}): {message}")),
    }
}

pub fn is_not_found(error: &tonic::Status) -> bool {
    error.code() == tonic::Code::NotFound
}
