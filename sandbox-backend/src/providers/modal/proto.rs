//! The subset of Modal's `modal.client` protobuf API this provider uses, written by
//! hand with `prost` derives (no protoc at build time). Message and field numbers
//! follow `modal_proto/api.proto` as the `modal` 1.3.4 wheel on PyPI ships it, used
//! the way libmodal's Go client v0.6.3 uses it (the last version that runs commands
//! through `ContainerExec*` on the control plane). Fields this provider does not use
//! are left out; protobuf skips unknown fields, so the subset stays wire-compatible.
//!
//! Nothing here is trusted on its own word: the tests' fake Modal server decodes every
//! request and encodes every reply through the official `api.proto` itself
//! (`tests/fakes/modal/official.rs`), so a field number, wire type or method path
//! that differs from Modal's fails a test.

#![allow(clippy::derive_partial_eq_without_eq)]

use std::collections::HashMap;

/// The gRPC service every method below belongs to.
pub const SERVICE: &str = "modal.client.ModalClient";

#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

/// `AuthTokenGet`: the short-lived token every other call carries.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthTokenGetRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthTokenGetResponse {
    #[prost(string, tag = "1")]
    pub token: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AppGetOrCreateRequest {
    #[prost(string, tag = "1")]
    pub app_name: String,
    #[prost(string, tag = "2")]
    pub environment_name: String,
    /// `ObjectCreationType`: 1 = create if missing.
    #[prost(int32, tag = "3")]
    pub object_creation_type: i32,
}
pub const OBJECT_CREATION_TYPE_CREATE_IF_MISSING: i32 = 1;

#[derive(Clone, PartialEq, prost::Message)]
pub struct AppGetOrCreateResponse {
    #[prost(string, tag = "1")]
    pub app_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct BaseImage {
    #[prost(string, tag = "1")]
    pub image_id: String,
    #[prost(string, tag = "2")]
    pub docker_tag: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    #[prost(message, repeated, tag = "5")]
    pub base_images: Vec<BaseImage>,
    #[prost(string, repeated, tag = "6")]
    pub dockerfile_commands: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageGetOrCreateRequest {
    #[prost(message, optional, tag = "2")]
    pub image: Option<Image>,
    #[prost(string, tag = "4")]
    pub app_id: String,
    #[prost(bool, tag = "7")]
    pub force_build: bool,
    #[prost(string, tag = "9")]
    pub builder_version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageGetOrCreateResponse {
    #[prost(string, tag = "1")]
    pub image_id: String,
    #[prost(message, optional, tag = "2")]
    pub result: Option<GenericResult>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageJoinStreamingRequest {
    #[prost(string, tag = "1")]
    pub image_id: String,
    #[prost(float, tag = "2")]
    pub timeout: f32,
    #[prost(string, tag = "3")]
    pub last_entry_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageJoinStreamingResponse {
    #[prost(message, optional, tag = "1")]
    pub result: Option<GenericResult>,
    #[prost(string, tag = "3")]
    pub entry_id: String,
    #[prost(bool, tag = "4")]
    pub eof: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GenericResult {
    #[prost(int32, tag = "1")]
    pub status: i32,
    #[prost(string, tag = "2")]
    pub exception: String,
    #[prost(int32, tag = "3")]
    pub exitcode: i32,
}
pub const GENERIC_STATUS_UNSPECIFIED: i32 = 0;
pub const GENERIC_STATUS_SUCCESS: i32 = 1;
pub const GENERIC_STATUS_FAILURE: i32 = 2;
pub const GENERIC_STATUS_TERMINATED: i32 = 3;
pub const GENERIC_STATUS_TIMEOUT: i32 = 4;
pub const GENERIC_STATUS_IDLE_TIMEOUT: i32 = 7;

#[derive(Clone, PartialEq, prost::Message)]
pub struct NetworkAccess {
    /// 1 = open, 2 = blocked, 3 = allowlist.
    #[prost(int32, tag = "1")]
    pub network_access_type: i32,
    #[prost(string, repeated, tag = "2")]
    pub allowed_cidrs: Vec<String>,
}
pub const NETWORK_ACCESS_OPEN: i32 = 1;
pub const NETWORK_ACCESS_BLOCKED: i32 = 2;

/// `SecretGetOrCreate`: how the official clients pass a sandbox's environment (an
/// ephemeral secret made from a map, named in `Sandbox.secret_ids`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SecretGetOrCreateRequest {
    #[prost(string, tag = "3")]
    pub environment_name: String,
    #[prost(int32, tag = "4")]
    pub object_creation_type: i32,
    #[prost(map = "string, string", tag = "5")]
    pub env_dict: HashMap<String, String>,
}
pub const OBJECT_CREATION_TYPE_EPHEMERAL: i32 = 5;

#[derive(Clone, PartialEq, prost::Message)]
pub struct SecretGetOrCreateResponse {
    #[prost(string, tag = "1")]
    pub secret_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PortSpec {
    #[prost(uint32, tag = "1")]
    pub port: u32,
    #[prost(bool, tag = "2")]
    pub unencrypted: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PortSpecs {
    #[prost(message, repeated, tag = "1")]
    pub ports: Vec<PortSpec>,
}

/// `modal.client.Sandbox`: the definition of a sandbox to create.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sandbox {
    #[prost(string, repeated, tag = "1")]
    pub entrypoint_args: Vec<String>,
    #[prost(string, tag = "3")]
    pub image_id: String,
    #[prost(string, repeated, tag = "4")]
    pub secret_ids: Vec<String>,
    #[prost(uint32, tag = "7")]
    pub timeout_secs: u32,
    #[prost(string, optional, tag = "8")]
    pub workdir: Option<String>,
    #[prost(message, optional, tag = "20")]
    pub open_ports: Option<PortSpecs>,
    #[prost(message, optional, tag = "22")]
    pub network_access: Option<NetworkAccess>,
    #[prost(bool, tag = "24")]
    pub enable_snapshot: bool,
    #[prost(string, optional, tag = "30")]
    pub name: Option<String>,
    #[prost(uint32, optional, tag = "33")]
    pub idle_timeout_secs: Option<u32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxTag {
    #[prost(string, tag = "1")]
    pub tag_name: String,
    #[prost(string, tag = "2")]
    pub tag_value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxCreateRequest {
    #[prost(string, tag = "1")]
    pub app_id: String,
    #[prost(message, optional, tag = "2")]
    pub definition: Option<Sandbox>,
}

/// `SandboxList`: running sandboxes of an app carrying every tag given, newest first,
/// a page at a time (the next page: `before_timestamp` = the last one's `created_at`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxListRequest {
    #[prost(string, tag = "1")]
    pub app_id: String,
    #[prost(double, tag = "2")]
    pub before_timestamp: f64,
    #[prost(string, tag = "3")]
    pub environment_name: String,
    #[prost(bool, tag = "4")]
    pub include_finished: bool,
    #[prost(message, repeated, tag = "5")]
    pub tags: Vec<SandboxTag>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxListResponse {
    #[prost(message, repeated, tag = "1")]
    pub sandboxes: Vec<SandboxInfo>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxInfo {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(double, tag = "3")]
    pub created_at: f64,
    #[prost(string, tag = "5")]
    pub app_id: String,
    #[prost(message, repeated, tag = "6")]
    pub tags: Vec<SandboxTag>,
}

/// `SandboxTagsSet`: the sandbox's tags become these (answered with `Empty`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxTagsSetRequest {
    #[prost(string, tag = "1")]
    pub environment_name: String,
    #[prost(string, tag = "2")]
    pub sandbox_id: String,
    #[prost(message, repeated, tag = "3")]
    pub tags: Vec<SandboxTag>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxTagsGetRequest {
    #[prost(string, tag = "1")]
    pub sandbox_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxTagsGetResponse {
    #[prost(message, repeated, tag = "1")]
    pub tags: Vec<SandboxTag>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxCreateResponse {
    #[prost(string, tag = "1")]
    pub sandbox_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxGetTaskIdRequest {
    #[prost(string, tag = "1")]
    pub sandbox_id: String,
    #[prost(float, optional, tag = "2")]
    pub timeout: Option<f32>,
    #[prost(bool, tag = "3")]
    pub wait_until_ready: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxGetTaskIdResponse {
    #[prost(string, optional, tag = "1")]
    pub task_id: Option<String>,
    #[prost(message, optional, tag = "2")]
    pub task_result: Option<GenericResult>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxWaitRequest {
    #[prost(string, tag = "1")]
    pub sandbox_id: String,
    #[prost(float, tag = "2")]
    pub timeout: f32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxWaitResponse {
    #[prost(message, optional, tag = "1")]
    pub result: Option<GenericResult>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxTerminateRequest {
    #[prost(string, tag = "1")]
    pub sandbox_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxTerminateResponse {
    #[prost(message, optional, tag = "1")]
    pub existing_result: Option<GenericResult>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerExecRequest {
    #[prost(string, tag = "1")]
    pub task_id: String,
    #[prost(string, repeated, tag = "2")]
    pub command: Vec<String>,
    #[prost(uint32, tag = "8")]
    pub timeout_secs: u32,
    #[prost(string, optional, tag = "9")]
    pub workdir: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerExecResponse {
    #[prost(string, tag = "1")]
    pub exec_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerExecGetOutputRequest {
    #[prost(string, tag = "1")]
    pub exec_id: String,
    #[prost(float, tag = "2")]
    pub timeout: f32,
    #[prost(uint64, tag = "3")]
    pub last_batch_index: u64,
    /// `FileDescriptor`: 1 = stdout, 2 = stderr.
    #[prost(int32, tag = "4")]
    pub file_descriptor: i32,
    #[prost(bool, tag = "5")]
    pub get_raw_bytes: bool,
}
pub const FILE_DESCRIPTOR_STDOUT: i32 = 1;
pub const FILE_DESCRIPTOR_STDERR: i32 = 2;

#[derive(Clone, PartialEq, prost::Message)]
pub struct RuntimeOutputMessage {
    #[prost(int32, tag = "1")]
    pub file_descriptor: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(bytes = "vec", tag = "3")]
    pub message_bytes: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RuntimeOutputBatch {
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<RuntimeOutputMessage>,
    #[prost(uint64, tag = "2")]
    pub batch_index: u64,
    #[prost(int32, optional, tag = "3")]
    pub exit_code: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RuntimeInputMessage {
    #[prost(bytes = "vec", tag = "1")]
    pub message: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub message_index: u64,
    #[prost(bool, tag = "3")]
    pub eof: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerExecPutInputRequest {
    #[prost(string, tag = "1")]
    pub exec_id: String,
    #[prost(message, optional, tag = "2")]
    pub input: Option<RuntimeInputMessage>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerExecWaitRequest {
    #[prost(string, tag = "1")]
    pub exec_id: String,
    #[prost(float, tag = "2")]
    pub timeout: f32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerExecWaitResponse {
    #[prost(int32, optional, tag = "1")]
    pub exit_code: Option<i32>,
    #[prost(bool, tag = "2")]
    pub completed: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxSnapshotFsRequest {
    #[prost(string, tag = "1")]
    pub sandbox_id: String,
    #[prost(float, tag = "2")]
    pub timeout: f32,
}

/// `ImageDelete` (answered with `Empty`): removes an image, here a sleeping
/// sandbox's filesystem snapshot once nothing needs it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageDeleteRequest {
    #[prost(string, tag = "1")]
    pub image_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxSnapshotFsResponse {
    #[prost(string, tag = "1")]
    pub image_id: String,
    #[prost(message, optional, tag = "2")]
    pub result: Option<GenericResult>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxGetTunnelsRequest {
    #[prost(string, tag = "1")]
    pub sandbox_id: String,
    #[prost(float, tag = "2")]
    pub timeout: f32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TunnelData {
    #[prost(string, tag = "1")]
    pub host: String,
    #[prost(uint32, tag = "2")]
    pub port: u32,
    #[prost(uint32, tag = "5")]
    pub container_port: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxGetTunnelsResponse {
    #[prost(message, optional, tag = "1")]
    pub result: Option<GenericResult>,
    #[prost(message, repeated, tag = "2")]
    pub tunnels: Vec<TunnelData>,
}
