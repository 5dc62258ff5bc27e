//! `/v1/sessions/{id}/campaigns`: one message body (or template) sent to many recipients,
//! each with its own placeholder values; progress, pause, resume, cancel and per-recipient
//! results. Recipients come as JSON or as a CSV upload (multipart).

use std::collections::HashMap;

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use wagate_core::{
    Campaign, CampaignAction, CampaignId, Jid, MessageContent, MessageId, MessageStatus, Rejected, SessionId,
};
use wagate_store::{NewCampaign, RecipientQuery, StoreError};

use super::compose::{self, param_texts, TemplateRef, PARAM_TYPES};
use super::openapi::{ApiKeyRequired, CampaignList, ErrorBody, RecipientList};
use super::templates::ContentBody;
use super::{page_limit, visible_session, ApiError, ApiJson, ApiQuery, ErrorCode};
use crate::auth::{scope, Caller, Principal};
use crate::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "November promo", "content": {"type": "text", "text": {"body": "Hi {{name}}, 20% off this week!"}},
    "recipients": [{"to": "15550002222", "params": {"name": "Ann"}}, {"to": "+1 555 000 3333", "params": {"name": "Bob"}}]}))]
#[serde(deny_unknown_fields)]
pub(super) struct CreateCampaign {
    #[schema(max_length = 200, pattern = "\\S")]
    name: String,
    /// The message body; its `{{var}}` placeholders are filled from each recipient's params.
    content: Option<ContentBody>,
    /// Or a stored template; its `params` are defaults that recipients' params override.
    template: Option<TemplateRef>,
    /// Up to `campaigns.max_recipients` (100,000). Leave out when uploading a CSV.
    #[schema(required = true, min_items = 1)]
    #[serde(default)]
    recipients: Vec<RecipientBody>,
    /// RFC 3339 time to start at; the messages are `scheduled` until then.
    scheduled_at: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RecipientBody {
    /// A phone number in any common format, or a JID.
    #[schema(value_type = String)]
    to: Value,
    /// Values for the placeholders: strings, numbers or booleans.
    #[serde(default)]
    params: HashMap<String, Value>,
}

/// A recipient as given, before it is checked.
struct Recipient {
    to: String,
    /// The name of a param whose value is not a string, number or boolean.
    params: Result<HashMap<String, String>, String>,
}

impl From<RecipientBody> for Recipient {
    fn from(body: RecipientBody) -> Self {
        let to = match body.to {
            Value::String(s) => s,
            other => other.to_string(),
        };
        Recipient { to, params: param_texts(body.params) }
    }
}

/// A created campaign, with the recipients that were left out.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct CampaignCreated {
    #[serde(flatten)]
    campaign: Campaign,
    rejected_recipients: Vec<Rejected>,
}

/// How the document shows a campaign uploaded as multipart: its two parts.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "described in the document, never built")]
struct CampaignUpload {
    /// The campaign as JSON, without `recipients`.
    campaign: String,
    /// A CSV with a header row, a `to` (or `phone`) column and one column per placeholder.
    recipients: String,
}

/// How many rejected recipients a 422 for "none valid" lists.
const REJECTED_SHOWN: usize = 100;

#[utoipa::path(operation_id = "campaigns_create", post, path = "/sessions/{id}/campaigns", tag = "campaigns",
    params(("id" = String, Path, description = "Session id")),
    request_body(description = "JSON; or multipart/form-data with a part `campaign` (the JSON without `recipients`) and a part `recipients`: a CSV with a header row, a `to` (or `phone`) column and one column per placeholder",
        content((CreateCampaign = "application/json"), (CampaignUpload = "multipart/form-data"))),
    responses((status = 201, body = CampaignCreated, description = "Created; its messages are queued (or scheduled)"),
        (status = 400, description = "Malformed JSON or multipart", body = ErrorBody), ApiKeyRequired,
        (status = 404, description = "Session or template not found", body = ErrorBody), (status = 413, description = "Body larger than `campaigns.max_body_bytes`", body = ErrorBody),
        (status = 422, description = "Invalid field (`details.field`), or no valid recipient (`details.rejected`)", body = ErrorBody)))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller<scope::ManageTemplates>,
    Path(raw): Path<String>,
    request: Request,
) -> Result<(StatusCode, Json<CampaignCreated>), ApiError> {
    let session = visible_session(&state, &caller, &raw).await?;
    let session_id = session.id.clone();
    let (body, recipients) = read_request(&state, request).await?;
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid_field("name", "must be 1 to 200 characters"));
    }
    let scheduled_at =
        body.scheduled_at.as_deref().map(|at| compose::scheduled_time(at, state.engine.now())).transpose()?;
    let max = state.config.campaigns.max_recipients.get();
    if recipients.is_empty() {
        return Err(ApiError::invalid_field("recipients", "at least one recipient is required"));
    }
    if recipients.len() > max {
        return Err(ApiError::invalid_field(
            "recipients",
            format!("at most {max} recipients per campaign (got {})", recipients.len()),
        ));
    }
    let (template, content, defaults) = match (body.content, body.template) {
        (Some(content), None) => (None, content.checked(&state, &session.org_id).await?, HashMap::new()),
        (None, Some(reference)) => {
            let (found, defaults) = compose::find_template(&state, &session.org_id, reference).await?;
            (Some(found.name), found.content, defaults)
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_field("template", "give content or template, not both"))
        }
        (None, None) => return Err(ApiError::invalid_field("content", "content or template is required")),
    };
    let (accepted, rejected) = check_recipients(recipients, &content, &defaults);
    if accepted.is_empty() {
        let shown: Vec<&Rejected> = rejected.iter().take(REJECTED_SHOWN).collect();
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::NoValidRecipients,
            format!("none of the {} recipients can be sent to", rejected.len()),
        )
        .with_details(json!({ "rejected": shown })));
    }
    super::orgs::check_daily_quota(&state, &session.org_id, accepted.len() as u64).await?;
    let new = NewCampaign {
        session_id: session_id.clone(),
        name,
        template,
        content,
        scheduled_at,
        recipients: accepted,
        rejected: rejected.len() as u64,
    };
    let campaign = state.engine.create_campaign(new).await?;
    Ok((StatusCode::CREATED, Json(CampaignCreated { campaign, rejected_recipients: rejected })))
}

/// The campaign and its recipients, from a JSON body or a multipart upload with a CSV.
async fn read_request(
    state: &AppState,
    request: Request,
) -> Result<(CreateCampaign, Vec<Recipient>), ApiError> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let ApiJson(mut body) = ApiJson::<CreateCampaign>::from_request(request, state).await?;
        let recipients = std::mem::take(&mut body.recipients).into_iter().map(Recipient::from).collect();
        return Ok((body, recipients));
    }
    let mut form = Multipart::from_request(request, state)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedMultipart, e.body_text()))?;
    let (mut campaign, mut csv) = (None, None);
    let part_error = |e: axum::extract::multipart::MultipartError| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, ErrorCode::PayloadTooLarge, "request body is too large")
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedMultipart, e.body_text())
        }
    };
    while let Some(field) = form.next_field().await.map_err(part_error)? {
        match field.name() {
            Some("campaign") => {
                let bytes = field.bytes().await.map_err(part_error)?;
                let body: CreateCampaign = serde_json::from_slice(&bytes).map_err(|e| {
                    ApiError::invalid_field("campaign", format!("is not a valid campaign: {e}"))
                })?;
                campaign = Some(body);
            }
            Some("recipients") => csv = Some(field.bytes().await.map_err(part_error)?),
            other => {
                return Err(ApiError::invalid_field(
                    other.unwrap_or("(unnamed part)"),
                    "unknown part; send `campaign` (JSON) and `recipients` (CSV)",
                ))
            }
        }
    }
    let campaign = campaign.ok_or_else(|| ApiError::invalid_field("campaign", "the JSON part is missing"))?;
    let csv = csv.ok_or_else(|| ApiError::invalid_field("recipients", "the CSV part is missing"))?;
    if !campaign.recipients.is_empty() {
        return Err(ApiError::invalid_field(
            "campaign.recipients",
            "give recipients as JSON or as a CSV, not both",
        ));
    }
    Ok((campaign, csv_recipients(&csv)?))
}

/// Recipients from a CSV: a header row with a `to` (or `phone`) column; every other column
/// is a placeholder, and an empty cell leaves the template's default.
fn csv_recipients(bytes: &[u8]) -> Result<Vec<Recipient>, ApiError> {
    let invalid = |e: csv::Error| ApiError::invalid_field("recipients", format!("is not valid CSV: {e}"));
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()
        .map_err(invalid)?
        .iter()
        // Spreadsheets often start the file with a byte order mark.
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    let to_column = headers
        .iter()
        .position(|h| h.eq_ignore_ascii_case("to") || h.eq_ignore_ascii_case("phone"))
        .ok_or_else(|| {
            ApiError::invalid_field("recipients", "the CSV needs a header row with a `to` column")
        })?;
    let mut recipients = Vec::new();
    for record in reader.records() {
        let record = record.map_err(invalid)?;
        let params = headers
            .iter()
            .zip(record.iter())
            .enumerate()
            .filter(|(column, (_, value))| *column != to_column && !value.is_empty())
            .map(|(_, (name, value))| (name.clone(), value.to_owned()))
            .collect();
        recipients
            .push(Recipient { to: record.get(to_column).unwrap_or_default().to_owned(), params: Ok(params) });
    }
    Ok(recipients)
}

/// Each recipient's message, rendered; and the recipients left out, with why.
fn check_recipients(
    recipients: Vec<Recipient>,
    content: &MessageContent,
    defaults: &HashMap<String, String>,
) -> (Vec<(Jid, MessageContent)>, Vec<Rejected>) {
    let mut accepted = Vec::with_capacity(recipients.len());
    let mut rejected = Vec::new();
    let mut first_seen: HashMap<String, usize> = HashMap::with_capacity(recipients.len());
    for (index, recipient) in recipients.into_iter().enumerate() {
        let reject = |reason: &str, message: String| Rejected {
            index,
            to: recipient.to.clone(),
            reason: reason.to_owned(),
            message,
        };
        let to = match Jid::parse_recipient(&recipient.to) {
            Ok(to) => to,
            Err(e) => {
                rejected.push(reject("invalid_number", e.to_string()));
                continue;
            }
        };
        if let Some(first) = first_seen.get(&to.to_string()) {
            rejected.push(reject("duplicate", format!("the same number as recipient {first}")));
            continue;
        }
        let mut params = defaults.clone();
        match &recipient.params {
            Ok(own) => params.extend(own.iter().map(|(k, v)| (k.clone(), v.clone()))),
            Err(name) => {
                rejected.push(reject("invalid_param", format!("params.{name} {PARAM_TYPES}")));
                continue;
            }
        }
        let rendered = match content.render(&params) {
            Ok(rendered) => rendered,
            Err(missing) => {
                rejected.push(reject("missing_param", format!("no value for {{{{{missing}}}}}")));
                continue;
            }
        };
        if let Some((field, message)) = compose::content_error(&rendered) {
            rejected.push(reject("invalid_content", format!("{field}: {message}")));
            continue;
        }
        first_seen.insert(to.to_string(), index);
        accepted.push((to, rendered));
    }
    (accepted, rejected)
}

fn campaign_id(raw: &str) -> Result<CampaignId, ApiError> {
    CampaignId::parse(raw).map_err(|_| campaign_not_found(raw))
}

fn campaign_not_found(raw: &str) -> ApiError {
    ApiError::not_found(ErrorCode::CampaignNotFound, format!("no campaign with id {raw:?} in this session"))
}

#[utoipa::path(operation_id = "campaigns_list", get, path = "/sessions/{id}/campaigns", tag = "campaigns",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = CampaignList, description = "Newest first, with progress"),
        ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller<scope::ManageTemplates>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let session = visible_session(&state, &caller, &raw).await?.id;
    Ok(Json(json!({ "data": state.engine.store().list_campaigns(&session).await? })))
}

#[utoipa::path(operation_id = "campaigns_get", get, path = "/sessions/{id}/campaigns/{campaign_id}", tag = "campaigns",
    params(("id" = String, Path, description = "Session id"), ("campaign_id" = String, Path, description = "Campaign id (`cmp_…`)")),
    responses((status = 200, body = Campaign, description = "With progress: counts by status, failures by reason"),
        ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody)))]
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller<scope::ManageTemplates>,
    Path((raw, raw_campaign)): Path<(String, String)>,
) -> Result<Json<Campaign>, ApiError> {
    let (session, id) = ids(&state, &caller, &raw, &raw_campaign).await?;
    let found = state.engine.store().get_campaign(&session, &id).await?;
    found.map(Json).ok_or_else(|| campaign_not_found(&raw_campaign))
}

/// The session (one the caller may see) and campaign a path names.
async fn ids(
    state: &AppState,
    caller: &Principal,
    raw: &str,
    raw_campaign: &str,
) -> Result<(SessionId, CampaignId), ApiError> {
    Ok((visible_session(state, caller, raw).await?.id, campaign_id(raw_campaign)?))
}

async fn act(
    state: AppState,
    caller: &Principal,
    (raw, raw_campaign): (String, String),
    action: CampaignAction,
) -> Result<Json<Campaign>, ApiError> {
    let (session, id) = ids(&state, caller, &raw, &raw_campaign).await?;
    match state.engine.act_on_campaign(&session, &id, action).await {
        Ok(Ok(campaign)) => Ok(Json(campaign)),
        Ok(Err(current)) => Err(ApiError::conflict(
            ErrorCode::CampaignState,
            format!("the campaign is {}; it cannot {}", current.as_str(), action.as_str()),
        )
        .with_details(json!({ "status": current }))),
        Err(StoreError::NotFound(_)) => Err(campaign_not_found(&raw_campaign)),
        Err(e) => Err(e.into()),
    }
}

/// Holds the messages not sent yet; those being sent finish.
#[utoipa::path(operation_id = "campaigns_pause", post, path = "/sessions/{id}/campaigns/{campaign_id}/pause", tag = "campaigns",
    params(("id" = String, Path, description = "Session id"), ("campaign_id" = String, Path, description = "Campaign id (`cmp_…`)")),
    responses((status = 200, body = Campaign, description = "Paused"), ApiKeyRequired,
        (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "Not running", body = ErrorBody)))]
pub(super) async fn pause(
    State(state): State<AppState>,
    caller: Caller<scope::ManageTemplates>,
    Path(path): Path<(String, String)>,
) -> Result<Json<Campaign>, ApiError> {
    act(state, &caller, path, CampaignAction::Pause).await
}

/// Sends the held messages again, in order.
#[utoipa::path(operation_id = "campaigns_resume", post, path = "/sessions/{id}/campaigns/{campaign_id}/resume", tag = "campaigns",
    params(("id" = String, Path, description = "Session id"), ("campaign_id" = String, Path, description = "Campaign id (`cmp_…`)")),
    responses((status = 200, body = Campaign, description = "Running (or completed, when nothing was left)"), ApiKeyRequired,
        (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "Not paused", body = ErrorBody)))]
pub(super) async fn resume(
    State(state): State<AppState>,
    caller: Caller<scope::ManageTemplates>,
    Path(path): Path<(String, String)>,
) -> Result<Json<Campaign>, ApiError> {
    act(state, &caller, path, CampaignAction::Resume).await
}

/// Calls off the messages not sent yet: they become `canceled`.
#[utoipa::path(operation_id = "campaigns_cancel", post, path = "/sessions/{id}/campaigns/{campaign_id}/cancel", tag = "campaigns",
    params(("id" = String, Path, description = "Session id"), ("campaign_id" = String, Path, description = "Campaign id (`cmp_…`)")),
    responses((status = 200, body = Campaign, description = "Canceled"), ApiKeyRequired,
        (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "Already completed or canceled", body = ErrorBody)))]
pub(super) async fn cancel(
    State(state): State<AppState>,
    caller: Caller<scope::ManageTemplates>,
    Path(path): Path<(String, String)>,
) -> Result<Json<Campaign>, ApiError> {
    act(state, &caller, path, CampaignAction::Cancel).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RecipientsQuery {
    /// Only messages in this status (`queued`, `sent`, `failed`, …).
    #[param(value_type = Option<wagate_core::MessageStatus>)]
    status: Option<String>,
    /// The `next_after` of the previous page.
    #[param(value_type = Option<MessageId>)]
    after: Option<String>,
    /// 1 to 1000; 100 by default.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

#[utoipa::path(operation_id = "campaigns_recipients", get, path = "/sessions/{id}/campaigns/{campaign_id}/recipients", tag = "campaigns",
    params(("id" = String, Path, description = "Session id"), ("campaign_id" = String, Path, description = "Campaign id (`cmp_…`)"), RecipientsQuery),
    responses((status = 200, body = RecipientList, description = "Each recipient's message, in recipient order"),
        ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody),
        (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn recipients(
    State(state): State<AppState>,
    caller: Caller<scope::ManageTemplates>,
    Path((raw, raw_campaign)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<RecipientsQuery>,
) -> Result<Json<Value>, ApiError> {
    let (session, campaign_id) = ids(&state, &caller, &raw, &raw_campaign).await?;
    let status = query
        .status
        .map(|s| {
            MessageStatus::parse(&s)
                .ok_or_else(|| ApiError::invalid_field("status", "is not a message status"))
        })
        .transpose()?;
    let after = query
        .after
        .map(|a| MessageId::parse(&a).map_err(|e| ApiError::invalid_field("after", e)))
        .transpose()?;
    let limit = page_limit(query.limit, 100, 1000)?;
    if state.engine.store().get_campaign(&session, &campaign_id).await?.is_none() {
        return Err(campaign_not_found(&raw_campaign));
    }
    let messages = state
        .engine
        .store()
        .list_campaign_recipients(RecipientQuery { campaign_id, status, after, limit })
        .await?;
    let next_after =
        (messages.len() == limit as usize).then(|| messages.last().map(|m| m.id.clone())).flatten();
    Ok(Json(json!({ "data": messages, "next_after": next_after })))
}
