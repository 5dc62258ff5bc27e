//! The binary prints one JSON ready line with its URLs and serves the
//! control API there.

// Helpers outside `#[test]` functions may unwrap too: a panic is the failure report. A test
// crate exports nothing, so `pub` in it only shares helpers between its modules.
#![allow(clippy::unwrap_used, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn the_binary_prints_one_ready_line_and_serves_the_control_api() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-whatsapp"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("a ready line");
    let ready: serde_json::Value = serde_json::from_str(&line).expect("the ready line is JSON");

    let ws_url = ready["ws_url"].as_str().expect("ws_url");
    let control_url = ready["control_url"].as_str().expect("control_url");
    assert!(ws_url.starts_with("ws://127.0.0.1:") && ws_url.ends_with("/ws/chat"), "{ws_url}");
    assert!(
        control_url.starts_with("http://127.0.0.1:") && control_url.ends_with("/control"),
        "{control_url}"
    );
    assert!(ready["media_host"].as_str().is_some_and(|h| !h.is_empty()), "{ready}");

    let accounts: serde_json::Value = ureq::get(&format!("{control_url}/accounts"))
        .call()
        .expect("GET accounts")
        .body_mut()
        .read_json()
        .expect("json");
    assert_eq!(accounts, serde_json::json!([]));

    child.kill().expect("stop the binary");
    let _ = child.wait();
}
