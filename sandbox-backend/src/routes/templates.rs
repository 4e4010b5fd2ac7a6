//! Templates and providers.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use nightshift_protocol::sandbox::{ProviderList, Template, TemplateList, TemplateSpec};

use super::JsonBody;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn providers(State(state): State<AppState>) -> Json<ProviderList> {
    Json(ProviderList {
        providers: state.sandboxes().provider_infos(),
    })
}

/// `POST /v1/templates`: a [`TemplateSpec`] plus an optional `provider`. 201 when
/// built now, 200 when the same spec was built before.
pub async fn create(
    State(state): State<AppState>,
    JsonBody(mut body): JsonBody<serde_json::Value>,
) -> Result<(StatusCode, Json<Template>), ApiError> {
    let Some(object) = body.as_object_mut() else {
        return Err(ApiError::invalid_json("the body must be a JSON object"));
    };
    let provider = match object.remove("provider") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(name)) => Some(name),
        Some(_) => return Err(ApiError::invalid_json("`provider` must be a string")),
    };
    let spec: TemplateSpec = serde_json::from_value(body)
        .map_err(|error| ApiError::invalid_json(format!("not a template spec: {error}")))?;
    let (template, built) = state.sandboxes().build_template(provider, spec).await?;
    let status = if built {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(template)))
}

pub async fn list(State(state): State<AppState>) -> Json<TemplateList> {
    Json(TemplateList {
        templates: state.sandboxes().templates(),
    })
}

pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Template>, ApiError> {
    Ok(Json(state.sandboxes().template(&id)?))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.sandboxes().delete_template(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
