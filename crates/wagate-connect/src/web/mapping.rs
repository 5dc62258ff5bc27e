//! Between whatsapp-rust's types and wagate's: pure functions, tested on constructed values.

use sha2::{Digest, Sha256};
use wagate_core::{
    ContactCard, Jid, LocationContent, MediaKind, MessageContent, MessageId, PhoneNumber, PollContent,
    ReactionContent, TextContent,
};
use whatsapp_rust::types::events::{ConnectFailureReason, TempBanReason};
use whatsapp_rust::types::message::MessageInfo;
use whatsapp_rust::types::presence::ReceiptType;
use whatsapp_rust::wacore::proto_helpers::MessageExt;
use whatsapp_rust::waproto::buffa::MessageField;
use whatsapp_rust::waproto::whatsapp as wa;

use crate::{OutboundMessage, Receipt, SendError};

/// What an inbound message carries, before its media (if any) is downloaded.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Content(MessageContent),
    /// A media message: the file is to be downloaded from WhatsApp and stored first.
    Media {
        kind: MediaKind,
        caption: Option<String>,
        filename: Option<String>,
        voice: bool,
    },
}

/// The parts of an inbound message wagate keeps; `None` for messages nobody reads (protocol
/// messages, key distribution, edits and revokes of other messages, unsupported kinds).
#[derive(Debug, Clone, PartialEq)]
pub struct InboundParts {
    pub body: Inbound,
    pub reply_to: Option<String>,
    pub mentions: Vec<Jid>,
}

pub fn inbound(message: &wa::Message) -> Option<InboundParts> {
    if let Some(change) = protocol_change(message) {
        return Some(InboundParts { body: Inbound::Content(change), reply_to: None, mentions: Vec::new() });
    }
    let base = message.get_base_message();
    let mut context: Option<&wa::ContextInfo> = None;
    let body = if let Some(text) = base.conversation.as_deref().filter(|t| !t.is_empty()) {
        Inbound::Content(text_content(text))
    } else if let Some(m) = base.extended_text_message.as_option() {
        context = m.context_info.as_option();
        Inbound::Content(text_content(m.text.as_deref().unwrap_or_default()))
    } else if let Some(m) = base.image_message.as_option() {
        context = m.context_info.as_option();
        media(MediaKind::Image, m.caption.clone(), None, false)
    } else if let Some(m) = base.video_message.as_option() {
        context = m.context_info.as_option();
        media(MediaKind::Video, m.caption.clone(), None, false)
    } else if let Some(m) = base.audio_message.as_option() {
        context = m.context_info.as_option();
        media(MediaKind::Audio, None, None, m.ptt.unwrap_or(false))
    } else if let Some(m) = base.document_message.as_option() {
        context = m.context_info.as_option();
        media(MediaKind::Document, m.caption.clone(), m.file_name.clone(), false)
    } else if let Some(m) = base.sticker_message.as_option() {
        context = m.context_info.as_option();
        media(MediaKind::Sticker, None, None, false)
    } else if let Some(m) = base.location_message.as_option() {
        context = m.context_info.as_option();
        Inbound::Content(MessageContent::Location {
            location: LocationContent {
                latitude: m.degrees_latitude.unwrap_or_default(),
                longitude: m.degrees_longitude.unwrap_or_default(),
                name: m.name.clone(),
                address: m.address.clone(),
            },
        })
    } else if let Some(m) = base.contact_message.as_option() {
        context = m.context_info.as_option();
        Inbound::Content(MessageContent::Contacts { contacts: vec![contact_card(m)] })
    } else if let Some(m) = base.contacts_array_message.as_option() {
        context = m.context_info.as_option();
        Inbound::Content(MessageContent::Contacts { contacts: m.contacts.iter().map(contact_card).collect() })
    } else if let Some(m) = base.reaction_message.as_option() {
        let message_id = m.key.as_option().and_then(|k| k.id.clone())?;
        Inbound::Content(MessageContent::Reaction {
            reaction: ReactionContent { message_id, emoji: m.text.clone().unwrap_or_default() },
        })
    } else if let Some(m) =
        [&base.poll_creation_message, &base.poll_creation_message_v2, &base.poll_creation_message_v3]
            .into_iter()
            .find_map(MessageField::as_option)
    {
        context = m.context_info.as_option();
        Inbound::Content(MessageContent::Poll {
            poll: PollContent {
                question: m.name.clone().unwrap_or_default(),
                options: m.options.iter().filter_map(|o| o.option_name.clone()).collect(),
                selectable_count: m.selectable_options_count.unwrap_or(0),
            },
        })
    } else {
        return None;
    };
    Some(InboundParts {
        body,
        reply_to: context.and_then(|c| c.stanza_id.clone()),
        mentions: context
            .map(|c| c.mentioned_jid.iter().filter_map(|j| Jid::parse(j).ok()).collect())
            .unwrap_or_default(),
    })
}

/// An edit or revoke of an earlier message, from the protocol message that carries it (at the
/// top, or inside a disappearing-mode or device-sent wrapper).
fn protocol_change(message: &wa::Message) -> Option<MessageContent> {
    use wa::message::protocol_message::Type;
    let protocol = message
        .protocol_message
        .as_option()
        .or_else(|| message.ephemeral_message.as_option()?.message.as_option()?.protocol_message.as_option())
        .or_else(|| {
            message.device_sent_message.as_option()?.message.as_option()?.protocol_message.as_option()
        })?;
    let message_id = protocol.key.as_option().and_then(|k| k.id.clone())?;
    match protocol.r#type {
        Some(Type::REVOKE) => {
            Some(MessageContent::Revoke { revoke: wagate_core::RevokeContent { message_id } })
        }
        Some(Type::MESSAGE_EDIT) => {
            let edited = protocol.edited_message.as_option()?;
            let body = edited.text_content().or_else(|| edited.get_caption())?.to_owned();
            Some(MessageContent::Edit { edit: wagate_core::EditContent { message_id, body } })
        }
        _ => None,
    }
}

fn text_content(body: &str) -> MessageContent {
    MessageContent::Text { text: TextContent { body: body.to_owned() } }
}

fn media(kind: MediaKind, caption: Option<String>, filename: Option<String>, voice: bool) -> Inbound {
    Inbound::Media { kind, caption: caption.filter(|c| !c.is_empty()), filename, voice }
}

fn contact_card(m: &wa::message::ContactMessage) -> ContactCard {
    let vcard = m.vcard.clone().unwrap_or_default();
    let phones = vcard
        .lines()
        .filter(|line| line.to_ascii_uppercase().starts_with("TEL"))
        .filter_map(|line| line.split_once(':').map(|(_, number)| number.trim().to_owned()))
        .collect();
    ContactCard {
        name: m.display_name.clone().unwrap_or_default(),
        phones,
        emails: Vec::new(),
        organization: None,
        vcard,
    }
}

/// Who wrote a message and where: the chat, the author's phone-number JID (when WhatsApp
/// gave one, or `phone_of_lid` resolved it), and the author's LID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parties {
    pub chat: Jid,
    pub from: Jid,
    pub from_lid: Option<Jid>,
}

/// `phone_of_lid` is the client's LID→phone mapping, for authors WhatsApp names only by LID.
pub fn parties(info: &MessageInfo, phone_of_lid: impl Fn(&str) -> Option<String>) -> Option<Parties> {
    let source = &info.source;
    let sender = source.sender.to_non_ad();
    let alt = source.sender_alt.as_ref().map(|j| j.to_non_ad());
    let (pn, lid) = if sender.is_lid() {
        (alt.filter(|a| a.is_pn()), Some(sender.clone()))
    } else {
        (Some(sender.clone()), alt.filter(|a| a.is_lid()))
    };
    let pn = pn.or_else(|| {
        let lid = lid.as_ref()?;
        phone_of_lid(&lid.user).map(whatsapp_rust::Jid::pn)
    });
    let from = Jid::parse(&pn.as_ref().unwrap_or(&sender).to_string()).ok()?;
    let from_lid = lid.and_then(|l| Jid::parse(&l.to_string()).ok());
    // A one-to-one chat with someone known by LID is shown by their phone number when known.
    let chat = if source.is_group || !source.chat.is_lid() {
        Jid::parse(&source.chat.to_non_ad().to_string()).ok()?
    } else if source.is_from_me {
        let phone = phone_of_lid(&source.chat.user).map(whatsapp_rust::Jid::pn);
        Jid::parse(&phone.unwrap_or_else(|| source.chat.to_non_ad()).to_string()).ok()?
    } else {
        from.clone()
    };
    Some(Parties { chat, from, from_lid })
}

/// What a receipt tells of a message's status; `None` for receipts that tell nothing of it.
/// A played voice note counts as read.
pub fn receipt(kind: &ReceiptType) -> Option<Receipt> {
    match kind {
        ReceiptType::Delivered => Some(Receipt::Delivered),
        ReceiptType::Read | ReceiptType::Played => Some(Receipt::Read),
        _ => None,
    }
}

/// The reason a session shows when WhatsApp ends its link for good.
pub fn logged_out_reason(reason: ConnectFailureReason) -> String {
    let why = match reason {
        ConnectFailureReason::LoggedOut => "the phone unlinked this device",
        ConnectFailureReason::AccountLocked => "the account is locked",
        ConnectFailureReason::UnknownLogout => "WhatsApp logged the device out",
        _ => "WhatsApp ended the link",
    };
    format!("logged_out: {why} ({})", failure_code(reason))
}

fn failure_code(reason: ConnectFailureReason) -> i32 {
    match reason {
        ConnectFailureReason::Generic => 400,
        ConnectFailureReason::LoggedOut => 401,
        ConnectFailureReason::TempBanned => 402,
        ConnectFailureReason::AccountLocked => 403,
        ConnectFailureReason::ClientOutdated => 405,
        ConnectFailureReason::UnknownLogout => 406,
        ConnectFailureReason::BadUserAgent => 409,
        ConnectFailureReason::CatExpired => 413,
        ConnectFailureReason::CatInvalid => 414,
        ConnectFailureReason::NotFound => 415,
        ConnectFailureReason::ClientUnknown => 418,
        ConnectFailureReason::InternalServerError => 500,
        ConnectFailureReason::Experimental => 501,
        ConnectFailureReason::ServiceUnavailable => 503,
        ConnectFailureReason::Unknown(code) => code,
    }
}

/// The reason of a connection refused at connect: whether it is worth trying again.
pub fn connect_failure(reason: ConnectFailureReason, message: Option<&str>) -> (String, bool) {
    let text = message.map(|m| format!(": {m}")).unwrap_or_default();
    (
        format!("connect_failure: WhatsApp refused the connection ({}){text}", failure_code(reason)),
        reason.should_reconnect(),
    )
}

pub fn temporary_ban_reason(code: &TempBanReason, expire: chrono::Duration) -> String {
    let minutes = expire.num_minutes();
    let left = if minutes >= 120 { format!("{} hours", minutes / 60) } else { format!("{minutes} minutes") };
    format!("temporary_ban: WhatsApp banned the account for {left}: {code}")
}

pub const STREAM_REPLACED: &str =
    "stream_replaced: another client connected with this device's keys (the session runs twice)";
pub const CLIENT_OUTDATED: &str =
    "client_outdated: WhatsApp refused the client version; set connectors.web.client_version";
pub const QR_EXPIRED: &str = "qr_expired: no phone scanned the QR codes in time";

/// WhatsApp's id for a message wagate sends: derived from wagate's id, so that sending it
/// again after a lost answer is recognised by WhatsApp as the same message.
pub fn wa_message_id(id: &MessageId) -> String {
    let digest = Sha256::digest(id.as_str().as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02X}")).collect();
    format!("3EB0{hex}")
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

/// The media kind and its content, if the message is a media message.
pub fn media_of(content: &MessageContent) -> Option<(MediaKind, &wagate_core::MediaContent)> {
    match content {
        MessageContent::Image { image } => Some((MediaKind::Image, image)),
        MessageContent::Video { video } => Some((MediaKind::Video, video)),
        MessageContent::Audio { audio } => Some((MediaKind::Audio, audio)),
        MessageContent::Document { document } => Some((MediaKind::Document, document)),
        MessageContent::Sticker { sticker } => Some((MediaKind::Sticker, sticker)),
        _ => None,
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

/// A phone number from one of WhatsApp's JIDs of the account (`5511…:12@s.whatsapp.net`).
pub fn phone_of(jid: &whatsapp_rust::Jid) -> Option<PhoneNumber> {
    jid.is_pn().then(|| PhoneNumber::parse(&jid.user).ok()).flatten()
}

/// The media message of an inbound message, to download its file.
pub fn downloadable(
    base: &wa::Message,
    kind: MediaKind,
) -> Option<&dyn whatsapp_rust::download::Downloadable> {
    use whatsapp_rust::download::Downloadable;
    match kind {
        MediaKind::Image => base.image_message.as_option().map(|m| m as &dyn Downloadable),
        MediaKind::Video => base.video_message.as_option().map(|m| m as &dyn Downloadable),
        MediaKind::Audio => base.audio_message.as_option().map(|m| m as &dyn Downloadable),
        MediaKind::Document => base.document_message.as_option().map(|m| m as &dyn Downloadable),
        MediaKind::Sticker => base.sticker_message.as_option().map(|m| m as &dyn Downloadable),
    }
}

/// The content of a media message of `kind` whose file is stored.
pub fn media_content(kind: MediaKind, media: wagate_core::MediaContent) -> MessageContent {
    match kind {
        MediaKind::Image => MessageContent::Image { image: media },
        MediaKind::Video => MessageContent::Video { video: media },
        MediaKind::Audio => MessageContent::Audio { audio: media },
        MediaKind::Document => MessageContent::Document { document: media },
        MediaKind::Sticker => MessageContent::Sticker { sticker: media },
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

fn contact_jids(
    jid: &whatsapp_rust::Jid,
    lid: Option<&str>,
    pn: Option<&str>,
) -> Option<(String, Option<String>, Option<String>)> {
    let jid = jid.to_non_ad();
    let pn =
        pn.and_then(|p| p.parse::<whatsapp_rust::Jid>().ok()).or_else(|| jid.is_pn().then(|| jid.clone()));
    let lid =
        lid.and_then(|l| l.parse::<whatsapp_rust::Jid>().ok()).or_else(|| jid.is_lid().then(|| jid.clone()));
    let shown = pn.as_ref().or(lid.as_ref())?;
    Some((shown.to_string(), pn.map(|p| p.user.to_string()), lid.map(|l| l.to_string())))
}

/// A contact from the phone's address book (app state sync).
pub fn contact_update(
    jid: &whatsapp_rust::Jid,
    action: &wa::sync_action_value::ContactAction,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<wagate_core::Contact> {
    let (shown, phone, lid) = contact_jids(jid, action.lid_jid.as_deref(), action.pn_jid.as_deref())?;
    Some(wagate_core::Contact {
        jid: shown,
        phone,
        lid,
        name: action.full_name.clone().or_else(|| action.first_name.clone()).filter(|n| !n.is_empty()),
        push_name: None,
        updated_at: now,
    })
}

/// The name someone set on their profile.
pub fn push_name(
    jid: &whatsapp_rust::Jid,
    name: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<wagate_core::Contact> {
    let (shown, phone, lid) = contact_jids(jid, None, None)?;
    Some(wagate_core::Contact {
        jid: shown,
        phone,
        lid,
        name: None,
        push_name: Some(name.to_owned()).filter(|n| !n.is_empty()),
        updated_at: now,
    })
}

/// The chats and profile names a history sync brings.
pub fn history(
    sync: &wa::HistorySync,
    now: chrono::DateTime<chrono::Utc>,
) -> (Vec<wagate_core::Contact>, Vec<wagate_core::Chat>) {
    let chats = sync
        .conversations
        .iter()
        .filter_map(|c| {
            let jid = c.pn_jid.as_deref().filter(|_| c.id.ends_with("@lid")).unwrap_or(&c.id);
            let jid = Jid::parse(jid).ok()?;
            Some(wagate_core::Chat {
                jid: jid.to_string(),
                name: c.name.clone().or_else(|| c.display_name.clone()).filter(|n| !n.is_empty()),
                is_group: jid.is_group(),
                last_message_at: c
                    .conversation_timestamp
                    .and_then(|t| i64::try_from(t).ok())
                    .and_then(|t| chrono::DateTime::from_timestamp(t, 0)),
                updated_at: now,
            })
        })
        .collect();
    let contacts = sync
        .pushnames
        .iter()
        .filter_map(|p| push_name(&p.id.as_deref()?.parse().ok()?, p.pushname.as_deref()?, now))
        .collect();
    (contacts, chats)
}
