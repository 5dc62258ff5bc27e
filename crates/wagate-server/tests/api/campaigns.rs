//! Campaigns: one body to many recipients, with progress, pause, resume, cancel and
//! per-recipient results.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{nz, TestServer};

/// Polls a campaign until `done` holds; campaigns of thousands take longer than `eventually`.
async fn wait_for_campaign(server: &TestServer, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (status, campaign) = server.get(path).await;
        assert_eq!(status, StatusCode::OK, "{campaign}");
        if done(&campaign) {
            return campaign;
        }
        assert!(tokio::time::Instant::now() < deadline, "campaign not done in time: {campaign}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn count(campaign: &Value, status: &str) -> u64 {
    campaign["counts"][status].as_u64().unwrap_or_else(|| panic!("counts.{status} in {campaign}"))
}

/// Messages that have their send result (sent or beyond, or failed).
fn finished(campaign: &Value) -> u64 {
    ["sent", "delivered", "read", "failed"].iter().map(|s| count(campaign, s)).sum()
}

async fn create(server: &TestServer, session: &str, body: Value) -> (String, Value) {
    let (status, created) = server.post(&format!("/v1/sessions/{session}/campaigns"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let path = format!("/v1/sessions/{session}/campaigns/{}", created["id"].as_str().unwrap());
    (path, created)
}

#[tokio::test]
async fn a_campaign_of_ten_thousand_completes_with_the_right_counts() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let mut recipients: Vec<Value> = (0..10_000)
        .map(|i| {
            // Every 100th number ends in 0000: not on WhatsApp.
            let to = if i % 100 == 0 { format!("1555{:03}0000", i / 100) } else { format!("1556{i:07}") };
            json!({ "to": to, "params": { "name": format!("N{i}") } })
        })
        .collect();
    recipients.push(json!({ "to": "not a number" }));
    recipients.push(json!({ "to": "+1 556 000 0001", "params": { "name": "again" } }));
    recipients.push(json!({ "to": "15569999999" }));
    let (path, created) = create(
        &server,
        "alice",
        json!({ "name": "promo", "content": { "type": "text", "text": { "body": "Hi {{name}}" } }, "recipients": recipients }),
    )
    .await;
    assert_eq!(created["total"], 10_000);
    assert_eq!(created["rejected"], 3);
    let reasons: Vec<(u64, &str)> = created["rejected_recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(reasons, [(10_000, "invalid_number"), (10_001, "duplicate"), (10_002, "missing_param")]);

    let done = wait_for_campaign(&server, &path, |c| count(c, "read") + count(c, "failed") == 10_000).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(count(&done, "read"), 9_900);
    assert_eq!(count(&done, "failed"), 100);
    assert_eq!(done["failed_by_reason"], json!({ "recipient_not_on_whatsapp": 100 }));
    for status in ["scheduled", "queued", "sending", "sent", "delivered", "canceled"] {
        assert_eq!(count(&done, status), 0, "{status}");
    }

    // Per-recipient results, paged.
    let (_, failed) = server.get(&format!("{path}/recipients?status=failed&limit=60")).await;
    assert_eq!(failed["data"].as_array().unwrap().len(), 60);
    let after = failed["next_after"].as_str().expect("a next page");
    let (_, rest) = server.get(&format!("{path}/recipients?status=failed&limit=60&after={after}")).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 40);
    assert!(rest["next_after"].is_null());
    assert_eq!(failed["data"][0]["to"], "15550000000@s.whatsapp.net");
    assert_eq!(failed["data"][0]["status_reason"], "recipient_not_on_whatsapp");
    let (_, first) = server.get(&format!("{path}/recipients?limit=2")).await;
    assert_eq!(first["data"][1]["text"]["body"], "Hi N1", "each recipient gets their own values");
    assert_eq!(first["data"][1]["campaign_id"], created["id"]);

    // One event for the creation and one for the completion, not one per message.
    let events = server.all_events().await;
    let campaign_events: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "campaign.status")
        .map(|e| e["data"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(campaign_events, ["running", "completed"]);
    let (_, list) = server.get("/v1/sessions/alice/campaigns").await;
    assert_eq!(list["data"][0]["id"], created["id"]);
}

/// A session that sends one message every `interval_ms`, so a campaign takes a while.
async fn slow_session(server: &TestServer, id: &str, phone: &str, interval_ms: u64) {
    let (status, body) = server
        .post(
            "/v1/sessions",
            json!({ "id": id, "connector": "sim", "config": { "pacing": { "min_interval_ms": interval_ms } } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.link(id, phone).await;
}

fn recipients(count: usize) -> Vec<Value> {
    (0..count).map(|i| json!({ "to": format!("1557{i:07}") })).collect()
}

#[tokio::test]
async fn pause_holds_a_campaign_resume_continues_it_and_direct_sends_go_first() {
    let server = TestServer::start().await;
    slow_session(&server, "alice", "15550001111", 40).await;
    let body = json!({ "name": "slow", "content": { "type": "text", "text": { "body": "hello" } }, "recipients": recipients(30) });
    let (path, _) = create(&server, "alice", body).await;
    wait_for_campaign(&server, &path, |c| finished(c) >= 3).await;

    let (status, paused) = server.post(&format!("{path}/pause"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["status"], "paused");
    // What was being sent finishes; then nothing moves.
    let settled = wait_for_campaign(&server, &path, |c| count(c, "sending") == 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, still) = server.get(&path).await;
    assert_eq!(finished(&still), finished(&settled), "a paused campaign sends nothing");
    assert!(count(&still, "queued") > 0, "{still}");
    let (status, again) = server.post(&format!("{path}/pause"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["error"]["code"], "campaign_state");

    // A direct send while the campaign is paused goes at once; resumed, the campaign goes on.
    let direct = server.send_text("alice", "15550009999", "urgent").await;
    server.wait_until_sent(direct["id"].as_str().unwrap()).await;
    let (status, resumed) = server.post(&format!("{path}/resume"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    assert_eq!(resumed["status"], "running");
    let direct = server.send_text("alice", "15550009999", "urgent again").await;
    let sent = server.wait_until_sent(direct["id"].as_str().unwrap()).await;
    let (_, during) = server.get(&path).await;
    assert!(count(&during, "queued") > 0, "the direct send went before the campaign's rest: {during} {sent}");
    let done = wait_for_campaign(&server, &path, |c| c["status"] == "completed").await;
    assert_eq!(finished(&done), 30);
}

#[tokio::test]
async fn cancel_calls_off_what_is_not_sent() {
    let server = TestServer::start().await;
    slow_session(&server, "alice", "15550001111", 50).await;
    let body = json!({ "name": "slow", "content": { "type": "text", "text": { "body": "hello" } }, "recipients": recipients(30) });
    let (path, _) = create(&server, "alice", body).await;
    wait_for_campaign(&server, &path, |c| finished(c) >= 2).await;

    let (status, canceled) = server.post(&format!("{path}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!(canceled["status"], "canceled");
    let settled = wait_for_campaign(&server, &path, |c| count(c, "sending") == 0).await;
    assert!(count(&settled, "canceled") >= 25, "{settled}");
    assert_eq!(finished(&settled) + count(&settled, "canceled"), 30, "{settled}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, later) = server.get(&path).await;
    assert_eq!(finished(&later), finished(&settled), "nothing is sent after a cancel");
    let (_, canceled_list) = server.get(&format!("{path}/recipients?status=canceled&limit=1")).await;
    assert_eq!(canceled_list["data"][0]["status_reason"], "campaign canceled");
    for action in ["resume", "pause", "cancel"] {
        let (status, body) = server.post(&format!("{path}/{action}"), json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}: {body}");
    }
}

#[tokio::test]
async fn recipients_can_come_as_a_csv_and_fill_a_template() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let (status, body) = server
        .post(
            "/v1/templates",
            json!({ "name": "hello", "content": { "type": "text", "text": { "body": "Hi {{name}} from {{shop}}" } } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let campaign = json!({ "name": "csv", "template": { "name": "hello", "params": { "shop": "Acme", "name": "friend" } } });
    // A spreadsheet export: byte order mark, a `phone` column, an empty cell.
    let csv = "\u{feff}phone,name\n15558000001,Ann\n\"+1 555 800 0002\",\n15558000001,Dup\nnope,X\n";
    let boundary = "wagate-test-boundary";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"campaign\"\r\nContent-Type: application/json\r\n\r\n{campaign}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"recipients\"; filename=\"list.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n\
         --{boundary}--\r\n"
    );
    let request = server
        .request(reqwest::Method::POST, "/v1/sessions/alice/campaigns")
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(form);
    let (status, created) = server.call(request).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["total"], 2);
    assert_eq!(created["template"], "hello");
    let reasons: Vec<&str> = created["rejected_recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["duplicate", "invalid_number"]);
    let path = format!("/v1/sessions/alice/campaigns/{}", created["id"].as_str().unwrap());
    wait_for_campaign(&server, &path, |c| c["status"] == "completed").await;
    let (_, sent) = server.get(&format!("{path}/recipients")).await;
    let bodies: Vec<&str> =
        sent["data"].as_array().unwrap().iter().map(|m| m["text"]["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["Hi Ann from Acme", "Hi friend from Acme"]);
}

#[tokio::test]
async fn a_scheduled_campaign_waits_for_its_time() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let at = (chrono::Utc::now() + chrono::Duration::milliseconds(800)).to_rfc3339();
    let body = json!({ "name": "later", "content": { "type": "text", "text": { "body": "hi" } }, "recipients": recipients(3), "scheduled_at": at });
    let (path, created) = create(&server, "alice", body).await;
    assert_eq!(created["status"], "scheduled");
    assert_eq!(count(&created, "scheduled"), 3);
    let done = wait_for_campaign(&server, &path, |c| c["status"] == "completed").await;
    assert_eq!(finished(&done), 3);
    let (_, sent) = server.get(&format!("{path}/recipients?limit=1")).await;
    let (_, message) = server.get(&format!("/v1/messages/{}", sent["data"][0]["id"].as_str().unwrap())).await;
    assert_eq!(crate::common::history(&message)[..2], ["scheduled", "sending"]);
    let time = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    // The time as stored (to the millisecond).
    let due = time(&created["scheduled_at"]);
    assert!(time(&message["status_history"][1]["at"]) >= due, "not sent before its time");
}

#[tokio::test]
async fn bad_campaigns_are_refused_with_the_reason() {
    let server = TestServer::start_with(|c| c.campaigns.max_recipients = nz(5)).await;
    server.link("alice", "15550001111").await;
    let text = json!({ "type": "text", "text": { "body": "Hi {{name}}" } });
    let cases = [
        (
            json!({ "name": "x", "content": text, "recipients": [] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "recipients",
        ),
        (
            json!({ "name": "x", "content": text, "recipients": recipients(6) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "recipients",
        ),
        (
            json!({ "name": " ", "content": text, "recipients": recipients(1) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (json!({ "name": "x", "recipients": recipients(1) }), StatusCode::UNPROCESSABLE_ENTITY, "content"),
        (
            json!({ "name": "x", "content": text, "template": { "name": "t" }, "recipients": recipients(1) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "template",
        ),
        (
            json!({ "name": "x", "content": text, "recipients": recipients(1), "scheduled_at": "tomorrow" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "scheduled_at",
        ),
    ];
    for (body, status, field) in cases {
        let (got, answer) = server.post("/v1/sessions/alice/campaigns", body.clone()).await;
        assert_eq!(got, status, "{body} -> {answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
    }
    // Every recipient rejected: nothing is created, and the answer says why.
    let (status, answer) = server
        .post(
            "/v1/sessions/alice/campaigns",
            json!({ "name": "x", "content": text, "recipients": [{ "to": "15550002222" }] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["code"], "no_valid_recipients");
    assert_eq!(answer["error"]["details"]["rejected"][0]["reason"], "missing_param");
    let (_, list) = server.get("/v1/sessions/alice/campaigns").await;
    assert_eq!(list["data"], json!([]));

    let (status, answer) = server
        .post(
            "/v1/sessions/alice/campaigns",
            json!({ "name": "x", "template": { "name": "nope" }, "recipients": recipients(1) }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["code"], "template_not_found");
    let (status, _) = server
        .post(
            "/v1/sessions/nobody/campaigns",
            json!({ "name": "x", "content": text, "recipients": recipients(1) }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, answer) = server.get("/v1/sessions/alice/campaigns/cmp_nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, answer) = server
        .call(
            server
                .request(reqwest::Method::POST, "/v1/sessions/alice/campaigns")
                .header("content-type", "application/json")
                .body("{"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}

#[tokio::test]
async fn an_image_template_campaign_gives_each_recipient_their_caption() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let image = json!({ "data": crate::common::png_base64(), "caption": "{{name}}, 20% off for you" });
    let (status, body) = server
        .post("/v1/templates", json!({ "name": "promo", "content": { "type": "image", "image": image } }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let recipients = json!([
        { "to": "15558000001", "params": { "name": "Ann" } },
        { "to": "15558000002", "params": { "name": "Bob" } },
        { "to": "15558000003" },
    ]);
    let campaign = json!({ "name": "promo", "template": { "name": "promo" }, "recipients": recipients });
    let (path, created) = create(&server, "alice", campaign).await;
    assert_eq!(created["total"], 2);
    assert_eq!(created["rejected_recipients"][0]["reason"], "missing_param");
    assert_eq!(created["rejected_recipients"][0]["message"], "no value for {{name}}");
    wait_for_campaign(&server, &path, |c| c["status"] == "completed").await;
    let (_, sent) = server.get(&format!("{path}/recipients")).await;
    let captions: Vec<(&str, &str)> = sent["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["type"].as_str().unwrap(), m["image"]["caption"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(captions, [("image", "Ann, 20% off for you"), ("image", "Bob, 20% off for you")]);
}
