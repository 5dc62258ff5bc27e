//! What wagate sends: WhatsApp's protobuf of each kind, ids, and why a send failed.

use sha2::{Digest, Sha256};
use wagate_core::{Jid, MediaKind, MessageContent, MessageId};
use whatsapp_rust::waproto::buffa::MessageField;
use whatsapp_rust::waproto::whatsapp as wa;

use crate::{OutboundMessage, SendError};

/// WhatsApp's id for a message wagate sends: derived from wagate's id, so that sending it
/// again after a lost answer is recognised by WhatsApp as the same message.
pub fn wa_message_id(id: &MessageId) -> String {
    let digest = Sha256::digest(id.as_str().as_bytes());
    format!("3EB0{}", hex::encode_upper(&digest[..8]))
}

/// A send refused by the server (a nack): never worth repeating as it is.
pub fn nack(code: &str) -> SendError {
    SendError::Permanent {
        code: "whatsapp_refused".into(),
        message: format!("WhatsApp refused the message (error {code})"),
    }
}

/// The quote and mentions of an outbound message.
pub fn context(message: &OutboundMessage, quoted_author: Option<&str>) -> Option<wa::ContextInfo> {
    if message.reply_to.is_none() && message.mentions.is_empty() {
        return None;
    }
    Some(wa::ContextInfo {
        stanza_id: message.reply_to.clone(),
        participant: message
            .reply_to
            .as_ref()
            .map(|_| quoted_author.unwrap_or(&message.to.to_string()).to_owned()),
        quoted_message: match message.reply_to {
            Some(_) => MessageField::some(wa::Message::default()),
            None => MessageField::none(),
        },
        mentioned_jid: message.mentions.iter().map(Jid::to_string).collect(),
        ..Default::default()
    })
}

/// A message without media, as WhatsApp's protobuf; `None` for media kinds (they are
/// uploaded first, see [`media_message`]) and reactions (sent by key).
pub fn outbound(message: &OutboundMessage) -> Option<wa::Message> {
    let context = context(message, None).map(MessageField::some).unwrap_or_default();
    let built = match &message.content {
        MessageContent::Text { text } => match context.is_set() {
            false => wa::Message { conversation: Some(text.body.clone()), ..Default::default() },
            true => wa::Message {
                extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
                    text: Some(text.body.clone()),
                    context_info: context,
                    ..Default::default()
                }),
                ..Default::default()
            },
        },
        MessageContent::Location { location } => wa::Message {
            location_message: MessageField::some(wa::message::LocationMessage {
                degrees_latitude: Some(location.latitude),
                degrees_longitude: Some(location.longitude),
                name: location.name.clone(),
                address: location.address.clone(),
                context_info: context,
                ..Default::default()
            }),
            ..Default::default()
        },
        MessageContent::Contacts { contacts } if contacts.len() == 1 => wa::Message {
            contact_message: MessageField::some(wa::message::ContactMessage {
                display_name: Some(contacts[0].name.clone()),
                vcard: Some(contacts[0].vcard.clone()),
                context_info: context,
                ..Default::default()
            }),
            ..Default::default()
        },
        MessageContent::Contacts { contacts } => wa::Message {
            contacts_array_message: MessageField::some(wa::message::ContactsArrayMessage {
                display_name: Some(format!("{} contacts", contacts.len())),
                contacts: contacts
                    .iter()
                    .map(|c| wa::message::ContactMessage {
                        display_name: Some(c.name.clone()),
                        vcard: Some(c.vcard.clone()),
                        ..Default::default()
                    })
                    .collect(),
                context_info: context,
            }),
            ..Default::default()
        },
        MessageContent::Poll { poll } => wa::Message {
            poll_creation_message_v3: MessageField::some(wa::message::PollCreationMessage {
                name: Some(poll.question.clone()),
                options: poll
                    .options
                    .iter()
                    .map(|o| wa::message::poll_creation_message::Option {
                        option_name: Some(o.clone()),
                        ..Default::default()
                    })
                    .collect(),
                selectable_options_count: Some(poll.selectable_count),
                context_info: context,
                ..Default::default()
            }),
            ..Default::default()
        },
        MessageContent::Image { .. }
        | MessageContent::Video { .. }
        | MessageContent::Audio { .. }
        | MessageContent::Document { .. }
        | MessageContent::Sticker { .. }
        | MessageContent::Reaction { .. }
        | MessageContent::Edit { .. }
        | MessageContent::Revoke { .. } => return None,
    };
    Some(built)
}

/// The key of the message a reaction is about, in the recipient's chat: the message wagate
/// resolved, or else WhatsApp's id as given, of a message the session received.
pub fn reaction_key(message: &OutboundMessage) -> Option<(wa::MessageKey, String)> {
    let MessageContent::Reaction { reaction } = &message.content else { return None };
    let (id, from_me) = match &message.target {
        Some(target) => (target.wa_id.clone(), target.from_me),
        None => (reaction.message_id.clone(), false),
    };
    Some((
        wa::MessageKey {
            remote_jid: Some(message.to.to_string()),
            from_me: Some(from_me),
            id: Some(id),
            participant: None,
        },
        reaction.emoji.clone(),
    ))
}

/// An edit or revoke: WhatsApp's id of the message it changes (one this session sent).
pub fn changed(message: &OutboundMessage) -> Option<Change> {
    let target = |given: &str| message.target.as_ref().map_or_else(|| given.to_owned(), |t| t.wa_id.clone());
    match &message.content {
        MessageContent::Edit { edit } => {
            Some(Change::Edit { wa_id: target(&edit.message_id), body: edit.body.clone() })
        }
        MessageContent::Revoke { revoke } => Some(Change::Revoke { wa_id: target(&revoke.message_id) }),
        _ => None,
    }
}

/// A change to a message sent before.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Edit { wa_id: String, body: String },
    Revoke { wa_id: String },
}

/// Which media type WhatsApp uploads a kind as.
pub fn media_type(kind: MediaKind) -> whatsapp_rust::download::MediaType {
    use whatsapp_rust::download::MediaType;
    match kind {
        MediaKind::Image => MediaType::Image,
        MediaKind::Video => MediaType::Video,
        MediaKind::Audio => MediaType::Audio,
        MediaKind::Document => MediaType::Document,
        MediaKind::Sticker => MediaType::Sticker,
    }
}

/// Where WhatsApp keeps an uploaded (encrypted) file, and how to decrypt it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub url: String,
    pub direct_path: String,
    pub media_key: Vec<u8>,
    pub file_sha256: Vec<u8>,
    pub file_enc_sha256: Vec<u8>,
    pub file_length: u64,
    pub media_key_timestamp: i64,
}

impl From<whatsapp_rust::upload::UploadResponse> for Uploaded {
    fn from(u: whatsapp_rust::upload::UploadResponse) -> Self {
        Self {
            url: u.url,
            direct_path: u.direct_path,
            media_key: u.media_key.to_vec(),
            file_sha256: u.file_sha256.to_vec(),
            file_enc_sha256: u.file_enc_sha256.to_vec(),
            file_length: u.file_length,
            media_key_timestamp: u.media_key_timestamp,
        }
    }
}

/// A media message for an uploaded file, with its caption, file name or voice flag.
pub fn media_message(
    kind: MediaKind,
    content: &wagate_core::MediaContent,
    file: Uploaded,
    context: Option<wa::ContextInfo>,
) -> wa::Message {
    let context_info = context.map(MessageField::some).unwrap_or_default();
    let mimetype = Some(content.mime_type.clone());
    let caption = content.caption.clone();
    // The same eight fields in each kind's message.
    macro_rules! media {
        ($type:ident { $($field:ident: $value:expr),* $(,)? }) => {
            wa::message::$type {
                url: Some(file.url),
                direct_path: Some(file.direct_path),
                media_key: Some(file.media_key),
                file_sha256: Some(file.file_sha256),
                file_enc_sha256: Some(file.file_enc_sha256),
                file_length: Some(file.file_length),
                media_key_timestamp: Some(file.media_key_timestamp),
                $($field: $value,)*
                ..Default::default()
            }
        };
    }
    match kind {
        MediaKind::Image => wa::Message {
            image_message: MessageField::some(media!(ImageMessage {
                mimetype: mimetype,
                caption: caption,
                context_info: context_info
            })),
            ..Default::default()
        },
        MediaKind::Video => wa::Message {
            video_message: MessageField::some(media!(VideoMessage {
                mimetype: mimetype,
                caption: caption,
                context_info: context_info
            })),
            ..Default::default()
        },
        MediaKind::Audio => wa::Message {
            audio_message: MessageField::some(media!(AudioMessage {
                // WhatsApp plays voice notes only as Opus in Ogg.
                mimetype: if content.voice { Some("audio/ogg; codecs=opus".into()) } else { mimetype },
                ptt: Some(content.voice),
                context_info: context_info,
            })),
            ..Default::default()
        },
        MediaKind::Document => wa::Message {
            document_message: MessageField::some(media!(DocumentMessage {
                mimetype: mimetype,
                file_name: content.filename.clone(),
                title: content.filename.clone(),
                caption: caption,
                context_info: context_info,
            })),
            ..Default::default()
        },
        MediaKind::Sticker => wa::Message {
            sticker_message: MessageField::some(media!(StickerMessage {
                mimetype: mimetype,
                context_info: context_info
            })),
            ..Default::default()
        },
    }
}

/// Whether a failed send may work later.
pub fn send_error(error: &whatsapp_rust::send::SendError) -> SendError {
    use whatsapp_rust::send::SendError as Failed;
    match error {
        Failed::InvalidRequest(why) => {
            SendError::Permanent { code: "invalid_request".into(), message: why.clone() }
        }
        Failed::NotLoggedIn => SendError::Retryable("the session is not logged in yet".into()),
        other => SendError::Retryable(other.to_string()),
    }
}
