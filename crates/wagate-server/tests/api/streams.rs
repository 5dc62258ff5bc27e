//! Live streams: SSE and WebSocket deliver events as they are committed, resume after the
//! last event seen without a gap or a repeat, filter, and cut off consumers that fall behind.

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{nz, TestServer, KEY};

/// An open Server-Sent Events response, read frame by frame.
struct Sse {
    response: reqwest::Response,
    buffer: String,
}

/// One SSE frame: its `id`, `event` and `data` fields.
#[derive(Debug)]
struct Frame {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

impl Sse {
    async fn open(server: &TestServer, query: &str, last_event_id: Option<&str>) -> Self {
        let mut request = server.request(reqwest::Method::GET, &format!("/v1/events/stream{query}"));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("stream opens");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { response, buffer: String::new() }
    }

    /// The next frame that carries data (keep-alive comments skipped).
    async fn next(&mut self) -> Frame {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut frame = Frame { id: None, event: None, data: String::new() };
                for line in block.lines() {
                    if let Some(id) = line.strip_prefix("id:") {
                        frame.id = Some(id.trim().to_owned());
                    } else if let Some(event) = line.strip_prefix("event:") {
                        frame.event = Some(event.trim().to_owned());
                    } else if let Some(data) = line.strip_prefix("data:") {
                        frame.data.push_str(data.trim_start());
                    }
                }
                if !frame.data.is_empty() {
                    return frame;
                }
                continue;
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), self.response.chunk())
                .await
                .expect("a frame within 10 s")
                .expect("stream readable")
                .expect("stream still open");
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    async fn events(&mut self, count: usize) -> Vec<Value> {
        let mut events = Vec::with_capacity(count);
        while events.len() < count {
            let frame = self.next().await;
            let event: Value = serde_json::from_str(&frame.data).expect("JSON data");
            assert_eq!(frame.id.as_deref(), event["id"].as_str(), "the SSE id is the event id");
            events.push(event);
        }
        events
    }
}

fn ids(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn sse_resumes_after_last_event_id_without_gap_or_repeat() {
    let server = TestServer::start().await;
    let mut stream = Sse::open(&server, "", None).await;
    for id in ["a", "b", "c"] {
        server.create_session(id).await;
    }
    let first = stream.events(2).await;
    drop(stream);

    // Events keep coming while the consumer is away.
    for id in ["d", "e"] {
        server.create_session(id).await;
    }
    server.link("f", "15550003333").await;
    let logged = server.all_events().await;
    let mut stream = Sse::open(&server, "", first[1]["id"].as_str()).await;
    let rest = stream.events(logged.len() - 2).await;

    let mut seen = ids(&first);
    seen.extend(ids(&rest));
    assert_eq!(seen, ids(&logged), "every event once, in log order");

    // And it keeps following live.
    server.create_session("g").await;
    let live = stream.events(1).await;
    assert_eq!(live[0]["session_id"], "g");
}

#[tokio::test]
async fn sse_filters_by_session_and_type() {
    let server = TestServer::start().await;
    let mut stream = Sse::open(&server, "?session_id=bob&types=session.status", None).await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;
    let events = stream.events(4).await;
    for event in &events {
        assert_eq!(
            (event["session_id"].as_str(), event["type"].as_str()),
            (Some("bob"), Some("session.status"))
        );
    }
    let statuses: Vec<&str> = events.iter().map(|e| e["data"]["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["created", "connecting", "qr", "connected"]);

    let (status, body) = server.get("/v1/events/stream?types=nope").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let response = server
        .request(reqwest::Method::GET, "/v1/events/stream")
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn open_ws(
    server: &TestServer,
    query: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!("{}/v1/events/ws{query}", server.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    let (socket, _) = tokio_tungstenite::connect_async(request).await.expect("WebSocket opens");
    socket
}

async fn next_event(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) -> Value {
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("socket open")
            .expect("readable");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test]
async fn websocket_takes_filters_and_resume_id_from_the_first_message() {
    let server = TestServer::start().await;
    server.create_session("alice").await;
    let (_, body) = server.get("/v1/events").await;
    let resume_from = body["next_after"].as_str().unwrap().to_owned();

    server.create_session("bob").await;
    server.create_session("carol").await;
    let mut socket = open_ws(&server, "").await;
    let hello = json!({ "after": resume_from, "types": ["session.*"], "session_id": "carol" });
    socket.send(Message::Text(hello.to_string().into())).await.unwrap();
    let event = next_event(&mut socket).await;
    assert_eq!(
        (event["session_id"].as_str(), event["data"]["status"].as_str()),
        (Some("carol"), Some("created"))
    );
    server.post("/v1/sessions/bob/connect", json!({})).await;
    server.post("/v1/sessions/carol/connect", json!({})).await;
    let event = next_event(&mut socket).await;
    assert_eq!(
        (event["session_id"].as_str(), event["data"]["status"].as_str()),
        (Some("carol"), Some("connecting"))
    );

    // Query parameters work too, and a bad subscribe message closes with the reason.
    let mut socket = open_ws(&server, &format!("?after={resume_from}&session_id=bob")).await;
    assert_eq!(next_event(&mut socket).await["session_id"], "bob");
    let mut socket = open_ws(&server, "").await;
    socket.send(Message::Text(r#"{"types":"nope"}"#.into())).await.unwrap();
    match socket.next().await {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(frame.code, CloseCode::Policy);
            assert!(frame.reason.contains("types"), "{}", frame.reason);
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn a_consumer_that_falls_behind_is_cut_off_with_a_reason() {
    let server = TestServer::start_with(|c| c.events.stream_buffer = nz(4)).await;
    server.create_session("alice").await;
    // Queued while alice is not linked; linking her claims 64 at once: 64 events in one commit.
    server.send_texts("alice", "15550002222", "m", 100).await;
    // From the current end of the log, so the next event counts even if it is committed
    // before the server has set the stream up.
    let last = server.all_events().await.last().unwrap()["id"].as_str().unwrap().to_owned();
    let mut socket = open_ws(&server, &format!("?types=message.status&after={last}")).await;
    server.send_text("alice", "15550002222", "following").await;
    assert_eq!(next_event(&mut socket).await["data"]["status"], "queued");

    server.link("alice", "15550001111").await;
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(frame.code, CloseCode::Policy);
                assert!(frame.reason.starts_with("slow_consumer"), "{}", frame.reason);
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_shutdown_ends_open_streams_with_a_reason() {
    let mut server = TestServer::start().await;
    let mut stream = Sse::open(&server, "", None).await;
    let mut socket = open_ws(&server, "?types=session.*").await;
    tokio::time::timeout(std::time::Duration::from_secs(10), server.stop())
        .await
        .expect("stops despite open streams");
    let frame = stream.next().await;
    assert_eq!(frame.event.as_deref(), Some("close"));
    assert_eq!(serde_json::from_str::<Value>(&frame.data).unwrap()["code"], "shutting_down");
    match socket.next().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected a close frame, got {other:?}"),
    }
}
