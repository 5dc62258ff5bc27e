//! Rate limits: a token bucket per API key (or JWT subject) and one per organization
//! (governor's GCRA), both counted on this node: in a cluster each node admits this much, so the gateway as a whole
//! admits up to this much times the nodes. The admin key has no limit.

use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use wagate_core::OrgId;

use super::{Actor, Principal};
use crate::api::{ApiError, ErrorCode};
use crate::config::RateLimitConfig;

type Buckets<K> = DefaultKeyedRateLimiter<K, StateInformationMiddleware>;

/// The buckets of this node.
pub(crate) struct RateLimits {
    /// One per API key and per JWT subject, of its organization (a subject is only unique
    /// among its organization's tokens).
    callers: Buckets<(OrgId, Actor)>,
    orgs: Buckets<OrgId>,
}

/// What a request was allowed: the `RateLimit-*` headers of its key's bucket.
pub(crate) struct Admitted {
    limit: u32,
    remaining: u32,
}

fn quota(per_second: NonZeroU32, burst: NonZeroU32) -> Quota {
    Quota::per_second(per_second).allow_burst(burst)
}

impl RateLimits {
    pub(crate) fn new(config: &RateLimitConfig) -> Self {
        Self {
            callers: RateLimiter::keyed(quota(config.key_per_second, config.key_burst))
                .with_middleware::<StateInformationMiddleware>(),
            orgs: RateLimiter::keyed(quota(config.org_per_second, config.org_burst))
                .with_middleware::<StateInformationMiddleware>(),
        }
    }

    /// Takes a token from the caller's bucket (its key's, or its JWT subject's) and its
    /// organization's, or answers 429 with `Retry-After` and the `RateLimit-*` headers of the
    /// bucket that refused.
    pub(crate) fn admit(&self, principal: &Principal) -> Result<Option<Admitted>, ApiError> {
        let (actor @ (Actor::Key(_) | Actor::Jwt(_)), Some(org)) = (principal.actor(), principal.org())
        else {
            return Ok(None);
        };
        let now = governor::clock::Clock::now(self.callers.clock());
        let refused = |limit: u32, wait: Duration, which: &str| {
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                format!("too many requests for this {which}; try again in {seconds} s"),
            )
            .with_details(serde_json::json!({ "limit": which, "retry_after_seconds": seconds }))
            .with_retry_after(seconds)
            .with_rate_limit(limit, 0, seconds)
        };
        let admitted = self.callers.check_key(&(org.clone(), actor.clone())).map_err(|not_until| {
            let which = if matches!(actor, Actor::Jwt(_)) { "subject" } else { "key" };
            refused(not_until.quota().burst_size().get(), not_until.wait_time_from(now), which)
        })?;
        self.orgs.check_key(org).map_err(|not_until| {
            refused(not_until.quota().burst_size().get(), not_until.wait_time_from(now), "organization")
        })?;
        Ok(Some(Admitted {
            limit: admitted.quota().burst_size().get(),
            remaining: admitted.remaining_burst_capacity(),
        }))
    }

    /// Forgets buckets that are full again, so the maps hold only recent callers.
    pub(crate) fn forget_idle(&self) {
        self.callers.retain_recent();
        self.orgs.retain_recent();
    }
}

impl Admitted {
    pub(crate) fn write(&self, headers: &mut HeaderMap) {
        headers.insert("ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
    }
}
