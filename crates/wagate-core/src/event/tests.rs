//! Golden tests: each event type's JSON, byte for byte, as webhook receivers have always got it.

use super::*;
use crate::{Direction, MessageContent, Sender, TextContent};

fn at(ms: i64) -> Timestamp {
    chrono::DateTime::from_timestamp_millis(1_764_417_600_000 + ms).expect("a valid time")
}

fn event(session: Option<&str>, data: EventData) -> Event {
    Event {
        id: EventId::from_seq(42),
        session_id: session.map(|s| SessionId::parse(s).expect("a session id")),
        org_id: None,
        created_at: at(123),
        data,
    }
}

/// The event serializes to exactly `expected`, and reads back as itself; its data alone
/// (as the log stores it) reads back too.
fn assert_golden(event: Event, expected: &str) {
    assert_eq!(serde_json::to_string(&event).expect("serializes"), expected);
    assert_eq!(serde_json::from_str::<Event>(expected).expect("deserializes"), event);
    let stored = event.data.to_json();
    assert_eq!(EventData::from_json(event.kind(), &stored).expect("reads back"), event.data);
}

fn message_id() -> MessageId {
    MessageId::parse("msg_01ARZ3NDEKTSV4RRFFQ69G5FAV").expect("a message id")
}

#[test]
fn session_status_when_created() {
    let data = SessionStatusData {
        status: SessionStatus::Created,
        reason: None,
        phone: None,
        jid: None,
        pairing_code: None,
        expires_at: None,
        node_id: None,
    };
    assert_golden(
        event(Some("sales-1"), EventData::SessionStatus(data)),
        r#"{"id":"evt_0000000000000042","type":"session.status","session_id":"sales-1","created_at":"2025-11-29T12:00:00.123Z","data":{"status":"created","reason":null,"phone":null,"jid":null}}"#,
    );
}

#[test]
fn session_status_with_a_pairing_code_and_node() {
    let data = SessionStatusData {
        status: SessionStatus::PairingCode,
        reason: Some("waiting".into()),
        phone: Some("15550001111".into()),
        jid: Some("15550001111@s.whatsapp.net".into()),
        pairing_code: Some("ABCD-1234".into()),
        expires_at: Some(at(180_000)),
        node_id: Some("node-a".into()),
    };
    assert_golden(
        event(Some("sales-1"), EventData::SessionStatus(data)),
        r#"{"id":"evt_0000000000000042","type":"session.status","session_id":"sales-1","created_at":"2025-11-29T12:00:00.123Z","data":{"status":"pairing_code","reason":"waiting","phone":"15550001111","jid":"15550001111@s.whatsapp.net","pairing_code":"ABCD-1234","expires_at":"2025-11-29T12:03:00Z","node_id":"node-a"}}"#,
    );
}

#[test]
fn session_qr() {
    let data = SessionQrData { code: "2@abc,def".into(), expires_at: at(60_000) };
    assert_golden(
        event(Some("sales-1"), EventData::SessionQr(data)),
        r#"{"id":"evt_0000000000000042","type":"session.qr","session_id":"sales-1","created_at":"2025-11-29T12:00:00.123Z","data":{"code":"2@abc,def","expires_at":"2025-11-29T12:01:00Z"}}"#,
    );
}

#[test]
fn message_received() {
    let message = Message {
        id: message_id(),
        session_id: SessionId::parse("sales-1").expect("a session id"),
        direction: Direction::In,
        chat: "15550002222@s.whatsapp.net".into(),
        from: Some("15550002222@s.whatsapp.net".into()),
        to: "15550001111@s.whatsapp.net".into(),
        content: MessageContent::Text { text: TextContent { body: "Hi".into() } },
        status: MessageStatus::Received,
        status_reason: None,
        wa_id: Some("3EB0AA".into()),
        scheduled_at: None,
        context: None,
        mentions: Vec::new(),
        sender: Some(Sender { lid: Some("123@lid".into()), push_name: Some("Bob".into()) }),
        campaign_id: None,
        next_attempt_at: None,
        created_at: at(100),
        updated_at: at(123),
        status_history: Vec::new(),
    };
    assert_golden(
        event(Some("sales-1"), EventData::MessageReceived(Box::new(message))),
        r#"{"id":"evt_0000000000000042","type":"message.received","session_id":"sales-1","created_at":"2025-11-29T12:00:00.123Z","data":{"id":"msg_01ARZ3NDEKTSV4RRFFQ69G5FAV","session_id":"sales-1","direction":"in","chat":"15550002222@s.whatsapp.net","from":"15550002222@s.whatsapp.net","to":"15550001111@s.whatsapp.net","type":"text","text":{"body":"Hi"},"status":"received","status_reason":null,"wa_id":"3EB0AA","sender":{"lid":"123@lid","push_name":"Bob"},"created_at":"2025-11-29T12:00:00.100Z","updated_at":"2025-11-29T12:00:00.123Z"}}"#,
    );
}

fn status(status: MessageStatus) -> MessageStatusData {
    MessageStatusData {
        message_id: message_id(),
        status,
        reason: None,
        chat: "15550002222@s.whatsapp.net".into(),
        to: "15550002222@s.whatsapp.net".into(),
        wa_id: None,
        scheduled_at: None,
        campaign_id: None,
    }
}

#[test]
fn message_status() {
    let data = MessageStatusData { reason: Some("not_on_whatsapp".into()), ..status(MessageStatus::Failed) };
    assert_golden(
        event(Some("sales-1"), EventData::MessageStatus(data)),
        r#"{"id":"evt_0000000000000042","type":"message.status","session_id":"sales-1","created_at":"2025-11-29T12:00:00.123Z","data":{"message_id":"msg_01ARZ3NDEKTSV4RRFFQ69G5FAV","status":"failed","reason":"not_on_whatsapp","chat":"15550002222@s.whatsapp.net","to":"15550002222@s.whatsapp.net","wa_id":null}}"#,
    );
}

#[test]
fn message_status_scheduled_from_a_campaign() {
    let data = MessageStatusData {
        scheduled_at: Some(at(3_600_000)),
        campaign_id: Some(CampaignId::parse("cmp_01ARZ3NDEKTSV4RRFFQ69G5FAV").expect("a campaign id")),
        ..status(MessageStatus::Scheduled)
    };
    assert_golden(
        event(Some("sales-1"), EventData::MessageStatus(data)),
        r#"{"id":"evt_0000000000000042","type":"message.status","session_id":"sales-1","created_at":"2025-11-29T12:00:00.123Z","data":{"message_id":"msg_01ARZ3NDEKTSV4RRFFQ69G5FAV","status":"scheduled","reason":null,"chat":"15550002222@s.whatsapp.net","to":"15550002222@s.whatsapp.net","wa_id":null,"scheduled_at":"2025-11-29T13:00:00Z","campaign_id":"cmp_01ARZ3NDEKTSV4RRFFQ69G5FAV"}}"#,
    );
}

#[test]
fn webhook_disabled() {
    let data = WebhookDisabledData {
        webhook_id: WebhookId::parse("wh_01ARZ3NDEKTSV4RRFFQ69G5FAV").expect("a webhook id"),
        url: "https://example.com/hook".into(),
        session_id: None,
        reason: "failing since 2025-11-24".into(),
        failing_since: at(-432_000_000),
    };
    assert_golden(
        event(None, EventData::WebhookDisabled(data)),
        r#"{"id":"evt_0000000000000042","type":"webhook.disabled","session_id":null,"created_at":"2025-11-29T12:00:00.123Z","data":{"webhook_id":"wh_01ARZ3NDEKTSV4RRFFQ69G5FAV","url":"https://example.com/hook","session_id":null,"reason":"failing since 2025-11-24","failing_since":"2025-11-24T12:00:00Z"}}"#,
    );
}

#[test]
fn campaign_status() {
    let data = CampaignStatusData {
        campaign_id: CampaignId::parse("cmp_01ARZ3NDEKTSV4RRFFQ69G5FAV").expect("a campaign id"),
        name: "November promo".into(),
        status: CampaignStatus::Running,
        total: 3,
        counts: CampaignCounts { queued: 2, sent: 1, ..Default::default() },
    };
    assert_golden(
        event(Some("sales-1"), EventData::CampaignStatus(data)),
        r#"{"id":"evt_0000000000000042","type":"campaign.status","session_id":"sales-1","created_at":"2025-11-29T12:00:00.123Z","data":{"campaign_id":"cmp_01ARZ3NDEKTSV4RRFFQ69G5FAV","name":"November promo","status":"running","total":3,"counts":{"scheduled":0,"queued":2,"sending":0,"sent":1,"delivered":0,"read":0,"failed":0,"canceled":0}}}"#,
    );
}

#[test]
fn filters_match_exact_types_and_prefixes() {
    assert!(EventType::MessageStatus.matches("message.status"));
    assert!(EventType::MessageStatus.matches("message.*"));
    assert!(EventType::MessageStatus.matches("*"));
    assert!(!EventType::MessageStatus.matches("session.*"));
    assert!(!EventType::MessageStatus.matches("mess.*"));
    assert!(!EventType::SessionQr.matches("session.status"));
}
