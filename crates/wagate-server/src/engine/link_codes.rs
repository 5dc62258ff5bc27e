//! The QR or pairing code a linking session shows. The node running the session holds it in
//! the session's slot; every code is also recorded in the event log (`session.qr`, or
//! `session.status` with a pairing code), so any node can answer for it.

use wagate_core::{EventData, EventType, Session, SessionId, SessionStatus, SessionStatusData, Timestamp};
use wagate_store::{EventQuery, StoreError};

use super::Engine;

/// A QR or pairing code a linking session shows.
#[derive(Debug, Clone)]
pub(crate) enum LinkCode {
    Qr { code: String, expires_at: Timestamp },
    Pairing { code: String, expires_at: Timestamp },
}

impl LinkCode {
    /// The code an event shows, if it shows one.
    fn shown_by(event: EventData) -> Option<Self> {
        match event {
            EventData::SessionQr(qr) => Some(LinkCode::Qr { code: qr.code, expires_at: qr.expires_at }),
            EventData::SessionStatus(SessionStatusData {
                pairing_code: Some(code),
                expires_at: Some(expires_at),
                ..
            }) => Some(LinkCode::Pairing { code, expires_at }),
            _ => None,
        }
    }

    fn expires_at(&self) -> Timestamp {
        match self {
            LinkCode::Qr { expires_at, .. } | LinkCode::Pairing { expires_at, .. } => *expires_at,
        }
    }
}

impl Engine {
    /// Holds the code the session shows now (None once linked, or no longer linking).
    pub(super) fn set_link_code(&self, id: &SessionId, code: Option<LinkCode>) {
        let mut slots = self.slots.lock();
        match code {
            Some(code) => slots.entry(id.clone()).or_default().link_code = Some(code),
            None => {
                if let Some(slot) = slots.get_mut(id) {
                    slot.link_code = None;
                }
            }
        }
    }

    /// The code a linking session shows now: this node's if it runs the session, else the
    /// last one the node running it recorded in the log (while it has not expired).
    pub(crate) async fn link_code(&self, session: &Session) -> Result<Option<LinkCode>, StoreError> {
        let held = self.slots.lock().get(&session.id).and_then(|slot| slot.link_code.clone());
        if held.is_some() {
            return Ok(held);
        }
        if !matches!(session.status, SessionStatus::Qr | SessionStatus::PairingCode) {
            return Ok(None);
        }
        let mut query = EventQuery {
            session_id: Some(session.id.clone()),
            types: vec![EventType::SessionQr, EventType::SessionStatus],
            limit: 1000,
            ..Default::default()
        };
        let mut latest = None;
        loop {
            let page = self.store.list_events(query.clone()).await?;
            let Some(last) = page.last() else { break };
            query.after = Some(last.id);
            latest = page.into_iter().rev().find_map(|event| LinkCode::shown_by(event.data)).or(latest);
        }
        Ok(latest.filter(|code| code.expires_at() > self.now()))
    }
}
