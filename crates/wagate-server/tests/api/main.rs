//! Integration tests: each test runs its own server on port 0 with a temp data dir and talks
//! to it over HTTP like a user would.

// Helpers outside `#[test]` functions may unwrap too: a panic is the failure report. A test
// crate exports nothing, so `pub` in it only shares helpers between its modules.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod audit;
mod campaigns;
mod cluster;
mod common;
mod contacts;
mod events;
mod hardening;
mod hooks;
mod input;
mod isolation;
mod jwt;
mod keys;
mod kinds;
mod media;
mod messages;
mod openapi;
mod operations;
mod orgs;
mod pacing;
mod rate_limits;
mod receiver;
mod restart;
mod retention;
mod scheduled;
mod secrets;
mod sessions;
mod streams;
mod templates;
mod ui;
mod web;
mod web_network;
mod webhooks;
