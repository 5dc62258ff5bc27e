//! `/v1/templates`: message bodies with `{{var}}` placeholders, sent by name with
//! `{"type":"template","template":{"name","params"}}`. A template is any message a send
//! takes except one acting on an earlier message (reaction, edit, revoke); placeholders fill
//! in the texts the recipient reads (text, caption, file name, place, poll).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use wagate_core::{template, MessageContent, OrgId, Template};
use wagate_store::{StoreError, TemplateChange};

use super::compose::{self, template_not_found};
use super::openapi::{ApiKeyRequired, ErrorBody, TemplateList};
use super::{ApiError, ApiJson, ErrorCode};
use crate::auth::{scope, Caller};
use crate::AppState;

compose::content_body! {
    kinds: compose::BodyKind;
    /// A message body as a send takes it (without `to`), `{{var}}` placeholders and all.
    #[derive(Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    pub(super) struct ContentBody {}
}

impl ContentBody {
    /// The content this body gives; a media file is resolved (and stored) now, once.
    pub(super) async fn checked(mut self, state: &AppState, org: &OrgId) -> Result<MessageContent, ApiError> {
        compose::template_content(state, org, self.take_content()).await
    }
}

fn checked_language(language: Option<String>) -> Result<Option<String>, ApiError> {
    match language {
        Some(l) if l.is_empty() || l.len() > 16 => {
            Err(ApiError::invalid_field("language", "must be 1 to 16 characters, such as en or pt_BR"))
        }
        other => Ok(other),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "welcome", "language": "en", "content": {"type": "text", "text": {"body": "Hi {{name}}, welcome to {{shop}}!"}}}))]
#[serde(deny_unknown_fields)]
pub(super) struct CreateTemplate {
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    name: String,
    #[schema(min_length = 1, max_length = 16)]
    language: Option<String>,
    content: ContentBody,
}

#[utoipa::path(operation_id = "templates_create", post, path = "/templates", tag = "templates", request_body = CreateTemplate,
    responses((status = 201, body = Template, description = "Created"),
        (status = 400, description = "Malformed JSON", body = ErrorBody), ApiKeyRequired,
        (status = 409, description = "A template of that name exists", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller<scope::ManageTemplates>,
    ApiJson(body): ApiJson<CreateTemplate>,
) -> Result<(StatusCode, Json<Template>), ApiError> {
    template::check_name(&body.name).map_err(|e| ApiError::invalid_field("name", e))?;
    let language = checked_language(body.language)?;
    let org = caller.home_org();
    let content = body.content.checked(&state, &org).await?;
    match state
        .engine
        .store()
        .create_template(&org, body.name.clone(), language, content, state.engine.now())
        .await
    {
        Ok(created) => Ok((StatusCode::CREATED, Json(created))),
        Err(StoreError::Conflict(_)) => Err(ApiError::conflict(
            ErrorCode::TemplateExists,
            format!("a template named {:?} exists", body.name),
        )),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(operation_id = "templates_list", get, path = "/templates", tag = "templates",
    responses((status = 200, body = TemplateList, description = "By name"), ApiKeyRequired))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller<scope::ManageTemplates>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "data": state.engine.store().list_templates(&caller.home_org()).await? })))
}

#[utoipa::path(operation_id = "templates_get", get, path = "/templates/{name}", tag = "templates",
    params(("name" = String, Path, description = "Template name")),
    responses((status = 200, body = Template, description = "OK"), ApiKeyRequired,
        (status = 404, description = "Not found", body = ErrorBody)))]
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller<scope::ManageTemplates>,
    Path(name): Path<String>,
) -> Result<Json<Template>, ApiError> {
    let found = state.engine.store().get_template(&caller.home_org(), &name).await?;
    found.map(Json).ok_or_else(|| template_not_found(&name))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"content": {"type": "text", "text": {"body": "Hello {{name}}!"}}}))]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateTemplate {
    content: Option<ContentBody>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(min_length = 1, max_length = 16)]
    language: Option<Option<String>>,
}

/// Tells a field set to `null` (Some(None)) from a missing one (None).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[utoipa::path(operation_id = "templates_update", patch, path = "/templates/{name}", tag = "templates",
    params(("name" = String, Path, description = "Template name")), request_body = UpdateTemplate,
    responses((status = 200, body = Template, description = "OK"), (status = 400, description = "Malformed JSON", body = ErrorBody),
        ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody),
        (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller<scope::ManageTemplates>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UpdateTemplate>,
) -> Result<Json<Template>, ApiError> {
    let org = caller.home_org();
    let content = match body.content {
        Some(content) => Some(content.checked(&state, &org).await?),
        None => None,
    };
    let change = TemplateChange { content, language: body.language.map(checked_language).transpose()? };
    let updated = state.engine.store().update_template(&org, &name, change, state.engine.now()).await?;
    updated.map(Json).ok_or_else(|| template_not_found(&name))
}

#[utoipa::path(operation_id = "templates_delete", delete, path = "/templates/{name}", tag = "templates",
    params(("name" = String, Path, description = "Template name")),
    responses((status = 204, description = "Deleted"), ApiKeyRequired,
        (status = 404, description = "Not found", body = ErrorBody)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller<scope::ManageTemplates>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.engine.store().delete_template(&caller.home_org(), &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(template_not_found(&name))
    }
}
