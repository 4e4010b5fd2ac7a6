//! The fake Modal's apps, images and sandboxes: `AppGetOrCreate`, `ImageGetOrCreate`,
//! `Sandbox*`. Requests and replies are official `api.proto` messages ([`Msg`]).

use std::sync::atomic::Ordering;

use super::official::{self, Msg};
use super::{
    FAILED_PRECONDITION, FakeSandbox, INTERNAL, INVALID_ARGUMENT, ModalState, NOT_FOUND, Status,
    UNAVAILABLE, generic_result, generic_status,
};
use crate::fakes::{Machine, next_id};

/// How many sandboxes one `SandboxList` page holds: small, so listings page.
const LIST_PAGE: usize = 2;

fn reply(name: &str) -> Msg {
    official::get().reply(name)
}

pub async fn app_get_or_create(state: &ModalState, request: Msg) -> Result<Msg, Status> {
    let mut apps = state.apps.lock().await;
    let app_id = apps
        .entry(request.str("app_name"))
        .or_insert_with(|| next_id("ap"))
        .clone();
    Ok(reply("AppGetOrCreateResponse").set_str("app_id", app_id))
}

pub async fn image_get_or_create(state: &ModalState, request: Msg) -> Result<Msg, Status> {
    let image = request
        .message("image")
        .ok_or_else(|| Status(INVALID_ARGUMENT, "image is required".into()))?;
    if request.str("builder_version").is_empty() {
        return Err(Status(
            INVALID_ARGUMENT,
            "builder_version is required".into(),
        ));
    }
    let image_id = next_id("im");
    let base = image
        .messages("base_images")
        .first()
        .map(|base| base.str("image_id"));
    let result = match state
        .images
        .build(
            &image_id,
            &image.strings("dockerfile_commands"),
            base.as_deref(),
        )
        .await
    {
        Ok(log) => {
            generic_result(generic_status("GENERIC_STATUS_SUCCESS")).set_str("exception", log)
        }
        Err(why) => generic_result(generic_status("GENERIC_STATUS_FAILURE"))
            .set_str("exception", why)
            .set_int("exitcode", 1),
    };
    Ok(reply("ImageGetOrCreateResponse")
        .set_str("image_id", image_id)
        .set_message("result", result))
}

/// `ImageDelete`: the image is gone; sandboxes can no longer be created from it.
pub async fn image_delete(state: &ModalState, request: Msg) -> Result<Msg, Status> {
    let image_id = request.str("image_id");
    if !state.images.remove(&image_id).await {
        return Err(Status(NOT_FOUND, format!("image {image_id} not found")));
    }
    Ok(official::get().empty())
}

/// Only what a sandbox's environment needs: an ephemeral secret from a map.
pub async fn secret_get_or_create(state: &ModalState, request: Msg) -> Result<Msg, Status> {
    let ephemeral = official::get().enum_number(
        "modal.client.ObjectCreationType",
        "OBJECT_CREATION_TYPE_EPHEMERAL",
    );
    if request.int("object_creation_type") != i64::from(ephemeral) {
        return Err(Status(
            INVALID_ARGUMENT,
            "the fake makes only ephemeral secrets".into(),
        ));
    }
    let secret_id = next_id("st");
    state
        .secrets
        .lock()
        .await
        .insert(secret_id.clone(), request.string_map("env_dict"));
    Ok(reply("SecretGetOrCreateResponse").set_str("secret_id", secret_id))
}

pub async fn sandbox_create(state: &ModalState, request: Msg) -> Result<Msg, Status> {
    let app_id = request.str("app_id");
    if !state.apps.lock().await.values().any(|id| *id == app_id) {
        return Err(Status(NOT_FOUND, format!("app {app_id} not found")));
    }
    let definition = request
        .message("definition")
        .ok_or_else(|| Status(INVALID_ARGUMENT, "definition is required".into()))?;
    let failing = state
        .create_failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok();
    if failing {
        return Err(Status(
            UNAVAILABLE,
            "no capacity to schedule the sandbox".into(),
        ));
    }
    let image_id = definition.str("image_id");
    let image = state
        .images
        .get(&image_id)
        .await
        .ok_or_else(|| Status(NOT_FOUND, format!("image {image_id} not found")))?;
    let machine = Machine::create(&state.dir.join("sandboxes"), Some(&image))
        .await
        .map_err(|error| Status(INTERNAL, error.to_string()))?;
    let sandbox_id = next_id("sb");
    let mut env = std::collections::BTreeMap::new();
    let secrets = state.secrets.lock().await;
    for secret_id in definition.strings("secret_ids") {
        let secret = secrets
            .get(&secret_id)
            .ok_or_else(|| Status(NOT_FOUND, format!("secret {secret_id} not found")))?;
        env.extend(secret.clone());
    }
    drop(secrets);
    let ports = definition
        .message("open_ports")
        .map(|ports| {
            ports
                .messages("ports")
                .iter()
                .map(|port| port.int("port") as u32)
                .collect()
        })
        .unwrap_or_default();
    state.sandboxes.lock().await.insert(
        sandbox_id.clone(),
        FakeSandbox {
            machine,
            task_id: next_id("ta"),
            env,
            ports,
            ended: None,
            image_id,
            app_id,
            // api.proto has no tags on create: `SandboxTagsSet` sets them.
            tags: Vec::new(),
            created_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_secs_f64())
                .unwrap_or_default(),
        },
    );
    Ok(reply("SandboxCreateResponse").set_str("sandbox_id", sandbox_id))
}

fn tags_of(message: &Msg) -> Vec<(String, String)> {
    message
        .messages("tags")
        .iter()
        .map(|tag| (tag.str("tag_name"), tag.str("tag_value")))
        .collect()
}

fn tag_messages(tags: &[(String, String)]) -> Vec<Msg> {
    tags.iter()
        .map(|(name, value)| {
            reply("SandboxTag")
                .set_str("tag_name", name.clone())
                .set_str("tag_value", value.clone())
        })
        .collect()
}

/// The task id once the sandbox is scheduled; while `task_id_delays` lasts, an answer
/// with neither a task id nor a result, as Modal gives when its long poll ends first.
pub async fn sandbox_get_task_id(state: &ModalState, request: Msg) -> Result<Msg, Status> {
    let sandboxes = state.sandboxes.lock().await;
    let sandbox = sandboxes
        .get(&request.str("sandbox_id"))
        .ok_or_else(|| Status(NOT_FOUND, "sandbox not found".into()))?;
    let response = reply("SandboxGetTaskIdResponse");
    if let Some(status) = sandbox.ended {
        return Ok(response.set_message("task_result", generic_result(status)));
    }
    let delayed = state
        .task_id_delays
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok();
    if delayed {
        return Ok(response);
    }
    Ok(response.set_str("task_id", sandbox.task_id.clone()))
}

pub async fn sandbox_wait(state: &ModalState, request: Msg) -> Result<Msg, Status> {
    let sandboxes = state.sandboxes.lock().await;
    let sandbox = sandboxes
        .get(&request.str("sandbox_id"))
        .ok_or_else(|| Status(NOT_FOUND, "sandbox not found".into()))?;
    let response = reply("SandboxWaitResponse");
    Ok(match sandbox.ended {
        Some(status) => response.set_message("result", generic_result(status)),
        None => response,
    })
}

/// Running (unless `include_finished`) sandboxes of the app carrying every requested
/// tag, newest first, those created before `before_timestamp` when it is set, a page
/// at a time.
pub async fn sandbox_list(state: &ModalState, request: Msg) -> Result<Msg, Status> {
    let app_id = request.str("app_id");
    let include_finished = request.bool("include_finished");
    let wanted = tags_of(&request);
    let before = request.float("before_timestamp");
    let sandboxes = state.sandboxes.lock().await;
    let mut listed: Vec<(&String, &FakeSandbox)> = sandboxes
        .iter()
        .filter(|(_, sandbox)| app_id.is_empty() || sandbox.app_id == app_id)
        .filter(|(_, sandbox)| include_finished || sandbox.ended.is_none())
        .filter(|(_, sandbox)| wanted.iter().all(|tag| sandbox.tags.contains(tag)))
        .filter(|(_, sandbox)| before == 0.0 || sandbox.created_at < before)
        .collect();
    listed.sort_by(|a, b| b.1.created_at.total_cmp(&a.1.created_at));
    listed.truncate(LIST_PAGE);
    let infos = listed
        .into_iter()
        .map(|(id, sandbox)| {
            reply("SandboxInfo")
                .set_str("id", id.clone())
                .set_float("created_at", sandbox.created_at)
                .set_str("app_id", sandbox.app_id.clone())
                .set_messages("tags", tag_messages(&sandbox.tags))
        })
        .collect();
    Ok(reply("SandboxListResponse").set_messages("sandboxes", infos))
}

/// Replaces the sandbox's tags (the stricter reading of Modal's "sets tags": a caller
/// that forgot one loses it here).
pub async fn sandbox_tags_set(state: &ModalState, request: Msg) -> Result<Msg, Status> {
    let mut sandboxes = state.sandboxes.lock().await;
    let sandbox = sandboxes
        .get_mut(&request.str("sandbox_id"))
        .ok_or_else(|| Status(NOT_FOUND, "sandbox not found".into()))?;
    sandbox.tags = tags_of(&request);
    Ok(official::get().empty())
}

pub async fn sandbox_tags_get(state: &ModalState, request: Msg) -> Result<Msg, Status> {
    let sandboxes = state.sandboxes.lock().await;
    let sandbox = sandboxes
        .get(&request.str("sandbox_id"))
        .ok_or_else(|| Status(NOT_FOUND, "sandbox not found".into()))?;
    Ok(reply("SandboxTagsGetResponse").set_messages("tags", tag_messages(&sandbox.tags)))
}

pub async fn sandbox_terminate(state: &ModalState, request: Msg) -> Result<Msg, Status> {
    let mut sandboxes = state.sandboxes.lock().await;
    let sandbox = sandboxes
        .get_mut(&request.str("sandbox_id"))
        .ok_or_else(|| Status(NOT_FOUND, "sandbox not found".into()))?;
    let response = reply("SandboxTerminateResponse");
    if let Some(status) = sandbox.ended {
        return Ok(response.set_message("existing_result", generic_result(status)));
    }
    sandbox.machine.kill_all();
    sandbox.ended = Some(generic_status("GENERIC_STATUS_TERMINATED"));
    Ok(response)
}

pub async fn sandbox_snapshot_fs(state: &ModalState, request: Msg) -> Result<Msg, Status> {
    let machine = {
        let sandboxes = state.sandboxes.lock().await;
        let sandbox = sandboxes
            .get(&request.str("sandbox_id"))
            .ok_or_else(|| Status(NOT_FOUND, "sandbox not found".into()))?;
        if sandbox.ended.is_some() {
            return Err(Status(FAILED_PRECONDITION, "sandbox has finished".into()));
        }
        sandbox.machine.clone()
    };
    let failing = state
        .snapshot_failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok();
    if failing {
        return Ok(reply("SandboxSnapshotFsResponse").set_message(
            "result",
            generic_result(generic_status("GENERIC_STATUS_FAILURE"))
                .set_str("exception", "snapshot storage is unavailable"),
        ));
    }
    let image_id = next_id("im");
    state
        .images
        .snapshot(&machine, &image_id)
        .await
        .map_err(|error| Status(INTERNAL, error.to_string()))?;
    Ok(reply("SandboxSnapshotFsResponse")
        .set_str("image_id", image_id)
        .set_message(
            "result",
            generic_result(generic_status("GENERIC_STATUS_SUCCESS")),
        ))
}

pub async fn sandbox_get_tunnels(state: &ModalState, request: Msg) -> Result<Msg, Status> {
    let sandbox_id = request.str("sandbox_id");
    let sandboxes = state.sandboxes.lock().await;
    let sandbox = sandboxes
        .get(&sandbox_id)
        .ok_or_else(|| Status(NOT_FOUND, "sandbox not found".into()))?;
    let tunnels = sandbox
        .ports
        .iter()
        .map(|port| {
            reply("TunnelData")
                .set_str("host", format!("{sandbox_id}-{port}.modal.fake"))
                .set_int("port", 443)
                .set_int("container_port", i64::from(*port))
        })
        .collect();
    Ok(reply("SandboxGetTunnelsResponse")
        .set_message(
            "result",
            generic_result(generic_status("GENERIC_STATUS_SUCCESS")),
        )
        .set_messages("tunnels", tunnels))
}
