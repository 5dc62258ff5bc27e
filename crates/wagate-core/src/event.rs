//! The event log's entries, as every consumer (event API, webhooks, streams) sees them: an
//! envelope `{"id","type","session_id","created_at","data"}` whose `data` is typed by `type`.
//! This is the public webhook contract: a field renamed here is a breaking change.

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    Discriminator, KnownFormat, ObjectBuilder, OneOfBuilder, Ref, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::RefOr;

use crate::{
    CampaignCounts, CampaignId, CampaignStatus, EventId, Message, MessageId, MessageStatus, OrgId, SessionId,
    SessionStatus, StatusEntry, Timestamp, WebhookId,
};

/// The kinds of events wagate appends to its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    #[serde(rename = "session.status")]
    SessionStatus,
    #[serde(rename = "session.qr")]
    SessionQr,
    #[serde(rename = "message.received")]
    MessageReceived,
    #[serde(rename = "message.status")]
    MessageStatus,
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled,
    #[serde(rename = "campaign.status")]
    CampaignStatus,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::SessionStatus,
        EventType::SessionQr,
        EventType::MessageReceived,
        EventType::MessageStatus,
        EventType::WebhookDisabled,
        EventType::CampaignStatus,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SessionStatus => "session.status",
            EventType::SessionQr => "session.qr",
            EventType::MessageReceived => "message.received",
            EventType::MessageStatus => "message.status",
            EventType::WebhookDisabled => "webhook.disabled",
            EventType::CampaignStatus => "campaign.status",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether a filter (an exact type or `prefix.*`) selects this type.
    pub fn matches(self, filter: &str) -> bool {
        match filter.strip_suffix(".*") {
            Some(prefix) => self.as_str().strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.')),
            None => filter == "*" || filter == self.as_str(),
        }
    }
}

/// An event filter, as webhooks and streams take one: an exact type, `prefix.*` or `*`
/// ([`EventType::matches`]). Its schema lists what selects at least one type.
pub struct EventFilter;

impl EventFilter {
    /// Every filter that selects something, as regex alternatives.
    fn alternatives() -> String {
        let mut filters = vec![r"\*".to_owned()];
        for kind in EventType::ALL {
            let name = kind.as_str();
            for (dot, _) in name.match_indices('.') {
                filters.push(format!(r"{}\.\*", name[..dot].replace('.', r"\.")));
            }
            filters.push(name.replace('.', r"\."));
        }
        filters.sort();
        filters.dedup();
        filters.join("|")
    }
}

impl utoipa::PartialSchema for EventFilter {
    fn schema() -> RefOr<Schema> {
        // Filters are trimmed before they are matched.
        let pattern = format!(r"^[ \t]*(?:{})[ \t]*$", Self::alternatives());
        ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).into()
    }
}

impl utoipa::ToSchema for EventFilter {}

/// Event filters separated by commas, as a query parameter (`types=message.*,session.status`);
/// empty items are skipped.
pub struct EventFilters;

impl utoipa::PartialSchema for EventFilters {
    fn schema() -> RefOr<Schema> {
        let one = format!(r"[ \t]*(?:{})?[ \t]*", EventFilter::alternatives());
        let pattern = format!("^{one}(?:,{one})*$");
        ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).into()
    }
}

impl utoipa::ToSchema for EventFilters {}

/// What an event says: its `type` and the `data` of that type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum EventData {
    /// A session's connection state changed.
    #[serde(rename = "session.status")]
    SessionStatus(SessionStatusData),
    /// A linking session shows a new QR code.
    #[serde(rename = "session.qr")]
    SessionQr(SessionQrData),
    /// A message arrived: the stored message, as `GET /v1/messages/{id}` shows it.
    #[serde(rename = "message.received")]
    MessageReceived(Box<Message>),
    /// An outbound message's status changed.
    #[serde(rename = "message.status")]
    MessageStatus(MessageStatusData),
    /// A webhook kept failing and was disabled.
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled(WebhookDisabledData),
    /// A campaign was created or changed state.
    #[serde(rename = "campaign.status")]
    CampaignStatus(CampaignStatusData),
}

/// Why stored event data could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("{kind} event data: {source}")]
pub struct EventDataError {
    kind: &'static str,
    source: serde_json::Error,
}

impl EventData {
    /// Its `type`.
    pub fn kind(&self) -> EventType {
        match self {
            EventData::SessionStatus(_) => EventType::SessionStatus,
            EventData::SessionQr(_) => EventType::SessionQr,
            EventData::MessageReceived(_) => EventType::MessageReceived,
            EventData::MessageStatus(_) => EventType::MessageStatus,
            EventData::WebhookDisabled(_) => EventType::WebhookDisabled,
            EventData::CampaignStatus(_) => EventType::CampaignStatus,
        }
    }

    /// Its `data` alone as JSON, as the log stores it beside the type.
    pub fn to_json(&self) -> String {
        let data = match self {
            EventData::SessionStatus(data) => serde_json::to_string(data),
            EventData::SessionQr(data) => serde_json::to_string(data),
            EventData::MessageReceived(data) => serde_json::to_string(data),
            EventData::MessageStatus(data) => serde_json::to_string(data),
            EventData::WebhookDisabled(data) => serde_json::to_string(data),
            EventData::CampaignStatus(data) => serde_json::to_string(data),
        };
        // These types serialize to JSON without fail: their maps have string keys.
        data.unwrap_or_else(|_| "{}".into())
    }

    /// The data of an event of type `kind`, from the JSON `to_json` made.
    pub fn from_json(kind: EventType, data: &str) -> Result<Self, EventDataError> {
        let parsed = match kind {
            EventType::SessionStatus => serde_json::from_str(data).map(EventData::SessionStatus),
            EventType::SessionQr => serde_json::from_str(data).map(EventData::SessionQr),
            EventType::MessageReceived => serde_json::from_str(data).map(EventData::MessageReceived),
            EventType::MessageStatus => serde_json::from_str(data).map(EventData::MessageStatus),
            EventType::WebhookDisabled => serde_json::from_str(data).map(EventData::WebhookDisabled),
            EventType::CampaignStatus => serde_json::from_str(data).map(EventData::CampaignStatus),
        };
        parsed.map_err(|source| EventDataError { kind: kind.as_str(), source })
    }

    /// The message this event is about, where it is about one: a message's events are its
    /// status history.
    pub fn message_id(&self) -> Option<&MessageId> {
        match self {
            EventData::MessageReceived(message) => Some(&message.id),
            EventData::MessageStatus(data) => Some(&data.message_id),
            _ => None,
        }
    }

    /// The step of a message's status history this event records, if it records one.
    pub fn status_entry(&self, at: Timestamp) -> Option<StatusEntry> {
        match self {
            EventData::MessageReceived(_) => {
                Some(StatusEntry { status: MessageStatus::Received, reason: None, at })
            }
            EventData::MessageStatus(data) => {
                Some(StatusEntry { status: data.status, reason: data.reason.clone(), at })
            }
            _ => None,
        }
    }
}

/// `session.status`: the session's state after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionStatusData {
    pub status: SessionStatus,
    /// Why it is in this state (a disconnect or failure reason), if anything is known.
    pub reason: Option<String>,
    /// The linked account's phone number.
    pub phone: Option<String>,
    pub jid: Option<String>,
    /// With status `pairing_code`: the code to type on the phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairing_code: Option<String>,
    /// With status `pairing_code`: when the code stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The node that runs the session (absent when the session was just created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
}

/// `session.qr`: the QR code to scan now, and when it rotates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionQrData {
    pub code: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// `message.status`: an outbound message's new status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessageStatusData {
    pub message_id: MessageId,
    pub status: MessageStatus,
    /// Why it failed or was canceled.
    pub reason: Option<String>,
    pub chat: String,
    pub to: String,
    /// WhatsApp's own id for the message, once it has one.
    pub wa_id: Option<String>,
    /// With status `scheduled`: when it is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The campaign that sent it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<CampaignId>,
}

impl MessageStatusData {
    /// The data of the event for a message's current status.
    pub fn of(message: &Message) -> Self {
        Self {
            message_id: message.id.clone(),
            status: message.status,
            reason: message.status_reason.clone(),
            chat: message.chat.clone(),
            to: message.to.clone(),
            wa_id: message.wa_id.clone(),
            scheduled_at: message.scheduled_at.filter(|_| message.status == MessageStatus::Scheduled),
            campaign_id: message.campaign_id.clone(),
        }
    }
}

/// `webhook.disabled`: which webhook, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookDisabledData {
    pub webhook_id: WebhookId,
    pub url: String,
    /// The session the webhook is limited to, if it is.
    pub session_id: Option<SessionId>,
    pub reason: String,
    /// Since when every attempt has failed.
    pub failing_since: chrono::DateTime<chrono::Utc>,
}

/// `campaign.status`: the campaign's state and progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CampaignStatusData {
    pub campaign_id: CampaignId,
    pub name: String,
    pub status: CampaignStatus,
    /// Messages created: one per accepted recipient.
    pub total: u64,
    pub counts: CampaignCounts,
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: EventId,
    /// The session the event is about; none for events about wagate itself (webhooks).
    pub session_id: Option<SessionId>,
    /// The organization it belongs to (its session's or its webhook's), which alone may see it.
    /// Not part of the published envelope: a reader only ever sees its own organization's events.
    pub org_id: Option<OrgId>,
    pub created_at: Timestamp,
    pub data: EventData,
}

impl Event {
    /// Its `type`.
    pub fn kind(&self) -> EventType {
        self.data.kind()
    }
}

/// The envelope's fields in their published order: `id`, `type`, `session_id`, `created_at`, `data`.
#[derive(Serialize)]
struct EventOut<'a> {
    id: EventId,
    #[serde(rename = "type")]
    kind: EventType,
    session_id: &'a Option<SessionId>,
    created_at: &'a Timestamp,
    data: DataOut<'a>,
}

/// The content of `EventData` alone (serde's adjacent tagging would add the tag).
struct DataOut<'a>(&'a EventData);

impl Serialize for DataOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            EventData::SessionStatus(data) => data.serialize(s),
            EventData::SessionQr(data) => data.serialize(s),
            EventData::MessageReceived(data) => data.serialize(s),
            EventData::MessageStatus(data) => data.serialize(s),
            EventData::WebhookDisabled(data) => data.serialize(s),
            EventData::CampaignStatus(data) => data.serialize(s),
        }
    }
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        EventOut {
            id: self.id,
            kind: self.kind(),
            session_id: &self.session_id,
            created_at: &self.created_at,
            data: DataOut(&self.data),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct EventIn {
            id: EventId,
            session_id: Option<SessionId>,
            created_at: Timestamp,
            #[serde(flatten)]
            data: EventData,
        }
        let event = EventIn::deserialize(d)?;
        Ok(Event {
            id: event.id,
            session_id: event.session_id,
            org_id: None,
            created_at: event.created_at,
            data: event.data,
        })
    }
}

impl utoipa::PartialSchema for Event {
    /// One schema per type (`SessionStatusEvent`, …), told apart by `type`, so that clients
    /// generated from the document get a typed `data` for each.
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new();
        let mut discriminator = Discriminator::new("type");
        for (kind, envelope, _) in VARIANTS {
            one_of = one_of.item(Ref::from_schema_name(envelope));
            discriminator.mapping.insert(kind.as_str().into(), format!("#/components/schemas/{envelope}"));
        }
        one_of
            .description(Some("An entry of the event log; `data` depends on `type`."))
            .discriminator(Some(discriminator))
            .into()
    }
}

impl utoipa::ToSchema for Event {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for (kind, envelope, data) in VARIANTS {
            schemas.push((envelope.into(), envelope_schema(kind, data.name).into()));
            schemas.push((data.name.into(), (data.schema)()));
            (data.nested)(schemas);
        }
    }
}

/// The schema of one type's `data`, and of the types it refers to.
struct DataSchema {
    name: &'static str,
    schema: fn() -> RefOr<Schema>,
    nested: fn(&mut Vec<(String, RefOr<Schema>)>),
}

impl DataSchema {
    const fn of<T: utoipa::ToSchema>(name: &'static str) -> Self {
        Self { name, schema: T::schema, nested: T::schemas }
    }
}

/// Each type, the name of its envelope's schema, and its data's schema.
const VARIANTS: [(EventType, &str, DataSchema); 6] = [
    (
        EventType::SessionStatus,
        "SessionStatusEvent",
        DataSchema::of::<SessionStatusData>("SessionStatusData"),
    ),
    (EventType::SessionQr, "SessionQrEvent", DataSchema::of::<SessionQrData>("SessionQrData")),
    (EventType::MessageReceived, "MessageReceivedEvent", DataSchema::of::<Message>("Message")),
    (
        EventType::MessageStatus,
        "MessageStatusEvent",
        DataSchema::of::<MessageStatusData>("MessageStatusData"),
    ),
    (
        EventType::WebhookDisabled,
        "WebhookDisabledEvent",
        DataSchema::of::<WebhookDisabledData>("WebhookDisabledData"),
    ),
    (
        EventType::CampaignStatus,
        "CampaignStatusEvent",
        DataSchema::of::<CampaignStatusData>("CampaignStatusData"),
    ),
];

/// `{"id","type","session_id","created_at","data"}` for one type.
fn envelope_schema(kind: EventType, data: &str) -> Schema {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    ObjectBuilder::new()
        .property("id", string().description(Some("`evt_` + the event's position in the log")))
        .required("id")
        .property("type", string().enum_values(Some([kind.as_str()])))
        .required("type")
        .property(
            "session_id",
            ObjectBuilder::new()
                .schema_type([Type::String, Type::Null].into_iter().collect::<SchemaType>())
                .description(Some("The session the event is about; null for events about wagate itself")),
        )
        .required("session_id")
        .property("created_at", string().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))))
        .required("created_at")
        .property("data", Ref::from_schema_name(data))
        .required("data")
        .into()
}

#[cfg(test)]
mod tests;
