//! Composing a message: request bodies turned into [`MessageContent`], the same way for
//! every entry point (sends, templates, campaigns, trigger hooks, sim inbound), so that each
//! takes the same kinds under the same field names and its errors name the exact field.

use std::collections::HashMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use wagate_core::{
    ContactCard, Direction, EditContent, LocationContent, MediaContent, MediaId, MediaKind, MessageContent,
    MessageId, MessageKind, OrgId, PollContent, ReactionContent, RevokeContent, SessionId, Template,
    TextContent,
};

use super::{ApiError, ErrorCode};
use crate::engine::OwnedSession;
use crate::media::{LinkError, MediaError};
use crate::AppState;

/// Declares a request body that carries a message's content the way a send does: `type`
/// and the field it names (`{"type":"image","image":{…}}`), between the body's own fields.
/// A macro rather than `#[serde(flatten)]`, which cannot deny unknown fields inside the
/// flattened part and loses the path of an error there.
macro_rules! content_body {
    (
        kinds: $kinds:ty;
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $($(#[$head_attr:meta])* $head:ident : $head_ty:ty,)*
        }
        $(then {
            $($(#[$tail_attr:meta])* $tail:ident : $tail_ty:ty,)*
        })?
    ) => {
        $(#[$attr])*
        $vis struct $name {
            $($(#[$head_attr])* $head: $head_ty,)*
            /// The message type; the field of the same name holds the content.
            #[serde(rename = "type")]
            #[schema(value_type = $kinds)]
            kind: String,
            text: Option<::wagate_core::TextContent>,
            image: Option<$crate::api::compose::MediaBody>,
            video: Option<$crate::api::compose::MediaBody>,
            audio: Option<$crate::api::compose::MediaBody>,
            document: Option<$crate::api::compose::MediaBody>,
            sticker: Option<$crate::api::compose::MediaBody>,
            location: Option<::wagate_core::LocationContent>,
            /// Contact cards: `name` and `phones` (a vCard is built from them), or a raw `vcard`.
            contacts: Option<Vec<::wagate_core::ContactCard>>,
            /// `{"message_id","emoji"}`; an empty emoji takes the reaction back.
            reaction: Option<::wagate_core::ReactionContent>,
            poll: Option<::wagate_core::PollContent>,
            /// `{"message_id","body"}`: a new text for a text message this session sent.
            edit: Option<::wagate_core::EditContent>,
            /// `{"message_id"}`: delete a message this session sent, for everyone.
            revoke: Option<::wagate_core::RevokeContent>,
            $($($(#[$tail_attr])* $tail: $tail_ty,)*)?
        }

        impl $name {
            /// Takes the content fields out of the body, to compose the message from.
            fn take_content(&mut self) -> $crate::api::compose::ContentFields {
                $crate::api::compose::ContentFields {
                    kind: std::mem::take(&mut self.kind),
                    text: self.text.take(),
                    image: self.image.take(),
                    video: self.video.take(),
                    audio: self.audio.take(),
                    document: self.document.take(),
                    sticker: self.sticker.take(),
                    location: self.location.take(),
                    contacts: self.contacts.take(),
                    reaction: self.reaction.take(),
                    poll: self.poll.take(),
                    edit: self.edit.take(),
                    revoke: self.revoke.take(),
                }
            }
        }
    };
}
pub(super) use content_body;

/// The content fields of a body declared with [`content_body!`].
pub(super) struct ContentFields {
    pub(super) kind: String,
    pub(super) text: Option<TextContent>,
    pub(super) image: Option<MediaBody>,
    pub(super) video: Option<MediaBody>,
    pub(super) audio: Option<MediaBody>,
    pub(super) document: Option<MediaBody>,
    pub(super) sticker: Option<MediaBody>,
    pub(super) location: Option<LocationContent>,
    pub(super) contacts: Option<Vec<ContactCard>>,
    pub(super) reaction: Option<ReactionContent>,
    pub(super) poll: Option<PollContent>,
    pub(super) edit: Option<EditContent>,
    pub(super) revoke: Option<RevokeContent>,
}

/// The `type` of a send, as the document lists it: what [`Purpose::Send`] takes.
pub(super) struct SendKind;

/// The `type` of a template's or campaign's body, as the document lists it: what
/// [`Purpose::Template`] takes.
pub(super) struct BodyKind;

impl utoipa::PartialSchema for SendKind {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        Purpose::Send.schema("The `type` of a send: every kind of message, or `template`.")
    }
}

impl utoipa::ToSchema for SendKind {}

impl utoipa::PartialSchema for BodyKind {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        Purpose::Template.schema(
            "The `type` of a template's or campaign's body: every kind that says something of its own.",
        )
    }
}

impl utoipa::ToSchema for BodyKind {}

/// The file of a media message: one of `media_id`, `link` or `data`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MediaBody {
    /// A file uploaded with `POST /v1/media` (`id` is taken too, as in Meta's Cloud API).
    #[serde(alias = "id")]
    media_id: Option<String>,
    /// An https URL to download the file from.
    link: Option<String>,
    /// The file itself, base64 (a `data:…;base64,` prefix is allowed).
    data: Option<String>,
    /// Image, video and document only.
    caption: Option<String>,
    /// The name a document shows.
    filename: Option<String>,
    /// Audio only: send it as a push-to-talk voice note.
    #[serde(default)]
    voice: bool,
}

/// What an entry point composes, which decides the kinds it takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// A send: every kind, and templates by name.
    Send,
    /// The body of a template or a campaign: every kind that says something of its own.
    Template,
    /// A message a simulated contact sends in: every kind.
    Inbound,
}

impl Purpose {
    fn takes(self, kind: MessageKind) -> bool {
        self != Purpose::Template || !kind.acts_on_a_message()
    }

    /// The `type` values this entry point takes.
    fn kinds(self) -> Vec<&'static str> {
        let kinds = MessageKind::ALL.into_iter().filter(|k| self.takes(*k)).map(MessageKind::as_str);
        let template = (self == Purpose::Send).then_some("template");
        kinds.chain(template).collect()
    }

    /// The `type` values this entry point takes, for error messages.
    fn supported(self) -> String {
        self.kinds().join(", ")
    }

    /// Its `type` values as the OpenAPI document describes them.
    fn schema(self, description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(description))
            .enum_values(Some(self.kinds()))
            .into()
    }
}

/// The content of a send: `type` and the field it names, or a template filled in. Reactions,
/// edits and revokes that name a message by wagate's id must name one of `session`.
pub(super) async fn send_content(
    state: &AppState,
    session: &OwnedSession,
    fields: ContentFields,
    template: Option<TemplateRef>,
) -> Result<MessageContent, ApiError> {
    if fields.kind == "template" {
        return render_template(state, &session.org_id, template).await;
    }
    let content = compose(state, &session.org_id, fields, Purpose::Send, "").await?;
    let session = &session.id;
    match &content {
        MessageContent::Reaction { reaction } => {
            acted_on(state, session, "reaction.message_id", &reaction.message_id, false).await?
        }
        MessageContent::Edit { edit } => {
            acted_on(state, session, "edit.message_id", &edit.message_id, true).await?
        }
        MessageContent::Revoke { revoke } => {
            acted_on(state, session, "revoke.message_id", &revoke.message_id, true).await?
        }
        _ => {}
    }
    Ok(content)
}

/// The body of a template or campaign (`content`), placeholders and all.
pub(super) async fn template_content(
    state: &AppState,
    org: &OrgId,
    fields: ContentFields,
) -> Result<MessageContent, ApiError> {
    if fields.kind == "template" {
        return Err(ApiError::invalid_field("content.type", "a template cannot contain a template"));
    }
    compose(state, org, fields, Purpose::Template, "content.").await
}

/// The content of a message a simulated contact sends in. It names other messages (what it
/// reacts to, edits or revokes) by WhatsApp's id, as a phone would, so those pass as given.
pub(super) async fn inbound_content(
    state: &AppState,
    org: &OrgId,
    fields: ContentFields,
) -> Result<MessageContent, ApiError> {
    compose(state, org, fields, Purpose::Inbound, "").await
}

/// The content of a text message, for bodies that carry only a text (`field`).
pub(super) fn text_content(body: String, field: &str) -> Result<MessageContent, ApiError> {
    let content = MessageContent::Text { text: TextContent { body } };
    content.validate().map_err(|(_, message)| ApiError::invalid_field(field, message))?;
    Ok(content)
}

/// Builds the content from `type` and the field it names; `prefix` is where those fields sit
/// in the body (`content.` in a template), so that errors name the exact field.
async fn compose(
    state: &AppState,
    org: &OrgId,
    fields: ContentFields,
    purpose: Purpose,
    prefix: &str,
) -> Result<MessageContent, ApiError> {
    let at = |field: &str| format!("{prefix}{field}");
    let kind = match MessageKind::parse(&fields.kind) {
        Some(kind) if purpose.takes(kind) => kind,
        Some(kind) => {
            return Err(ApiError::invalid_field(
                &at("type"),
                format!(
                    "a template cannot be a {0}: a {0} acts on one earlier message (supported: {1})",
                    kind.as_str(),
                    purpose.supported()
                ),
            ))
        }
        None => {
            return Err(ApiError::invalid_field(
                &at("type"),
                format!(
                    "{:?} is not a supported message type (supported: {})",
                    fields.kind,
                    purpose.supported()
                ),
            ))
        }
    };
    let needed = Needed { field: at(kind.as_str()), kind };
    let name = &needed.field;
    let content = match kind {
        MessageKind::Text => MessageContent::Text { text: needed.given(fields.text)? },
        MessageKind::Image => {
            media_content(state, org, MediaKind::Image, needed.given(fields.image)?, name).await?
        }
        MessageKind::Video => {
            media_content(state, org, MediaKind::Video, needed.given(fields.video)?, name).await?
        }
        MessageKind::Audio => {
            media_content(state, org, MediaKind::Audio, needed.given(fields.audio)?, name).await?
        }
        MessageKind::Document => {
            media_content(state, org, MediaKind::Document, needed.given(fields.document)?, name).await?
        }
        MessageKind::Sticker => {
            media_content(state, org, MediaKind::Sticker, needed.given(fields.sticker)?, name).await?
        }
        MessageKind::Location => MessageContent::Location { location: needed.given(fields.location)? },
        MessageKind::Contacts => {
            let cards = needed.given(fields.contacts)?;
            MessageContent::Contacts { contacts: cards.into_iter().map(ContactCard::with_vcard).collect() }
        }
        MessageKind::Reaction => MessageContent::Reaction { reaction: needed.given(fields.reaction)? },
        MessageKind::Poll => MessageContent::Poll { poll: needed.given(fields.poll)? },
        MessageKind::Edit => MessageContent::Edit { edit: needed.given(fields.edit)? },
        MessageKind::Revoke => MessageContent::Revoke { revoke: needed.given(fields.revoke)? },
    };
    checked(content, prefix)
}

/// The field named after a message's type (`"image":{…}`), which the type needs.
struct Needed {
    field: String,
    kind: MessageKind,
}

impl Needed {
    fn given<T>(&self, value: Option<T>) -> Result<T, ApiError> {
        value.ok_or_else(|| {
            ApiError::invalid_field(&self.field, format!("is required for type {}", self.kind.as_str()))
        })
    }
}

/// Content checked against the rules serde cannot express; the error names the field under
/// `prefix`.
pub(super) fn checked(content: MessageContent, prefix: &str) -> Result<MessageContent, ApiError> {
    match content_error(&content) {
        Some((field, message)) => Err(ApiError::invalid_field(&format!("{prefix}{field}"), message)),
        None => Ok(content),
    }
}

/// What is wrong with content, by the field's path in a body (`image.caption`, `text.body`).
pub(super) fn content_error(content: &MessageContent) -> Option<(String, String)> {
    let (part, message) = content.validate().err()?;
    let field = match content.media_part() {
        Some((kind, _)) => format!("{}.{part}", kind.as_str()),
        None => part.to_owned(),
    };
    Some((field, message))
}

/// The content of a media message: the file resolved (stored first when it came as `data`)
/// and checked against the kind's type and size rules.
async fn media_content(
    state: &AppState,
    org: &OrgId,
    kind: MediaKind,
    body: MediaBody,
    name: &str,
) -> Result<MessageContent, ApiError> {
    let given = [body.media_id.is_some(), body.link.is_some(), body.data.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(ApiError::invalid_field(name, "give exactly one of media_id, link or data"));
    }
    let (field, media) = if let Some(raw) = &body.media_id {
        let field = format!("{name}.media_id");
        // Another organization's file is as unknown as one never uploaded.
        let found = match MediaId::parse(raw) {
            Ok(id) => state.media.get(&id).await?.filter(|media| &media.org_id == org),
            Err(_) => None,
        };
        (field.clone(), found.ok_or_else(|| ApiError::invalid_field(&field, "names no uploaded media"))?)
    } else if let Some(link) = &body.link {
        let field = format!("{name}.link");
        let saved = state.media.save_link(org, link, body.filename.clone(), state.engine.now()).await;
        let media = saved.map_err(|e| match e {
            LinkError::Media(MediaError::TooLarge(max)) => {
                ApiError::invalid_field(&field, format!("the file is larger than {max} bytes"))
            }
            LinkError::Media(other) => other.into(),
            other => ApiError::invalid_field(&field, other),
        })?;
        (field, media)
    } else {
        let field = format!("{name}.data");
        let encoded = body.data.as_deref().unwrap_or_default();
        let encoded = encoded.split_once(";base64,").map_or(encoded, |(_, data)| data);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| ApiError::invalid_field(&field, format!("is not valid base64: {e}")))?;
        let chunk: Result<axum::body::Bytes, std::convert::Infallible> = Ok(bytes.into());
        let saved = state.media.save(
            org,
            futures_util::stream::iter([chunk]),
            body.filename.clone(),
            state.engine.now(),
        );
        (field, saved.await?)
    };
    kind.check(&media, state.media.max_bytes(kind)).map_err(|rule| ApiError::invalid_field(&field, rule))?;
    Ok(MessageContent::media(kind, MediaContent::of(&media, body.caption, body.filename, body.voice)))
}

/// Checks a message named by wagate's id in a reaction, edit or revoke: it must be the
/// session's, and for an edit or revoke (`sent`) one the session sent. WhatsApp's ids are
/// passed on as given.
async fn acted_on(
    state: &AppState,
    session: &SessionId,
    field: &str,
    message_id: &str,
    sent: bool,
) -> Result<(), ApiError> {
    let Ok(id) = MessageId::parse(message_id) else { return Ok(()) };
    match state.engine.store().get_message(&id).await? {
        Some(message) if &message.session_id == session => {
            if sent && message.direction != Direction::Out {
                return Err(ApiError::invalid_field(
                    field,
                    "names a message this session received; only sent ones",
                ));
            }
            Ok(())
        }
        _ => Err(ApiError::invalid_field(field, "names no message of this session")),
    }
}

/// How far ahead a send may be scheduled.
const MAX_SCHEDULE_DAYS: i64 = 366;

/// When a send or campaign given `scheduled_at` is due.
pub(super) fn scheduled_time(
    raw: &str,
    now: wagate_core::Timestamp,
) -> Result<wagate_core::Timestamp, ApiError> {
    let at = chrono::DateTime::parse_from_rfc3339(raw)
        .map_err(|_| {
            ApiError::invalid_field("scheduled_at", "must be an RFC 3339 time, e.g. 2026-12-24T18:00:00Z")
        })?
        .to_utc();
    if at > now + chrono::Duration::days(MAX_SCHEDULE_DAYS) {
        return Err(ApiError::invalid_field(
            "scheduled_at",
            format!("must be within {MAX_SCHEDULE_DAYS} days"),
        ));
    }
    Ok(at)
}

/// `"template": {"name","params"}` of a send.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TemplateRef {
    pub(super) name: String,
    /// Values for the placeholders: strings, numbers or booleans.
    #[serde(default)]
    pub(super) params: HashMap<String, Value>,
}

/// What a placeholder value may be.
pub(super) const PARAM_TYPES: &str = "must be a string, number or boolean";

/// Placeholder values as the text they put in a message; the error names one that is not a
/// string, number or boolean.
pub(super) fn param_texts(params: HashMap<String, Value>) -> Result<HashMap<String, String>, String> {
    params
        .into_iter()
        .map(|(name, value)| match value {
            Value::String(s) => Ok((name, s)),
            Value::Number(n) => Ok((name, n.to_string())),
            Value::Bool(b) => Ok((name, b.to_string())),
            _ => Err(name),
        })
        .collect()
}

pub(super) fn template_not_found(name: &str) -> ApiError {
    ApiError::not_found(ErrorCode::TemplateNotFound, format!("no template named {name:?}"))
}

/// The template a reference names, and its params as texts.
pub(super) async fn find_template(
    state: &AppState,
    org: &OrgId,
    reference: TemplateRef,
) -> Result<(Template, HashMap<String, String>), ApiError> {
    let found = state.engine.store().get_template(org, &reference.name).await?;
    let found = found.ok_or_else(|| template_not_found(&reference.name))?;
    let params = param_texts(reference.params)
        .map_err(|name| ApiError::invalid_field(&format!("template.params.{name}"), PARAM_TYPES))?;
    Ok((found, params))
}

/// The content a template send sends: the template filled in with the params.
pub(super) async fn render_template(
    state: &AppState,
    org: &OrgId,
    reference: Option<TemplateRef>,
) -> Result<MessageContent, ApiError> {
    let reference =
        reference.ok_or_else(|| ApiError::invalid_field("template", "is required for type template"))?;
    let (found, params) = find_template(state, org, reference).await?;
    let content = found.content.render(&params).map_err(|missing| {
        ApiError::invalid_field(&format!("template.params.{missing}"), "is missing: the template uses it")
    })?;
    checked(content, "")
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;

    use super::{BodyKind, Purpose, SendKind};

    /// The `type` values the document lists, in its order.
    fn listed<T: PartialSchema>() -> String {
        let schema = serde_json::to_value(T::schema()).unwrap();
        let values: Vec<&str> =
            schema["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        values.join(", ")
    }

    #[test]
    fn the_document_lists_the_kinds_each_body_takes() {
        assert_eq!(listed::<SendKind>(), Purpose::Send.supported());
        assert_eq!(listed::<BodyKind>(), Purpose::Template.supported());
        assert_eq!(listed::<wagate_core::MessageKind>(), Purpose::Inbound.supported());
    }
}
