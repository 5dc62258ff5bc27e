//! Who owns a session, and what its organization may send, kept in memory for the send path.
//! A send used to read its session and its organization from the database before queueing the
//! message: two round trips per request for facts that almost never change.
//!
//! - A session's organization is fixed for the session's life, so it is remembered until the
//!   session is deleted. The accept transaction checks it again ([`NewOutbound::org_id`]): a
//!   session deleted on another node, or deleted and created again under another organization,
//!   is not found there, and forgotten here.
//! - An organization's daily message quota can change on any node. This node forgets it when
//!   the change is made here, and reads it again after [`QUOTA_FRESH_FOR`] otherwise: another
//!   node's change applies here within that time.
//!
//! [`NewOutbound::org_id`]: wagate_store::NewOutbound::org_id

use std::collections::HashMap;

use parking_lot::RwLock;
use wagate_core::{OrgId, SessionId, Timestamp};
use wagate_store::{Store, StoreResult};

/// How long an organization's quota read from the database is used before it is read again.
pub(crate) const QUOTA_FRESH_FOR: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

/// A session with the organization it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnedSession {
    pub(crate) id: SessionId,
    pub(crate) org_id: OrgId,
}

/// What this node remembers of sessions' owners and organizations' quotas.
#[derive(Default)]
pub(super) struct Owners {
    sessions: RwLock<HashMap<SessionId, OrgId>>,
    /// Messages per day (None: no quota), and when it was read.
    quotas: RwLock<HashMap<OrgId, (Option<u32>, Timestamp)>>,
}

impl Owners {
    /// The session with its organization; None when it does not exist. `fresh` reads the
    /// database whatever is remembered.
    pub(super) async fn session(
        &self,
        store: &dyn Store,
        id: &SessionId,
        fresh: bool,
    ) -> StoreResult<Option<OwnedSession>> {
        if !fresh {
            if let Some(org_id) = self.sessions.read().get(id) {
                return Ok(Some(OwnedSession { id: id.clone(), org_id: org_id.clone() }));
            }
        }
        let Some(session) = store.get_session(id).await? else {
            self.sessions.write().remove(id);
            return Ok(None);
        };
        self.sessions.write().insert(session.id.clone(), session.org_id.clone());
        Ok(Some(OwnedSession { id: session.id, org_id: session.org_id }))
    }

    /// Forgets a session that was deleted, or that a write found missing.
    pub(super) fn forget_session(&self, id: &SessionId) {
        self.sessions.write().remove(id);
    }

    /// The organization's daily message quota, None when it has none (or does not exist).
    pub(super) async fn daily_quota(
        &self,
        store: &dyn Store,
        org: &OrgId,
        now: Timestamp,
    ) -> StoreResult<Option<u32>> {
        if let Some((quota, read_at)) = self.quotas.read().get(org) {
            if now - *read_at < QUOTA_FRESH_FOR && *read_at <= now {
                return Ok(*quota);
            }
        }
        let quota = store.get_org(org).await?.and_then(|org| org.quotas.messages_per_day);
        self.quotas.write().insert(org.clone(), (quota, now));
        Ok(quota)
    }

    /// Forgets an organization's quota after it changed here.
    pub(super) fn forget_org(&self, org: &OrgId) {
        self.quotas.write().remove(org);
    }
}
