//! The OpenAPI 3.1 document, built from the handlers' annotations as the router is built
//! (so a route cannot exist without being described), and the shapes only the document needs.

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToResponse, ToSchema};
use wagate_core::{Delivery, DeliveryId, Event, EventId, Message, MessageId, Session, Webhook};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "wagate",
        description = "A self-hosted WhatsApp gateway: sessions, messages, the event log, webhooks and live streams.",
        license(name = "Apache-2.0")
    ),
    modifiers(&Security),
    security(("bearer" = []), ("api_key" = [])),
    components(schemas(ErrorBody, Event, wagate_core::EventFilter, wagate_core::EventFilters), responses(Unauthorized, Forbidden, RateLimited)),
    tags(
        (name = "sessions", description = "WhatsApp accounts: create, link by QR or pairing code, connect, disconnect"),
        (name = "messages", description = "Send (queued durably before the answer) and read history"),
        (name = "events", description = "The event log, and live streams of it"),
        (name = "media", description = "Files for media messages: upload once, send by media_id, download with Range"),
        (name = "campaigns", description = "One message to many recipients, with progress, pause, resume and cancel"),
        (name = "templates", description = "Message bodies of any kind a send takes (text, media, location, contacts, poll) with {{var}} placeholders in what the recipient reads, sent by name"),
        (name = "contacts", description = "Who a session can reach: number checks, contacts and chats"),
        (name = "hooks", description = "Secret URLs that send to fixed recipients without an API key"),
        (name = "webhooks", description = "Signed event delivery with durable retries and replay"),
        (name = "sim", description = "The simulated WhatsApp network (when connectors.sim.enabled)"),
        (name = "organizations", description = "The gateway's tenants and their quotas (the gateway's admin key only)"),
        (name = "audit", description = "Who changed what, and every refused authentication"),
        (name = "keys", description = "API keys of organizations, with scopes, session limits and expiry"),
        (name = "cluster", description = "Nodes sharing the database, and draining one"),
        (name = "operations", description = "Health, readiness, metrics")
    )
)]
pub(super) struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The gateway's admin key, an API key of an organization (`wgk_…`), or, when \
                         `auth.jwt.*` is configured, a JWT (HS256, RS256 or ES256) naming its \
                         organization and scopes in its claims.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))),
        );
    }
}

/// The finished document as JSON, with the event deliveries described under `webhooks`.
pub(super) fn document(openapi: utoipa::openapi::OpenApi) -> Value {
    let mut document = serde_json::to_value(openapi).unwrap_or_else(|_| json!({}));
    document["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    let header = |name: &str, description: &str| json!({ "name": name, "in": "header", "required": true, "description": description, "schema": { "type": "string" } });
    document["webhooks"] = json!({
        "event": {
            "post": {
                "summary": "An event, delivered to a registered webhook",
                "description": "Sent for every event the webhook's filters select, at least once (deduplicate by `webhook-id`), signed per the Standard Webhooks specification. Answer 2xx within the timeout; anything else is retried on the schedule.",
                "parameters": [
                    header("webhook-id", "The event id; the same on every attempt"),
                    header("webhook-timestamp", "Unix seconds when this attempt was signed"),
                    header("webhook-signature", "`v1,<base64 HMAC-SHA256(secret, \"{id}.{timestamp}.{body}\")>`, space-separated when two secrets sign"),
                ],
                "requestBody": {
                    "required": true,
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Event" } } }
                },
                "responses": { "2XX": { "description": "Delivered" } },
                "security": []
            }
        }
    });
    json_body_answers(&mut document);
    headers_without_null(&mut document);
    document
}

/// A header is there with a value or not there: an optional header parameter's schema has no
/// `null` (which utoipa adds to every `Option`), or clients would send the text `null`; and
/// it is written out in place.
fn headers_without_null(document: &mut Value) {
    let schemas = document["components"]["schemas"].clone();
    let Some(paths) = document["paths"].as_object_mut() else { return };
    let operations = paths.values_mut().filter_map(Value::as_object_mut).flat_map(|item| item.values_mut());
    let parameters = operations.filter_map(|op| op.get_mut("parameters")).filter_map(Value::as_array_mut);
    for parameter in parameters.flatten().filter(|p| p["in"] == "header") {
        let schema = &mut parameter["schema"];
        if let Some(types) = schema["type"].as_array_mut() {
            types.retain(|t| t != "null");
            if let [only] = types.as_slice() {
                schema["type"] = only.clone();
            }
        }
        let not_null = schema["oneOf"].as_array().and_then(|choices| {
            let rest: Vec<&Value> = choices.iter().filter(|c| c["type"] != "null").collect();
            (rest.len() == 1 && choices.len() == 2).then(|| rest[0].clone())
        });
        if let Some(not_null) = not_null {
            *schema = not_null;
        }
        // Written out rather than referred to, which some clients do not follow in a header.
        let named = schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/"));
        if let Some(named) = named.map(|name| schemas[name].clone()).filter(|s| !s.is_null()) {
            *schema = named;
        }
    }
}

/// Every route that takes a JSON body reads it with `ApiJson`, which answers 400 (malformed
/// JSON), 413 (too large) and 415 (not JSON), and every route with query parameters reads
/// them with `ApiQuery`, which answers 422 (a value that does not fit): the document says so
/// for each such operation, from that one fact, rather than in each route's list.
fn json_body_answers(document: &mut Value) {
    let error = |description: &str| {
        json!({ "description": description,
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } } })
    };
    let Some(paths) = document["paths"].as_object_mut() else { return };
    for operation in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|item| item.values_mut()) {
        let takes_json = operation["requestBody"]["content"]
            .as_object()
            .is_some_and(|content| content.keys().any(|media| media.ends_with("json")));
        let takes_query = operation["parameters"]
            .as_array()
            .is_some_and(|parameters| parameters.iter().any(|p| p["in"] == "query"));
        let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { continue };
        if takes_query {
            responses
                .entry("422")
                .or_insert_with(|| error("A query parameter that does not fit (`invalid_query`)"));
        }
        if !takes_json {
            continue;
        }
        for (status, description) in [
            ("400", "Malformed JSON"),
            ("413", "Request body too large"),
            ("415", "Body not sent as JSON (`Content-Type: application/json`)"),
        ] {
            responses.entry(status).or_insert_with(|| error(description));
        }
    }
}

/// Every error answer: `{"error":{"code","message","details"?}}`.
#[derive(Serialize, ToSchema)]
pub(super) struct ErrorBody {
    pub error: ErrorDetail,
}

/// The answer to a request without a valid API key (`unauthorized`): one response of the
/// document that every route taking a key refers to.
#[derive(ToResponse)]
#[response(description = "No or wrong API key")]
#[allow(dead_code, reason = "described in the document, never built")]
pub(super) struct Unauthorized(ErrorBody);

/// The answer to a key that may not do what it asks (`forbidden`: it lacks the route's scope)
/// or whose organization used up a quota it holds (`quota_exceeded`, `details.quota`).
#[derive(ToResponse)]
#[response(
    description = "The key lacks the scope the route needs (`forbidden`), or a quota of its organization is used up (`quota_exceeded`)"
)]
#[allow(dead_code, reason = "described in the document, never built")]
pub(super) struct Forbidden(ErrorBody);

/// The answer to a key (or its organization) past its rate limit (`rate_limited`), with
/// `Retry-After` and `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`.
#[derive(ToResponse)]
#[response(description = "Rate limited (`rate_limited`): see `Retry-After` and the `RateLimit-*` headers")]
#[allow(dead_code, reason = "described in the document, never built")]
pub(super) struct RateLimited(ErrorBody);

/// The answers of every route that takes an API key, besides its own; a route lists it in its
/// `responses(…)`.
#[derive(IntoResponses)]
#[allow(dead_code, reason = "described in the document, never built")]
pub(super) enum ApiKeyRequired {
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
    #[response(status = 403)]
    Forbidden(#[ref_response] Forbidden),
    #[response(status = 429)]
    RateLimited(#[ref_response] RateLimited),
}

#[derive(Serialize, ToSchema)]
pub(super) struct ErrorDetail {
    /// A stable, machine-readable code such as `session_not_found` or `invalid_field`.
    pub code: super::ErrorCode,
    pub message: String,
    /// More about the error; `field` names the offending field of a 422.
    pub details: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct SessionList {
    pub data: Vec<Session>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct MessageList {
    pub data: Vec<Message>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_before: Option<MessageId>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct EventList {
    pub data: Vec<Event>,
    /// Pass as `after` to continue.
    pub next_after: Option<EventId>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct CampaignList {
    pub data: Vec<wagate_core::Campaign>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct RecipientList {
    /// Each recipient's message.
    pub data: Vec<Message>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<MessageId>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct ContactList {
    pub data: Vec<wagate_core::Contact>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct ChatList {
    pub data: Vec<wagate_core::Chat>,
}

/// Whether a number has WhatsApp.
#[derive(Serialize, ToSchema)]
pub(super) struct NumberCheckShown {
    pub phone: String,
    pub on_whatsapp: bool,
    /// The JID to message it at.
    pub jid: Option<String>,
    /// Its LID, when WhatsApp told it.
    pub lid: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct NumberChecks {
    pub data: Vec<NumberCheckShown>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct HookList {
    pub data: Vec<wagate_core::Hook>,
}

/// A hook as created: with the secret URL that sends through it.
#[derive(Serialize, ToSchema)]
pub(super) struct HookCreated {
    #[serde(flatten)]
    pub hook: wagate_core::Hook,
    /// `/hooks/<token>`: POST to it to send. Shown only now.
    pub path: String,
    /// The same, with the host the request came to.
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub(super) struct TemplateList {
    pub data: Vec<wagate_core::Template>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct WebhookList {
    pub data: Vec<Webhook>,
}

/// A webhook as created or rotated: with its signing secret.
#[derive(Serialize, ToSchema)]
pub(super) struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: Webhook,
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
    /// After a rotation: until when the previous secret also signs.
    pub previous_secret_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct DeliveryList {
    pub data: Vec<Delivery>,
    pub next_before: Option<DeliveryId>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Replayed {
    pub queued: u64,
    pub first_event_id: Option<EventId>,
    pub last_event_id: Option<EventId>,
}

/// The code a linking session shows: a QR code (`code` + `image`) or a pairing code.
#[derive(Serialize, ToSchema)]
pub(super) struct QrCode {
    /// What the phone scans.
    pub code: Option<String>,
    /// The QR code as a PNG data URL.
    pub image: Option<String>,
    /// What the user types on the phone, when linking by pairing code.
    pub pairing_code: Option<String>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Ready {
    #[schema(example = "ready")]
    pub status: String,
    pub checks: Value,
}

#[derive(Serialize, ToSchema)]
pub(super) struct SimLinked {
    pub session_id: String,
}

#[derive(Serialize, ToSchema)]
pub(super) struct SimInjected {
    pub wa_id: String,
    /// `stored`, or `pending` while the session is offline.
    pub status: String,
}
