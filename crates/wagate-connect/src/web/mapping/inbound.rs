//! What WhatsApp tells: inbound messages, their authors, receipts, the ends of a link,
//! contacts and history.

use wagate_core::{
    ContactCard, Jid, LocationContent, MediaKind, MessageContent, PhoneNumber, PollContent, ReactionContent,
    TextContent,
};
use whatsapp_rust::types::events::{ConnectFailureReason, TempBanReason};
use whatsapp_rust::types::message::MessageInfo;
use whatsapp_rust::types::presence::ReceiptType;
use whatsapp_rust::wacore::proto_helpers::MessageExt;
use whatsapp_rust::waproto::buffa::MessageField;
use whatsapp_rust::waproto::whatsapp as wa;

use crate::Receipt;

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
/// Why a connection WhatsApp never answered is given up and tried again.
pub fn unreachable_reason(url: &str, waited: std::time::Duration) -> String {
    format!("unreachable: no answer from WhatsApp at {url} within {} s; trying again", waited.as_secs_f32())
}

/// Whether a client event shows that WhatsApp answered the connection: it showed a code,
/// linked, connected, or refused in words.
pub fn is_answer(event: &whatsapp_rust::types::events::Event) -> bool {
    use whatsapp_rust::types::events::Event;
    matches!(
        event,
        Event::PairingQrCode(_)
            | Event::PairingCode(_)
            | Event::PairSuccess(_)
            | Event::Connected(_)
            | Event::LoggedOut(_)
            | Event::StreamReplaced(_)
            | Event::TemporaryBan(_)
            | Event::ClientOutdated(_)
            | Event::ConnectFailure(_)
    )
}

pub const QR_EXPIRED: &str = "qr_expired: no phone scanned the QR codes in time";

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
