//! A webhook receiver for tests: a real HTTP server that records what it is sent and answers
//! as the test scripts it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::common::eventually;

/// How the receiver answers a request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// This status with a body of about this many bytes: `x` then `é`s (two bytes each).
    Body(u16, usize),
    /// This status with this body.
    Text(u16, &'static str),
    /// Never answer (the sender times out).
    Hang,
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Hit {
    pub fn event(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

#[derive(Default)]
struct Script {
    hits: Vec<Hit>,
    next: VecDeque<Answer>,
    otherwise: Option<Answer>,
    in_flight: usize,
    most_in_flight: usize,
}

#[derive(Clone, Default)]
pub struct Receiver {
    script: Arc<Mutex<Script>>,
    pub url: String,
    port: u16,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Receiver {
    /// A receiver on a free port answering 200.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let receiver = Self { url: format!("http://127.0.0.1:{port}/hook"), port, ..Self::default() };
        receiver.serve(listener);
        receiver
    }

    /// The URL of a receiver that is not running yet; [`Receiver::up`] starts it.
    pub async fn down() -> Self {
        let receiver = Self::start().await;
        receiver.stop();
        receiver
    }

    /// Starts answering on the receiver's port again.
    pub async fn up(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.expect("rebind the receiver's port");
        self.serve(listener);
    }

    pub fn stop(&self) {
        if let Some(task) = self.task.lock().unwrap().take() {
            task.abort();
        }
    }

    fn serve(&self, listener: TcpListener) {
        let app = Router::new().fallback(receive).with_state(Arc::clone(&self.script));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// Answers the next requests with `answers`, in order.
    pub fn answer_next(&self, answers: &[Answer]) {
        self.script.lock().unwrap().next.extend(answers.iter().copied());
    }

    /// Answers every request (after the scripted ones) with `answer`.
    pub fn answer_always(&self, answer: Answer) {
        self.script.lock().unwrap().otherwise = Some(answer);
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.script.lock().unwrap().hits.clone()
    }

    /// The most requests it had open at once.
    pub fn most_in_flight(&self) -> usize {
        self.script.lock().unwrap().most_in_flight
    }

    /// Waits until it has been sent at least `count` requests.
    pub async fn wait_for(&self, count: usize) -> Vec<Hit> {
        eventually(|| async {
            let hits = self.hits();
            (hits.len() >= count).then_some(hits)
        })
        .await
    }
}

async fn receive(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let answer = {
        let mut script = script.lock().unwrap();
        script.hits.push(Hit { headers, body });
        script.in_flight += 1;
        script.most_in_flight = script.most_in_flight.max(script.in_flight);
        script.next.pop_front().or(script.otherwise).unwrap_or(Answer::Status(200))
    };
    let status = |code| StatusCode::from_u16(code).expect("status code");
    let reply = match answer {
        Answer::Status(code) => (status(code), String::new()),
        Answer::Body(code, size) => (status(code), format!("x{}", "é".repeat(size / 2))),
        Answer::Text(code, text) => (status(code), text.to_owned()),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3_600)).await;
            (StatusCode::OK, String::new())
        }
    };
    script.lock().unwrap().in_flight -= 1;
    reply
}
