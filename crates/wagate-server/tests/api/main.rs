//! Integration tests: each test runs its own server on port 0 with a temp data dir and talks
//! to it over HTTP like a user would.

mod campaigns;
mod cluster;
mod common;
mod contacts;
mod events;
mod hooks;
mod input;
mod kinds;
mod media;
mod messages;
mod openapi;
mod operations;
mod pacing;
mod receiver;
mod restart;
mod scheduled;
mod sessions;
mod streams;
mod templates;
mod web;
mod web_network;
mod webhooks;
