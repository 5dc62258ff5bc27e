//! The web connector's mapping, on constructed values.

use chrono::{TimeZone, Utc};
use wagate_core::{
    ContactCard, Jid, MediaContent, MediaId, MediaKind, MessageContent, MessageId, PhoneNumber,
};
use whatsapp_rust::types::events::{ConnectFailureReason, TempBanReason};
use whatsapp_rust::types::message::{MessageInfo, MessageSource};
use whatsapp_rust::types::presence::ReceiptType;
use whatsapp_rust::waproto::buffa::MessageField;
use whatsapp_rust::waproto::whatsapp as wa;

use super::mapping::{self, Inbound, Parties, Uploaded};
use super::parse_version;
use crate::{OutboundMessage, Receipt, SendError};

fn jid(s: &str) -> whatsapp_rust::Jid {
    s.parse().unwrap()
}

fn ours(s: &str) -> Jid {
    Jid::parse(s).unwrap()
}

fn text(body: &str) -> MessageContent {
    MessageContent::Text { text: wagate_core::TextContent { body: body.into() } }
}

fn content(message: wa::Message) -> MessageContent {
    match mapping::inbound(&message).expect("kept").body {
        Inbound::Content(content) => content,
        other => panic!("expected content, got {other:?}"),
    }
}

#[test]
fn inbound_text_with_a_quote_and_mentions() {
    let plain = wa::Message { conversation: Some("hi".into()), ..Default::default() };
    let parts = mapping::inbound(&plain).unwrap();
    assert_eq!((parts.body, parts.reply_to, parts.mentions), (Inbound::Content(text("hi")), None, vec![]));

    let quoted = wa::Message {
        extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
            text: Some("yes @5511999990000".into()),
            context_info: MessageField::some(wa::ContextInfo {
                stanza_id: Some("3EB0QUOTED".into()),
                participant: Some("5511999990000@s.whatsapp.net".into()),
                mentioned_jid: vec!["5511999990000@s.whatsapp.net".into(), "not a jid".into()],
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let parts = mapping::inbound(&quoted).unwrap();
    assert_eq!(parts.body, Inbound::Content(text("yes @5511999990000")));
    assert_eq!(parts.reply_to.as_deref(), Some("3EB0QUOTED"));
    assert_eq!(
        parts.mentions,
        vec![ours("5511999990000@s.whatsapp.net")],
        "unparseable mentions are dropped"
    );
}

#[test]
fn inbound_media_kinds_carry_caption_file_name_and_voice() {
    let image = wa::Message {
        image_message: MessageField::some(wa::message::ImageMessage {
            caption: Some("look".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        mapping::inbound(&image).unwrap().body,
        Inbound::Media { kind: MediaKind::Image, caption: Some("look".into()), filename: None, voice: false }
    );
    let voice = wa::Message {
        audio_message: MessageField::some(wa::message::AudioMessage {
            ptt: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        mapping::inbound(&voice).unwrap().body,
        Inbound::Media { kind: MediaKind::Audio, caption: None, filename: None, voice: true }
    );
    let document = wa::Message {
        document_message: MessageField::some(wa::message::DocumentMessage {
            file_name: Some("invoice.pdf".into()),
            caption: Some(String::new()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        mapping::inbound(&document).unwrap().body,
        Inbound::Media {
            kind: MediaKind::Document,
            caption: None,
            filename: Some("invoice.pdf".into()),
            voice: false
        },
        "an empty caption is no caption"
    );
    let video = wa::Message { video_message: MessageField::some(Default::default()), ..Default::default() };
    assert!(matches!(mapping::inbound(&video).unwrap().body, Inbound::Media { kind: MediaKind::Video, .. }));
    let sticker =
        wa::Message { sticker_message: MessageField::some(Default::default()), ..Default::default() };
    assert!(matches!(
        mapping::inbound(&sticker).unwrap().body,
        Inbound::Media { kind: MediaKind::Sticker, .. }
    ));
    // The downloaded file becomes the content of the same kind.
    let stored = MediaContent {
        id: MediaId::generate(),
        mime_type: "audio/ogg".into(),
        size: 3,
        sha256: "ab".into(),
        caption: None,
        filename: None,
        voice: true,
    };
    assert!(
        matches!(MessageContent::media(MediaKind::Audio, stored), MessageContent::Audio { audio } if audio.voice)
    );
    assert!(mapping::downloadable(&voice, MediaKind::Audio).is_some());
    assert!(mapping::downloadable(&voice, MediaKind::Image).is_none());
}

#[test]
fn inbound_location_contacts_reaction_and_poll() {
    let location = wa::Message {
        location_message: MessageField::some(wa::message::LocationMessage {
            degrees_latitude: Some(-23.5),
            degrees_longitude: Some(-46.6),
            name: Some("Shop".into()),
            address: None,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        content(location),
        MessageContent::Location {
            location: wagate_core::LocationContent {
                latitude: -23.5,
                longitude: -46.6,
                name: Some("Shop".into()),
                address: None
            }
        }
    );
    let vcard = "BEGIN:VCARD\nVERSION:3.0\nFN:Ana\nTEL;type=CELL;waid=5511:+55 11 99999-0000\nEND:VCARD";
    let contact = wa::Message {
        contact_message: MessageField::some(wa::message::ContactMessage {
            display_name: Some("Ana".into()),
            vcard: Some(vcard.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let MessageContent::Contacts { contacts } = content(contact) else { panic!() };
    assert_eq!(
        contacts,
        vec![ContactCard {
            name: "Ana".into(),
            phones: vec!["+55 11 99999-0000".into()],
            emails: vec![],
            organization: None,
            vcard: vcard.into()
        }]
    );
    let many = wa::Message {
        contacts_array_message: MessageField::some(wa::message::ContactsArrayMessage {
            contacts: vec![Default::default(), Default::default()],
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(matches!(content(many), MessageContent::Contacts { contacts } if contacts.len() == 2));

    let reaction = |emoji: &str| wa::Message {
        reaction_message: MessageField::some(wa::message::ReactionMessage {
            key: MessageField::some(wa::MessageKey { id: Some("3EB0TARGET".into()), ..Default::default() }),
            text: Some(emoji.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        content(reaction("👍")),
        MessageContent::Reaction {
            reaction: wagate_core::ReactionContent { message_id: "3EB0TARGET".into(), emoji: "👍".into() }
        }
    );
    assert!(
        matches!(content(reaction("")), MessageContent::Reaction { reaction } if reaction.emoji.is_empty()),
        "a removal"
    );

    let poll = wa::Message {
        poll_creation_message_v3: MessageField::some(wa::message::PollCreationMessage {
            name: Some("Lunch?".into()),
            options: vec![
                wa::message::poll_creation_message::Option {
                    option_name: Some("Yes".into()),
                    ..Default::default()
                },
                wa::message::poll_creation_message::Option {
                    option_name: Some("No".into()),
                    ..Default::default()
                },
            ],
            selectable_options_count: Some(1),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        content(poll),
        MessageContent::Poll {
            poll: wagate_core::PollContent {
                question: "Lunch?".into(),
                options: vec!["Yes".into(), "No".into()],
                selectable_count: 1
            }
        }
    );
}

#[test]
fn wrapped_messages_are_unwrapped_and_protocol_messages_are_not_kept() {
    let inner = wa::Message { conversation: Some("disappearing".into()), ..Default::default() };
    let ephemeral = wa::Message {
        ephemeral_message: MessageField::some(wa::message::FutureProofMessage {
            message: MessageField::some(inner),
        }),
        ..Default::default()
    };
    assert_eq!(content(ephemeral), text("disappearing"));
    let revoke = wa::Message {
        protocol_message: MessageField::some(wa::message::ProtocolMessage::default()),
        ..Default::default()
    };
    assert_eq!(mapping::inbound(&revoke), None);
    assert_eq!(mapping::inbound(&wa::Message::default()), None);
}

fn info(chat: &str, sender: &str, alt: Option<&str>, group: bool) -> MessageInfo {
    MessageInfo {
        source: MessageSource {
            chat: jid(chat),
            sender: jid(sender),
            is_group: group,
            sender_alt: alt.map(jid),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn authors_are_shown_by_phone_number_with_their_lid() {
    let none = |_: &str| None;
    // A one-to-one message from someone WhatsApp addresses by LID, with their number alongside.
    let by_lid = info("100200300@lid", "100200300:4@lid", Some("5511999990000@s.whatsapp.net"), false);
    assert_eq!(
        mapping::parties(&by_lid, none),
        Some(Parties {
            chat: ours("5511999990000@s.whatsapp.net"),
            from: ours("5511999990000@s.whatsapp.net"),
            from_lid: Some(ours("100200300@lid")),
        })
    );
    // By number, with the LID alongside.
    let by_pn =
        info("5511999990000@s.whatsapp.net", "5511999990000:2@s.whatsapp.net", Some("100200300@lid"), false);
    let parties = mapping::parties(&by_pn, none).unwrap();
    assert_eq!(
        (parties.from, parties.from_lid),
        (ours("5511999990000@s.whatsapp.net"), Some(ours("100200300@lid")))
    );
    // Only a LID: the client's mapping finds the number; without one, the LID is all there is.
    let lid_only = info("100200300@lid", "100200300@lid", None, false);
    let known = |lid: &str| (lid == "100200300").then(|| "5511999990000".to_owned());
    assert_eq!(mapping::parties(&lid_only, known).unwrap().from, ours("5511999990000@s.whatsapp.net"));
    let unknown = mapping::parties(&lid_only, none).unwrap();
    assert_eq!((unknown.chat, unknown.from), (ours("100200300@lid"), ours("100200300@lid")));
    // A group: the chat is the group, the author its member.
    let group =
        info("120363021033254949@g.us", "100200300:1@lid", Some("5511999990000@s.whatsapp.net"), true);
    let parties = mapping::parties(&group, none).unwrap();
    assert_eq!(
        (parties.chat, parties.from),
        (ours("120363021033254949@g.us"), ours("5511999990000@s.whatsapp.net"))
    );
}

#[test]
fn receipts_map_to_delivered_and_read() {
    assert_eq!(mapping::receipt(&ReceiptType::Delivered), Some(Receipt::Delivered));
    assert_eq!(mapping::receipt(&ReceiptType::Read), Some(Receipt::Read));
    assert_eq!(mapping::receipt(&ReceiptType::Played), Some(Receipt::Read), "a played voice note was read");
    for other in [ReceiptType::Retry, ReceiptType::Sender, ReceiptType::ReadSelf, ReceiptType::ServerError] {
        assert_eq!(mapping::receipt(&other), None);
    }
}

#[test]
fn ends_of_a_link_have_clear_reasons() {
    assert_eq!(
        mapping::logged_out_reason(ConnectFailureReason::LoggedOut),
        "logged_out: the phone unlinked this device (401)"
    );
    assert!(mapping::logged_out_reason(ConnectFailureReason::AccountLocked).contains("locked"));
    let (reason, retry) = mapping::connect_failure(ConnectFailureReason::ServiceUnavailable, Some("busy"));
    assert_eq!(
        (reason.as_str(), retry),
        ("connect_failure: WhatsApp refused the connection (503): busy", true)
    );
    assert!(!mapping::connect_failure(ConnectFailureReason::BadUserAgent, None).1);
    let ban = mapping::temporary_ban_reason(&TempBanReason::SentToTooManyPeople, chrono::Duration::hours(24));
    assert!(ban.starts_with("temporary_ban: WhatsApp banned the account for 24 hours"), "{ban}");
    assert!(mapping::temporary_ban_reason(&TempBanReason::BlockedByUsers, chrono::Duration::minutes(30))
        .contains("30 minutes"));
    assert!(mapping::STREAM_REPLACED.starts_with("stream_replaced"));
    assert!(mapping::CLIENT_OUTDATED.starts_with("client_outdated"));
}

#[test]
fn sends_fail_for_good_only_when_repeating_cannot_help() {
    use whatsapp_rust::send::SendError as Failed;
    assert_eq!(
        mapping::send_error(&Failed::InvalidRequest("bad".into())),
        SendError::Permanent { code: "invalid_request".into(), message: "bad".into() }
    );
    assert!(matches!(mapping::send_error(&Failed::NotLoggedIn), SendError::Retryable(_)));
    assert!(
        matches!(mapping::nack("479"), SendError::Permanent { code, message } if code == "whatsapp_refused" && message.contains("479"))
    );
}

#[test]
fn whatsapp_ids_derive_from_ours() {
    let (a, b) = (MessageId::generate(), MessageId::generate());
    let id = mapping::wa_message_id(&a);
    assert_eq!(id, mapping::wa_message_id(&a), "a repeated send has the same id");
    assert_ne!(id, mapping::wa_message_id(&b));
    assert!(id.starts_with("3EB0") && id.len() == 20 && id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
}

fn outbound(content: MessageContent, reply_to: Option<&str>, mentions: &[&str]) -> OutboundMessage {
    OutboundMessage {
        id: MessageId::generate(),
        to: ours("5511999990000@s.whatsapp.net"),
        content,
        reply_to: reply_to.map(str::to_owned),
        mentions: mentions.iter().map(|m| ours(m)).collect(),
        target: None,
    }
}

#[test]
fn outbound_text_location_contacts_and_poll() {
    let plain = mapping::outbound(&outbound(text("hi"), None, &[])).unwrap();
    assert_eq!(plain.conversation.as_deref(), Some("hi"));
    let reply =
        mapping::outbound(&outbound(text("yes"), Some("3EB0Q"), &["5511888880000@s.whatsapp.net"])).unwrap();
    let ext = reply.extended_text_message.as_option().unwrap();
    let context = ext.context_info.as_option().unwrap();
    assert_eq!(ext.text.as_deref(), Some("yes"));
    assert_eq!(context.stanza_id.as_deref(), Some("3EB0Q"));
    assert_eq!(context.mentioned_jid, vec!["5511888880000@s.whatsapp.net".to_owned()]);

    let location = MessageContent::Location {
        location: wagate_core::LocationContent {
            latitude: 1.5,
            longitude: 2.5,
            name: None,
            address: Some("Main St".into()),
        },
    };
    let built = mapping::outbound(&outbound(location, None, &[])).unwrap();
    let loc = built.location_message.as_option().unwrap();
    assert_eq!(
        (loc.degrees_latitude, loc.degrees_longitude, loc.address.as_deref()),
        (Some(1.5), Some(2.5), Some("Main St"))
    );

    let card = |name: &str| ContactCard {
        name: name.into(),
        phones: vec![],
        emails: vec![],
        organization: None,
        vcard: format!("BEGIN:VCARD\nFN:{name}\nEND:VCARD"),
    };
    let one =
        mapping::outbound(&outbound(MessageContent::Contacts { contacts: vec![card("Ana")] }, None, &[]))
            .unwrap();
    assert_eq!(
        one.contact_message.as_option().unwrap().vcard.as_deref(),
        Some("BEGIN:VCARD\nFN:Ana\nEND:VCARD")
    );
    let two = mapping::outbound(&outbound(
        MessageContent::Contacts { contacts: vec![card("Ana"), card("Bo")] },
        None,
        &[],
    ))
    .unwrap();
    assert_eq!(two.contacts_array_message.as_option().unwrap().contacts.len(), 2);

    let poll = MessageContent::Poll {
        poll: wagate_core::PollContent {
            question: "Q".into(),
            options: vec!["a".into(), "b".into()],
            selectable_count: 2,
        },
    };
    let built = mapping::outbound(&outbound(poll, None, &[])).unwrap();
    let poll = built.poll_creation_message_v3.as_option().unwrap();
    assert_eq!(poll.options.iter().filter_map(|o| o.option_name.as_deref()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(poll.selectable_options_count, Some(2));
}

#[test]
fn outbound_reactions_and_media() {
    let reaction = outbound(
        MessageContent::Reaction {
            reaction: wagate_core::ReactionContent { message_id: "3EB0TARGET".into(), emoji: String::new() },
        },
        None,
        &[],
    );
    assert!(mapping::outbound(&reaction).is_none(), "reactions are sent by key");
    let (key, emoji) = mapping::reaction_key(&reaction).unwrap();
    assert_eq!(
        (key.id.as_deref(), key.from_me, key.remote_jid.as_deref(), emoji.as_str()),
        (Some("3EB0TARGET"), Some(false), Some("5511999990000@s.whatsapp.net"), ""),
        "an id as given is a received message's"
    );
    let mut to_ours = reaction.clone();
    to_ours.target = Some(crate::Target { wa_id: "3EB0OURS".into(), from_me: true });
    let (key, _) = mapping::reaction_key(&to_ours).unwrap();
    assert_eq!((key.id.as_deref(), key.from_me), (Some("3EB0OURS"), Some(true)));

    let file = Uploaded {
        url: "https://mmg.whatsapp.net/x".into(),
        direct_path: "/v/x".into(),
        media_key: vec![1; 32],
        file_sha256: vec![2; 32],
        file_enc_sha256: vec![3; 32],
        file_length: 1234,
        media_key_timestamp: 99,
    };
    let media = |mime: &str, caption: Option<&str>, filename: Option<&str>, voice: bool| MediaContent {
        id: MediaId::generate(),
        mime_type: mime.into(),
        size: 1234,
        sha256: "00".into(),
        caption: caption.map(str::to_owned),
        filename: filename.map(str::to_owned),
        voice,
    };
    let image = mapping::media_message(
        MediaKind::Image,
        &media("image/png", Some("hi"), None, false),
        file.clone(),
        None,
    );
    let image = image.image_message.as_option().unwrap();
    assert_eq!((image.caption.as_deref(), image.mimetype.as_deref()), (Some("hi"), Some("image/png")));
    assert_eq!(
        (image.direct_path.as_deref(), image.file_length, image.media_key.as_deref()),
        (Some("/v/x"), Some(1234), Some(&[1u8; 32][..]))
    );
    let voice =
        mapping::media_message(MediaKind::Audio, &media("audio/ogg", None, None, true), file.clone(), None);
    let voice = voice.audio_message.as_option().unwrap();
    assert_eq!((voice.ptt, voice.mimetype.as_deref()), (Some(true), Some("audio/ogg; codecs=opus")));
    let doc = mapping::media_message(
        MediaKind::Document,
        &media("application/pdf", Some("see"), Some("a.pdf"), false),
        file.clone(),
        mapping::context(&outbound(text(""), Some("3EB0Q"), &[]), None),
    );
    let doc = doc.document_message.as_option().unwrap();
    assert_eq!((doc.file_name.as_deref(), doc.caption.as_deref()), (Some("a.pdf"), Some("see")));
    assert_eq!(doc.context_info.as_option().and_then(|c| c.stanza_id.as_deref()), Some("3EB0Q"));
    let sticker =
        mapping::media_message(MediaKind::Sticker, &media("image/webp", None, None, false), file, None);
    assert_eq!(sticker.sticker_message.as_option().unwrap().file_enc_sha256.as_deref(), Some(&[3u8; 32][..]));
    for kind in MediaKind::ALL {
        let _ = mapping::media_type(kind);
    }
}

#[test]
fn history_and_contact_updates_become_chats_and_contacts() {
    let now = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    let sync = wa::HistorySync {
        conversations: vec![
            wa::Conversation {
                id: "100200300@lid".into(),
                pn_jid: Some("5511999990000@s.whatsapp.net".into()),
                conversation_timestamp: Some(1_700_000_000),
                ..Default::default()
            },
            wa::Conversation {
                id: "120363021033254949@g.us".into(),
                name: Some("Team".into()),
                ..Default::default()
            },
            wa::Conversation { id: "status@broadcast".into(), ..Default::default() },
        ],
        pushnames: vec![wa::Pushname {
            id: Some("5511888880000@s.whatsapp.net".into()),
            pushname: Some("Bo".into()),
        }],
        ..Default::default()
    };
    let (contacts, chats) = mapping::history(&sync, now);
    let shown: Vec<_> = chats.iter().map(|c| (c.jid.as_str(), c.name.as_deref(), c.is_group)).collect();
    assert_eq!(
        shown,
        [("5511999990000@s.whatsapp.net", None, false), ("120363021033254949@g.us", Some("Team"), true)]
    );
    assert_eq!(chats[0].last_message_at.map(|t| t.timestamp()), Some(1_700_000_000));
    assert_eq!(
        (contacts[0].phone.as_deref(), contacts[0].push_name.as_deref()),
        (Some("5511888880000"), Some("Bo"))
    );

    let action = wa::sync_action_value::ContactAction {
        full_name: Some("Ana Lima".into()),
        lid_jid: Some("100200300@lid".into()),
        ..Default::default()
    };
    let contact = mapping::contact_update(&jid("5511999990000@s.whatsapp.net"), &action, now).unwrap();
    assert_eq!(
        (contact.jid.as_str(), contact.phone.as_deref(), contact.lid.as_deref(), contact.name.as_deref()),
        ("5511999990000@s.whatsapp.net", Some("5511999990000"), Some("100200300@lid"), Some("Ana Lima"))
    );
    let named = mapping::push_name(&jid("100200300@lid"), "Ana", now).unwrap();
    assert_eq!(
        (named.jid.as_str(), named.phone, named.push_name.as_deref()),
        ("100200300@lid", None, Some("Ana"))
    );
}

#[test]
fn client_versions_parse_and_own_numbers_come_from_the_device_jid() {
    assert_eq!(parse_version("2.3000.1023456789"), Some((2, 3000, 1_023_456_789)));
    for bad in ["2.3000", "2.3000.x", "2.3000.1.4", ""] {
        assert_eq!(parse_version(bad), None, "{bad}");
    }
    assert_eq!(
        mapping::phone_of(&jid("5511999990000:12@s.whatsapp.net")),
        Some(PhoneNumber::parse("5511999990000").unwrap())
    );
    assert_eq!(mapping::phone_of(&jid("100200300@lid")), None);
}

#[test]
fn edits_and_revokes_map_both_ways() {
    use wa::message::protocol_message::Type;
    let protocol = |kind: Type, edited: Option<wa::Message>| wa::message::ProtocolMessage {
        key: MessageField::some(wa::MessageKey { id: Some("3EB0ORIGINAL".into()), ..Default::default() }),
        r#type: Some(kind),
        edited_message: edited.map(MessageField::some).unwrap_or_default(),
        ..Default::default()
    };
    let revoke = wa::Message {
        protocol_message: MessageField::some(protocol(Type::REVOKE, None)),
        ..Default::default()
    };
    assert_eq!(
        content(revoke),
        MessageContent::Revoke { revoke: wagate_core::RevokeContent { message_id: "3EB0ORIGINAL".into() } }
    );
    let new_text = wa::Message { conversation: Some("fixed typo".into()), ..Default::default() };
    let edit = wa::Message {
        protocol_message: MessageField::some(protocol(Type::MESSAGE_EDIT, Some(new_text))),
        ..Default::default()
    };
    // In a disappearing-mode chat the protocol message comes wrapped.
    let wrapped = wa::Message {
        ephemeral_message: MessageField::some(wa::message::FutureProofMessage {
            message: MessageField::some(edit),
        }),
        ..Default::default()
    };
    assert_eq!(
        content(wrapped),
        MessageContent::Edit {
            edit: wagate_core::EditContent { message_id: "3EB0ORIGINAL".into(), body: "fixed typo".into() }
        }
    );

    let mut outbound = outbound(
        MessageContent::Edit {
            edit: wagate_core::EditContent { message_id: "msg_x".into(), body: "new".into() },
        },
        None,
        &[],
    );
    assert!(mapping::outbound(&outbound).is_none(), "edits go through the client's edit");
    outbound.target = Some(crate::Target { wa_id: "3EB0SENT".into(), from_me: true });
    match mapping::changed(&outbound) {
        Some(mapping::Change::Edit { wa_id, body }) => {
            assert_eq!((wa_id.as_str(), body.as_str()), ("3EB0SENT", "new"))
        }
        other => panic!("{other:?}"),
    }
    outbound.content =
        MessageContent::Revoke { revoke: wagate_core::RevokeContent { message_id: "3EB0GIVEN".into() } };
    outbound.target = None;
    assert_eq!(
        mapping::changed(&outbound),
        Some(mapping::Change::Revoke { wa_id: "3EB0GIVEN".into() }),
        "as given"
    );
}
