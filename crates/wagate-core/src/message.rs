//! Message content as callers send it and the status machine every message follows.

use serde::{Deserialize, Serialize};

/// Which way a message went.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Direction {
    /// Sent by wagate on behalf of the session.
    Out,
    /// Received by the session.
    In,
}

impl Direction {
    /// Its name, as the API and the database spell it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// The body of a text message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TextContent {
    pub body: String,
}

/// What a message says; the JSON shape follows Meta's Cloud API (`{"type":"text","text":{…}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageContent {
    Text {
        text: TextContent,
    },
    Image {
        image: crate::MediaContent,
    },
    Video {
        video: crate::MediaContent,
    },
    Audio {
        audio: crate::MediaContent,
    },
    Document {
        document: crate::MediaContent,
    },
    Sticker {
        sticker: crate::MediaContent,
    },
    Location {
        location: LocationContent,
    },
    Contacts {
        contacts: Vec<ContactCard>,
    },
    Reaction {
        reaction: ReactionContent,
    },
    Poll {
        poll: PollContent,
    },
    /// A new text for a text message this session sent.
    Edit {
        edit: EditContent,
    },
    /// Deletes a message this session sent, for everyone.
    Revoke {
        revoke: RevokeContent,
    },
}

// One per `MessageContent` variant.
/// The kinds of message: the values of a message's `type`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum MessageKind {
    Text,
    Image,
    Video,
    Audio,
    Document,
    Sticker,
    Location,
    Contacts,
    Reaction,
    Poll,
    Edit,
    Revoke,
}

impl MessageKind {
    /// Every kind, in the order of [`MessageContent`]'s variants (a test holds them to serde's
    /// list), so that lists of supported types shown to users cannot fall behind.
    pub const ALL: [MessageKind; 12] = [
        MessageKind::Text,
        MessageKind::Image,
        MessageKind::Video,
        MessageKind::Audio,
        MessageKind::Document,
        MessageKind::Sticker,
        MessageKind::Location,
        MessageKind::Contacts,
        MessageKind::Reaction,
        MessageKind::Poll,
        MessageKind::Edit,
        MessageKind::Revoke,
    ];

    /// Its name, as the API and the database spell it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// Whether a message of this kind acts on one earlier message (named by its id) rather
    /// than saying something of its own; such a message cannot be reused as a template.
    pub fn acts_on_a_message(self) -> bool {
        matches!(self, MessageKind::Reaction | MessageKind::Edit | MessageKind::Revoke)
    }
}

// How `Message` shows its content in the OpenAPI document. The content is flattened into the
// message, and a flattened `oneOf` (an `allOf` of a non-object) is a shape client generators
// refuse; described as one object with every content property optional, it is one they
// accept. The JSON is the same.
/// A message's content: its `type`, and the property of that name (`text`, `image`, …) that
/// holds it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "described in the document, never built")]
pub struct MessageContentFields {
    #[schema(rename = "type")]
    kind: MessageKind,
    text: Option<TextContent>,
    image: Option<crate::MediaContent>,
    video: Option<crate::MediaContent>,
    audio: Option<crate::MediaContent>,
    document: Option<crate::MediaContent>,
    sticker: Option<crate::MediaContent>,
    location: Option<LocationContent>,
    contacts: Option<Vec<ContactCard>>,
    reaction: Option<ReactionContent>,
    poll: Option<PollContent>,
    edit: Option<EditContent>,
    revoke: Option<RevokeContent>,
}

/// A place on the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationContent {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// A contact card: its name and numbers, and the vCard WhatsApp carries (built from them
/// when not given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactCard {
    /// The name shown (taken from the vCard's `FN` when only a vCard is given).
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default)]
    pub vcard: String,
}

impl ContactCard {
    /// The card with its vCard 3.0 built from the fields, unless it came with one.
    pub fn with_vcard(mut self) -> Self {
        if self.name.trim().is_empty() {
            let full_name = self.vcard.lines().find_map(|line| line.trim().strip_prefix("FN:"));
            self.name = full_name.unwrap_or_default().trim().to_owned();
        }
        if self.vcard.trim().is_empty() {
            let escape = |s: &str| {
                s.replace('\\', "\\\\").replace(',', "\\,").replace(';', "\\;").replace('\n', "\\n")
            };
            let mut card = format!("BEGIN:VCARD\nVERSION:3.0\nFN:{}\n", escape(&self.name));
            if let Some(org) = &self.organization {
                card.push_str(&format!("ORG:{}\n", escape(org)));
            }
            for phone in &self.phones {
                let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
                card.push_str(&format!("TEL;type=CELL;waid={digits}:{}\n", escape(phone)));
            }
            for email in &self.emails {
                card.push_str(&format!("EMAIL:{}\n", escape(email)));
            }
            card.push_str("END:VCARD");
            self.vcard = card;
        }
        self
    }
}

/// A new text for a message sent before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditContent {
    /// The message edited: a wagate id (`msg_…`) or WhatsApp's.
    pub message_id: String,
    pub body: String,
}

/// A message taken back, for everyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeContent {
    /// The message deleted: a wagate id (`msg_…`) or WhatsApp's.
    pub message_id: String,
}

/// A reaction to a message; an empty emoji takes the reaction back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReactionContent {
    /// The message reacted to: a wagate id (`msg_…`) or WhatsApp's.
    pub message_id: String,
    #[serde(default)]
    pub emoji: String,
}

/// A poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PollContent {
    pub question: String,
    pub options: Vec<String>,
    /// How many options a voter may pick (1 by default).
    #[serde(default = "one")]
    #[schema(value_type = u64, minimum = 0, maximum = 4294967295_u64)]
    pub selectable_count: u32,
}

fn one() -> u32 {
    1
}

/// WhatsApp refuses text bodies longer than this many characters.
pub const MAX_TEXT_CHARS: usize = 4096;
/// WhatsApp refuses captions longer than this many characters.
pub const MAX_CAPTION_CHARS: usize = 1024;
/// Contact cards one message carries at most.
pub const MAX_CONTACTS: usize = 20;
/// Options a poll has at most.
pub const MAX_POLL_OPTIONS: usize = 12;

impl MessageContent {
    /// The message a reaction, edit or revoke acts on (a wagate id or WhatsApp's).
    pub fn target_mut(&mut self) -> Option<&mut String> {
        match self {
            MessageContent::Reaction { reaction } => Some(&mut reaction.message_id),
            MessageContent::Edit { edit } => Some(&mut edit.message_id),
            MessageContent::Revoke { revoke } => Some(&mut revoke.message_id),
            _ => None,
        }
    }

    /// The `type` field of this content.
    pub fn kind(&self) -> &'static str {
        self.message_kind().as_str()
    }

    /// What kind of message this is.
    pub fn message_kind(&self) -> MessageKind {
        match self {
            MessageContent::Text { .. } => MessageKind::Text,
            MessageContent::Image { .. } => MessageKind::Image,
            MessageContent::Video { .. } => MessageKind::Video,
            MessageContent::Audio { .. } => MessageKind::Audio,
            MessageContent::Document { .. } => MessageKind::Document,
            MessageContent::Sticker { .. } => MessageKind::Sticker,
            MessageContent::Location { .. } => MessageKind::Location,
            MessageContent::Contacts { .. } => MessageKind::Contacts,
            MessageContent::Reaction { .. } => MessageKind::Reaction,
            MessageContent::Poll { .. } => MessageKind::Poll,
            MessageContent::Edit { .. } => MessageKind::Edit,
            MessageContent::Revoke { .. } => MessageKind::Revoke,
        }
    }

    /// The texts a person would type for this content (a text's body, a caption): the
    /// typing indicator lasts in proportion to them.
    pub fn typed_texts(&self) -> Vec<&str> {
        match self {
            MessageContent::Text { text } => vec![text.body.as_str()],
            media => media.media_part().and_then(|(_, m)| m.caption.as_deref()).into_iter().collect(),
        }
    }

    /// A media message of `kind` carrying `media`.
    pub fn media(kind: crate::MediaKind, media: crate::MediaContent) -> MessageContent {
        match kind {
            crate::MediaKind::Image => MessageContent::Image { image: media },
            crate::MediaKind::Video => MessageContent::Video { video: media },
            crate::MediaKind::Audio => MessageContent::Audio { audio: media },
            crate::MediaKind::Document => MessageContent::Document { document: media },
            crate::MediaKind::Sticker => MessageContent::Sticker { sticker: media },
        }
    }

    /// The media of a media message, with its kind.
    pub fn media_part(&self) -> Option<(crate::MediaKind, &crate::MediaContent)> {
        match self {
            MessageContent::Text { .. }
            | MessageContent::Location { .. }
            | MessageContent::Contacts { .. }
            | MessageContent::Reaction { .. }
            | MessageContent::Poll { .. }
            | MessageContent::Edit { .. }
            | MessageContent::Revoke { .. } => None,
            MessageContent::Image { image } => Some((crate::MediaKind::Image, image)),
            MessageContent::Video { video } => Some((crate::MediaKind::Video, video)),
            MessageContent::Audio { audio } => Some((crate::MediaKind::Audio, audio)),
            MessageContent::Document { document } => Some((crate::MediaKind::Document, document)),
            MessageContent::Sticker { sticker } => Some((crate::MediaKind::Sticker, sticker)),
        }
    }

    /// The media of a media message, to change.
    pub fn media_part_mut(&mut self) -> Option<&mut crate::MediaContent> {
        match self {
            MessageContent::Text { .. }
            | MessageContent::Location { .. }
            | MessageContent::Contacts { .. }
            | MessageContent::Reaction { .. }
            | MessageContent::Poll { .. }
            | MessageContent::Edit { .. }
            | MessageContent::Revoke { .. } => None,
            MessageContent::Image { image: media }
            | MessageContent::Video { video: media }
            | MessageContent::Audio { audio: media }
            | MessageContent::Document { document: media }
            | MessageContent::Sticker { sticker: media } => Some(media),
        }
    }

    /// Checks the rules serde cannot express; the error names the offending field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match self {
            MessageContent::Text { text } => {
                if text.body.trim().is_empty() {
                    return Err(("text.body", "must not be empty".into()));
                }
                if text.body.chars().count() > MAX_TEXT_CHARS {
                    return Err(("text.body", format!("must be at most {MAX_TEXT_CHARS} characters")));
                }
                Ok(())
            }
            MessageContent::Location { location } => {
                if !(-90.0..=90.0).contains(&location.latitude) {
                    return Err(("location.latitude", "must be between -90 and 90".into()));
                }
                if !(-180.0..=180.0).contains(&location.longitude) {
                    return Err(("location.longitude", "must be between -180 and 180".into()));
                }
                Ok(())
            }
            MessageContent::Contacts { contacts } => {
                if contacts.is_empty() || contacts.len() > MAX_CONTACTS {
                    return Err(("contacts", format!("must hold 1 to {MAX_CONTACTS} contacts")));
                }
                for contact in contacts {
                    if contact.name.trim().is_empty() {
                        return Err(("contacts.name", "must not be empty".into()));
                    }
                    if contact.phones.is_empty() && !contact.vcard.contains("TEL") {
                        return Err(("contacts.phones", "a contact needs a phone number".into()));
                    }
                }
                Ok(())
            }
            MessageContent::Edit { edit } => {
                if edit.message_id.trim().is_empty() {
                    return Err(("edit.message_id", "must not be empty".into()));
                }
                if edit.body.trim().is_empty() || edit.body.chars().count() > MAX_TEXT_CHARS {
                    return Err(("edit.body", format!("must be 1 to {MAX_TEXT_CHARS} characters")));
                }
                Ok(())
            }
            MessageContent::Revoke { revoke } => {
                if revoke.message_id.trim().is_empty() {
                    return Err(("revoke.message_id", "must not be empty".into()));
                }
                Ok(())
            }
            MessageContent::Reaction { reaction } => {
                if reaction.message_id.trim().is_empty() {
                    return Err(("reaction.message_id", "must not be empty".into()));
                }
                if reaction.emoji.chars().count() > 10 {
                    return Err((
                        "reaction.emoji",
                        "must be one emoji, or empty to remove the reaction".into(),
                    ));
                }
                Ok(())
            }
            MessageContent::Poll { poll } => {
                if poll.question.trim().is_empty() || poll.question.chars().count() > 255 {
                    return Err(("poll.question", "must be 1 to 255 characters".into()));
                }
                if !(2..=MAX_POLL_OPTIONS).contains(&poll.options.len()) {
                    return Err(("poll.options", format!("must hold 2 to {MAX_POLL_OPTIONS} options")));
                }
                let mut seen = std::collections::HashSet::new();
                if poll
                    .options
                    .iter()
                    .any(|o| o.trim().is_empty() || o.chars().count() > 100 || !seen.insert(o))
                {
                    return Err(("poll.options", "must be distinct, 1 to 100 characters each".into()));
                }
                if poll.selectable_count == 0 || poll.selectable_count as usize > poll.options.len() {
                    return Err((
                        "poll.selectable_count",
                        "must be between 1 and the number of options".into(),
                    ));
                }
                Ok(())
            }
            media => {
                let Some((kind, part)) = media.media_part() else { return Ok(()) };
                if part.caption.as_ref().is_some_and(|c| c.chars().count() > MAX_CAPTION_CHARS) {
                    return Err(("caption", format!("must be at most {MAX_CAPTION_CHARS} characters")));
                }
                if part.caption.is_some() && !kind.has_caption() {
                    return Err(("caption", format!("a {} has no caption", kind.as_str())));
                }
                if part.voice && kind != crate::MediaKind::Audio {
                    return Err(("voice", "only audio can be a voice note".into()));
                }
                Ok(())
            }
        }
    }
}

/// Where a message is in its life.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum MessageStatus {
    /// Accepted, to be sent at its `scheduled_at`.
    Scheduled,
    /// Accepted and waiting for its session to send it.
    Queued,
    /// Handed to the connector; no answer yet.
    Sending,
    /// WhatsApp's server took it.
    Sent,
    /// It reached the recipient's device.
    Delivered,
    /// The recipient read it.
    Read,
    /// It will not be sent; `status_reason` says why.
    Failed,
    /// An inbound message, stored.
    Received,
    /// A scheduled message canceled before it was due.
    Canceled,
}

/// A status change the state machine refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a message cannot go from {from:?} to {to:?}")]
pub struct IllegalTransition {
    pub from: MessageStatus,
    pub to: MessageStatus,
}

/// What applying a status to a message means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// The message moves to the new status.
    Apply,
    /// The message is already at or past it (a late or repeated receipt): nothing changes.
    Stale,
}

impl MessageStatus {
    /// Its name, as the API and the database spell it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// True once the send has an outcome: WhatsApp took it, or it failed.
    pub fn is_send_result(self) -> bool {
        matches!(
            self,
            MessageStatus::Sent | MessageStatus::Delivered | MessageStatus::Read | MessageStatus::Failed
        )
    }

    /// Position along queued → sending → sent → delivered → read.
    fn progress(self) -> Option<u8> {
        match self {
            MessageStatus::Scheduled | MessageStatus::Queued => Some(0),
            MessageStatus::Sending => Some(1),
            MessageStatus::Sent => Some(2),
            MessageStatus::Delivered => Some(3),
            MessageStatus::Read => Some(4),
            MessageStatus::Failed | MessageStatus::Received | MessageStatus::Canceled => None,
        }
    }

    /// Decides whether a message at `self` may move to `to`.
    ///
    /// Receipts may skip steps (a read receipt can arrive without a delivery receipt) and may
    /// arrive late or twice; those are `Stale`, not errors. A send that failed in a retryable
    /// way goes back from `sending` to `queued`.
    pub fn transition(self, to: MessageStatus) -> Result<StatusChange, IllegalTransition> {
        use MessageStatus::*;
        let illegal = Err(IllegalTransition { from: self, to });
        match (self, to) {
            (Queued | Scheduled, Sending) | (Sending, Queued) => Ok(StatusChange::Apply),
            // A message not yet claimed for sending can be called off (a scheduled send, or
            // the unsent rest of a canceled campaign).
            (Scheduled | Queued, Canceled) => Ok(StatusChange::Apply),
            (Scheduled | Queued | Sending | Sent, Failed) => Ok(StatusChange::Apply),
            (Sending | Sent | Delivered, Sent | Delivered | Read) => match (self.progress(), to.progress()) {
                (Some(from), Some(next)) if next > from => Ok(StatusChange::Apply),
                _ => Ok(StatusChange::Stale),
            },
            (Read, Sent | Delivered | Read) => Ok(StatusChange::Stale),
            (Failed, Failed) | (Canceled, Canceled) => Ok(StatusChange::Stale),
            _ => illegal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MessageStatus::*;
    use super::*;

    #[test]
    fn the_happy_path_applies() {
        for (from, to) in [(Queued, Sending), (Sending, Sent), (Sent, Delivered), (Delivered, Read)] {
            assert_eq!(from.transition(to), Ok(StatusChange::Apply), "{from:?}->{to:?}");
        }
    }

    #[test]
    fn receipts_may_skip_steps_and_arrive_late() {
        assert_eq!(Sent.transition(Read), Ok(StatusChange::Apply));
        assert_eq!(Sending.transition(Delivered), Ok(StatusChange::Apply));
        assert_eq!(Read.transition(Delivered), Ok(StatusChange::Stale));
        assert_eq!(Delivered.transition(Delivered), Ok(StatusChange::Stale));
        assert_eq!(Delivered.transition(Sent), Ok(StatusChange::Stale));
    }

    #[test]
    fn a_scheduled_message_is_sent_or_canceled() {
        assert_eq!(Scheduled.transition(Sending), Ok(StatusChange::Apply));
        assert_eq!(Scheduled.transition(Canceled), Ok(StatusChange::Apply));
        assert_eq!(Canceled.transition(Canceled), Ok(StatusChange::Stale));
        for to in [Sent, Queued, Read] {
            assert!(Scheduled.transition(to).is_err(), "{to:?}");
        }
        assert_eq!(Queued.transition(Canceled), Ok(StatusChange::Apply));
        for from in [Sending, Sent, Failed] {
            assert!(from.transition(Canceled).is_err(), "{from:?}");
        }
    }

    #[test]
    fn retries_and_failures() {
        assert_eq!(Sending.transition(Queued), Ok(StatusChange::Apply));
        assert_eq!(Queued.transition(Failed), Ok(StatusChange::Apply));
        assert_eq!(Sending.transition(Failed), Ok(StatusChange::Apply));
        assert_eq!(Sent.transition(Failed), Ok(StatusChange::Apply));
    }

    #[test]
    fn illegal_transitions_are_rejected() {
        for (from, to) in [
            (Queued, Sent),
            (Queued, Read),
            (Sent, Queued),
            (Read, Queued),
            (Delivered, Failed),
            (Failed, Sent),
            (Failed, Queued),
            (Received, Sent),
            (Queued, Received),
        ] {
            assert_eq!(from.transition(to), Err(IllegalTransition { from, to }), "{from:?}->{to:?}");
        }
    }

    #[test]
    fn a_contact_card_gets_a_vcard_and_a_vcard_gives_a_name() {
        let card = ContactCard {
            name: "Ann Lee; Sales".into(),
            phones: vec!["+1 555 000 2222".into()],
            emails: vec!["ann@example.com".into()],
            organization: Some("Acme".into()),
            vcard: String::new(),
        }
        .with_vcard();
        assert_eq!(
            card.vcard,
            "BEGIN:VCARD\nVERSION:3.0\nFN:Ann Lee\\; Sales\nORG:Acme\nTEL;type=CELL;waid=15550002222:+1 555 000 2222\nEMAIL:ann@example.com\nEND:VCARD"
        );
        let raw = ContactCard {
            name: String::new(),
            phones: vec![],
            emails: vec![],
            organization: None,
            vcard: "BEGIN:VCARD\nFN:Bob\nTEL:+1 555\nEND:VCARD".into(),
        }
        .with_vcard();
        assert_eq!(raw.name, "Bob");
        assert!(MessageContent::Contacts { contacts: vec![raw] }.validate().is_ok());
    }

    #[test]
    fn locations_and_polls_are_checked() {
        let at = |latitude, longitude| MessageContent::Location {
            location: LocationContent { latitude, longitude, name: None, address: None },
        };
        assert!(at(-23.5, -46.6).validate().is_ok());
        assert_eq!(at(91.0, 0.0).validate().unwrap_err().0, "location.latitude");
        assert_eq!(at(0.0, 181.0).validate().unwrap_err().0, "location.longitude");
        let poll = |options: &[&str], selectable_count| MessageContent::Poll {
            poll: PollContent {
                question: "Lunch?".into(),
                options: options.iter().map(|o| o.to_string()).collect(),
                selectable_count,
            },
        };
        assert!(poll(&["pizza", "sushi"], 2).validate().is_ok());
        assert_eq!(poll(&["pizza"], 1).validate().unwrap_err().0, "poll.options");
        assert_eq!(poll(&["pizza", "pizza"], 1).validate().unwrap_err().0, "poll.options");
        assert_eq!(poll(&["pizza", "sushi"], 3).validate().unwrap_err().0, "poll.selectable_count");
    }

    #[test]
    fn content_uses_the_cloud_api_shape() {
        let content: MessageContent =
            serde_json::from_str(r#"{"type":"text","text":{"body":"Hi"}}"#).unwrap();
        assert_eq!(content.kind(), "text");
        assert!(content.validate().is_ok());
        let empty: MessageContent = serde_json::from_str(r#"{"type":"text","text":{"body":" "}}"#).unwrap();
        assert_eq!(empty.validate().unwrap_err().0, "text.body");
        assert!(serde_json::from_str::<MessageContent>(r#"{"type":"text"}"#).is_err());
    }

    #[test]
    fn message_kinds_are_the_variants_serde_knows() {
        let unknown = serde_json::from_str::<MessageContent>(r#"{"type":"pigeon"}"#).unwrap_err().to_string();
        let listed: Vec<String> = MessageKind::ALL.iter().map(|k| format!("`{}`", k.as_str())).collect();
        assert!(unknown.contains(&format!("expected one of {}", listed.join(", "))), "{unknown}");
        for kind in MessageKind::ALL {
            assert_eq!(MessageKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        let location = MessageContent::Location {
            location: LocationContent { latitude: 0.0, longitude: 0.0, name: None, address: None },
        };
        assert_eq!(location.message_kind(), MessageKind::Location);
        assert_eq!(location.kind(), "location");
    }

    fn at(millis: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_millis(1_764_000_000_000 + millis).expect("a time")
    }

    fn entry(status: MessageStatus, millis: i64) -> StatusEntry {
        StatusEntry { status, reason: None, at: at(millis) }
    }

    fn outbound(status: MessageStatus) -> Message {
        Message {
            id: crate::MessageId::generate(),
            session_id: crate::SessionId::parse("sales-1").expect("a session id"),
            direction: Direction::Out,
            chat: "15550002222@s.whatsapp.net".into(),
            from: None,
            to: "15550002222@s.whatsapp.net".into(),
            content: MessageContent::Text { text: TextContent { body: "Hi".into() } },
            status,
            status_reason: None,
            wa_id: None,
            scheduled_at: None,
            context: None,
            mentions: Vec::new(),
            sender: None,
            campaign_id: None,
            next_attempt_at: None,
            created_at: at(0),
            updated_at: at(50),
            status_history: Vec::new(),
        }
    }

    #[test]
    fn history_is_what_the_log_recorded_when_it_recorded_every_step() {
        let recorded = vec![entry(Queued, 0), entry(Sending, 10), entry(Sent, 20), entry(Read, 50)];
        let message = outbound(Read).with_history(recorded.clone());
        assert_eq!(message.status_history, recorded);
    }

    #[test]
    fn history_starts_with_the_status_a_bulk_created_message_was_stored_with() {
        // A campaign's message: no event for its creation.
        let message = outbound(Sent).with_history(vec![entry(Sending, 10), entry(Sent, 20)]);
        let statuses: Vec<MessageStatus> = message.status_history.iter().map(|e| e.status).collect();
        assert_eq!(statuses, [Queued, Sending, Sent]);
        assert_eq!(message.status_history[0].at, at(0), "created_at");

        let mut scheduled = outbound(Scheduled);
        scheduled.scheduled_at = Some(at(1_000));
        scheduled.updated_at = at(0);
        assert_eq!(scheduled.with_history(Vec::new()).status_history, [entry(Scheduled, 0)]);
    }

    #[test]
    fn history_ends_with_the_current_status_the_log_has_no_event_for() {
        // Canceled with its campaign, in bulk.
        let mut canceled = outbound(Canceled);
        canceled.status_reason = Some("campaign canceled".into());
        let history = canceled.with_history(Vec::new()).status_history;
        assert_eq!(history.len(), 2);
        assert_eq!(history[0], entry(Queued, 0));
        assert_eq!(
            history[1],
            StatusEntry { status: Canceled, reason: Some("campaign canceled".into()), at: at(50) }
        );
    }

    #[test]
    fn an_inbound_message_was_received() {
        let mut message = outbound(Received);
        message.direction = Direction::In;
        let recorded = vec![entry(Received, 5)];
        assert_eq!(message.clone().with_history(recorded.clone()).status_history, recorded);
        assert_eq!(message.with_history(Vec::new()).status_history, [entry(Received, 0)]);
    }
}

/// The message a reply quotes: ours when wagate has it, and WhatsApp's id for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplyContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<crate::MessageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
}

/// More about who wrote an inbound message than its `from` (their phone-number JID).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sender {
    /// Their LID (`…@lid`), WhatsApp's privacy id for them, when it is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lid: Option<String>,
    /// The name they set on their own WhatsApp profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_name: Option<String>,
}

/// One step of a message's status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusEntry {
    pub status: MessageStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A stored message, inbound or outbound, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Message {
    pub id: crate::MessageId,
    pub session_id: crate::SessionId,
    pub direction: Direction,
    /// The conversation: the other party's JID, or the group's.
    pub chat: String,
    /// The author's JID; unknown for an outbound message accepted before its session linked.
    pub from: Option<String>,
    pub to: String,
    #[serde(flatten)]
    #[schema(value_type = MessageContentFields)]
    pub content: MessageContent,
    pub status: MessageStatus,
    pub status_reason: Option<String>,
    /// WhatsApp's own id for the message, once it has one.
    pub wa_id: Option<String>,
    /// When a scheduled message is (or was) due; absent for messages sent at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The message this one replies to (quotes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<ReplyContext>,
    /// The JIDs the message mentions (`@…` in its text or caption).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    /// More about the author of an inbound message, where WhatsApp tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Sender>,
    /// The campaign that sent this message, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<crate::CampaignId>,
    /// While `queued`: when the next send attempt is due, if it waits (a retry after a
    /// failed attempt, or a pacing cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_history: Vec<StatusEntry>,
}

impl Message {
    /// The status a message is stored with: received, or queued (scheduled when it waits for
    /// its time).
    pub fn first_status(&self) -> MessageStatus {
        match self.direction {
            Direction::In => MessageStatus::Received,
            Direction::Out if self.scheduled_at.is_some() => MessageStatus::Scheduled,
            Direction::Out => MessageStatus::Queued,
        }
    }

    /// Sets `status_history` from the steps the event log recorded for this message, in log
    /// order, completed by what the message itself holds where the log has no event for it:
    /// the status it was created with (a campaign's messages are created in bulk, without an
    /// event each) and its current one (canceled with their campaign, or steps whose events
    /// retention has deleted).
    pub fn with_history(mut self, recorded: Vec<StatusEntry>) -> Self {
        let first = self.first_status();
        let mut history = Vec::with_capacity(recorded.len() + 2);
        if recorded.first().is_none_or(|entry| entry.status != first) {
            history.push(StatusEntry { status: first, reason: None, at: self.created_at });
        }
        history.extend(recorded);
        if history.last().is_none_or(|entry| entry.status != self.status) {
            history.push(StatusEntry {
                status: self.status,
                reason: self.status_reason.clone(),
                at: self.updated_at,
            });
        }
        self.status_history = history;
        self
    }
}
