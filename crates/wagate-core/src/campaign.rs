//! Bulk campaigns: one message body (or template) sent to many recipients, each with its own
//! placeholder values, with progress counted from the messages it created.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{CampaignId, MessageContent, SessionId};

/// What a user asked of a campaign last.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CampaignState {
    Running,
    Paused,
    Canceled,
    /// Every message has its send result.
    Completed,
}

impl CampaignState {
    /// Its name, as the API and the database spell it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// The state after `action`, or None when the action does not apply in this state.
    pub fn after(self, action: CampaignAction) -> Option<CampaignState> {
        match (self, action) {
            (CampaignState::Running, CampaignAction::Pause) => Some(CampaignState::Paused),
            (CampaignState::Paused, CampaignAction::Resume) => Some(CampaignState::Running),
            (CampaignState::Running | CampaignState::Paused, CampaignAction::Cancel) => {
                Some(CampaignState::Canceled)
            }
            _ => None,
        }
    }
}

/// A user's command to a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignAction {
    /// Hold the messages not sent yet (those being sent finish).
    Pause,
    Resume,
    /// Call off the messages not sent yet: they become `canceled`.
    Cancel,
}

impl CampaignAction {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignAction::Pause => "pause",
            CampaignAction::Resume => "resume",
            CampaignAction::Cancel => "cancel",
        }
    }
}

/// A campaign's status as users see it: its state, except that a running campaign whose
/// messages all wait for their scheduled time is `scheduled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Scheduled,
    Running,
    Paused,
    Canceled,
    Completed,
}

/// How many of a campaign's messages are in each status now (each message counts once).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CampaignCounts {
    pub scheduled: u64,
    pub queued: u64,
    pub sending: u64,
    pub sent: u64,
    pub delivered: u64,
    pub read: u64,
    pub failed: u64,
    pub canceled: u64,
}

impl CampaignCounts {
    /// Messages that have no send result yet.
    pub fn pending(&self) -> u64 {
        self.scheduled + self.queued + self.sending
    }
}

/// A recipient left out of a campaign at creation, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rejected {
    /// Position in the recipients as given (0-based; for a CSV, the data row).
    pub index: usize,
    pub to: String,
    /// `invalid_number`, `duplicate`, `missing_param` or `invalid_content`.
    pub reason: String,
    pub message: String,
}

/// A campaign with its progress.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Campaign {
    pub id: CampaignId,
    pub session_id: SessionId,
    pub name: String,
    pub status: CampaignStatus,
    /// The template the messages were rendered from, if any.
    pub template: Option<String>,
    /// The body as given, placeholders and all (each recipient's message has its own values).
    pub content: MessageContent,
    pub scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Messages created: one per accepted recipient.
    pub total: u64,
    /// Recipients left out at creation (invalid or duplicate numbers, missing values).
    pub rejected: u64,
    pub counts: CampaignCounts,
    /// Failed messages by reason.
    pub failed_by_reason: BTreeMap<String, u64>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl Campaign {
    /// The status shown for a stored state and the counts.
    pub fn status_of(state: CampaignState, counts: &CampaignCounts) -> CampaignStatus {
        match state {
            CampaignState::Running if counts.scheduled > 0 && counts.pending() == counts.scheduled => {
                CampaignStatus::Scheduled
            }
            CampaignState::Running => CampaignStatus::Running,
            CampaignState::Paused => CampaignStatus::Paused,
            CampaignState::Canceled => CampaignStatus::Canceled,
            CampaignState::Completed => CampaignStatus::Completed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_apply_only_where_they_make_sense() {
        use CampaignAction::*;
        use CampaignState::*;
        assert_eq!(Running.after(Pause), Some(Paused));
        assert_eq!(Paused.after(Resume), Some(Running));
        assert_eq!(Paused.after(Cancel), Some(Canceled));
        assert_eq!(Running.after(Resume), None);
        assert_eq!(Paused.after(Pause), None);
        for action in [Pause, Resume, Cancel] {
            assert_eq!(Canceled.after(action), None);
            assert_eq!(Completed.after(action), None);
        }
    }

    #[test]
    fn a_running_campaign_waiting_for_its_time_is_scheduled() {
        let waiting = CampaignCounts { scheduled: 3, ..Default::default() };
        assert_eq!(Campaign::status_of(CampaignState::Running, &waiting), CampaignStatus::Scheduled);
        let started = CampaignCounts { scheduled: 3, sending: 1, ..Default::default() };
        assert_eq!(Campaign::status_of(CampaignState::Running, &started), CampaignStatus::Running);
        assert_eq!(Campaign::status_of(CampaignState::Paused, &waiting), CampaignStatus::Paused);
    }
}
