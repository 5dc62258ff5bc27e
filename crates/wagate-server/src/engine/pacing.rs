//! Send pacing of one session: the pause between sends, "typing…" before each, and the caps
//! (per window, and per recipient per window) that make messages wait rather than go.
//!
//! Only the session's own task sends for it, so its record of recent sends is exact once
//! loaded from the store at start (sends before a restart count).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use wagate_core::{MessageContent, Session, Timestamp};
use wagate_store::{Deferral, Store};

use crate::config::{ms, Pacing, PacingConfig};

pub(super) struct Pacer {
    pacing: Pacing,
    window: chrono::Duration,
    /// When each send in the window went, oldest first.
    sent: VecDeque<Timestamp>,
    by_recipient: HashMap<String, VecDeque<Timestamp>>,
    /// No send before this.
    not_before: Option<Instant>,
}

impl Pacer {
    /// The pacing of `session`: its connector's defaults with its `config.pacing` over them.
    pub(super) async fn load(
        config: &PacingConfig,
        session: &Session,
        store: &dyn Store,
        now: Timestamp,
    ) -> Self {
        let defaults = config.defaults(session.connector);
        let pacing = match session.config.get("pacing") {
            None => defaults.clone(),
            Some(overrides) => defaults.with_overrides(overrides).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "config.pacing is not valid; using the connector's defaults");
                defaults.clone()
            }),
        };
        let window =
            chrono::Duration::milliseconds(i64::try_from(config.window_ms.get()).unwrap_or(i64::MAX));
        let mut pacer =
            Pacer { pacing, window, sent: VecDeque::new(), by_recipient: HashMap::new(), not_before: None };
        if pacer.has_caps() {
            match store.sent_since(&session.id, now - window).await {
                Ok(sent) => sent.into_iter().for_each(|(to, at)| pacer.remember(to, at)),
                Err(e) => tracing::warn!(error = %e, "could not read recent sends; caps start from zero"),
            }
        }
        pacer
    }

    fn has_caps(&self) -> bool {
        self.pacing.daily_cap > 0 || self.pacing.per_recipient_limit > 0
    }

    /// How many messages to claim at once: one when paced, so each waits its turn in the queue.
    pub(super) fn batch(&self, unpaced: u32) -> u32 {
        if self.pacing.is_paced() {
            1
        } else {
            unpaced
        }
    }

    /// When the next send may go, if not now.
    pub(super) fn not_before(&self) -> Option<Instant> {
        self.not_before.filter(|at| *at > Instant::now())
    }

    /// The caps reached at `now`: what must wait, and until when.
    pub(super) fn deferrals(&mut self, now: Timestamp) -> Vec<Deferral> {
        if !self.has_caps() {
            return Vec::new();
        }
        let since = now - self.window;
        expire(&mut self.sent, since);
        self.by_recipient.retain(|_, times| {
            expire(times, since);
            !times.is_empty()
        });
        let mut deferrals = Vec::new();
        if let Some(until) = free_at(&self.sent, self.pacing.daily_cap, self.window) {
            deferrals.push(Deferral { recipient: None, until });
        }
        for (recipient, times) in &self.by_recipient {
            if let Some(until) = free_at(times, self.pacing.per_recipient_limit, self.window) {
                deferrals.push(Deferral { recipient: Some(recipient.clone()), until });
            }
        }
        deferrals
    }

    /// How long to show "typing…" before sending `content`.
    pub(super) fn typing_time(&self, content: &MessageContent) -> Duration {
        let chars: usize = content.typed_texts().iter().map(|text| text.chars().count()).sum();
        let wanted = self.pacing.typing_ms_per_char.saturating_mul(chars as u64);
        ms(wanted.min(self.pacing.typing_max_ms))
    }

    /// Records a send that went out, and when the next may go.
    pub(super) fn sent(&mut self, to: String, at: Timestamp) {
        if self.has_caps() {
            self.remember(to, at);
        }
        let pacing = &self.pacing;
        if pacing.min_interval_ms > 0 || pacing.jitter_ms > 0 {
            let jitter = rand::rng().random_range(0..=pacing.jitter_ms);
            self.not_before = Some(Instant::now() + ms(pacing.min_interval_ms + jitter));
        }
    }

    fn remember(&mut self, to: String, at: Timestamp) {
        self.sent.push_back(at);
        if self.pacing.per_recipient_limit > 0 {
            self.by_recipient.entry(to).or_default().push_back(at);
        }
    }
}

/// Drops the send times up to `since` (they left the window).
fn expire(times: &mut VecDeque<Timestamp>, since: Timestamp) {
    while times.front().is_some_and(|at| *at <= since) {
        times.pop_front();
    }
}

/// With `cap` sends allowed per `window` and these in it: when the next may go, if not now.
fn free_at(times: &VecDeque<Timestamp>, cap: u32, window: chrono::Duration) -> Option<Timestamp> {
    let cap = cap as usize;
    if cap == 0 || times.len() < cap {
        return None;
    }
    // The send that must leave the window before another fits.
    times.get(times.len() - cap).map(|oldest| *oldest + window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_frees_when_its_oldest_needed_send_expires() {
        let t0 = chrono::Utc::now();
        let second = chrono::Duration::seconds(1);
        let times: VecDeque<Timestamp> = [t0, t0 + second, t0 + second * 2].into();
        let window = chrono::Duration::seconds(10);
        assert_eq!(free_at(&times, 4, window), None);
        assert_eq!(free_at(&times, 0, window), None);
        assert_eq!(free_at(&times, 3, window), Some(t0 + window));
        assert_eq!(free_at(&times, 2, window), Some(t0 + second + window));
    }
}
