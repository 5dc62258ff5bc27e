//! One HTTP attempt of a delivery, and where it leaves the delivery.

use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use wagate_core::{Attempt, Event, Timestamp, Webhook};
use wagate_store::AttemptOutcome;

use super::signing;
use crate::config::WebhooksConfig;

/// How much of a receiver's answer is kept.
pub(super) const RESPONSE_PREFIX: usize = 4096;

/// What one attempt found out.
pub(super) struct Answer {
    pub attempt: Attempt,
    pub delivered: bool,
    /// What the receiver asked for in `Retry-After`.
    pub retry_after: Option<Duration>,
}

/// POSTs the event to the webhook, signed, and reads the start of the answer.
pub(super) async fn post(
    client: &reqwest::Client,
    webhook: &Webhook,
    event: &Event,
    now: Timestamp,
) -> Answer {
    let body = serde_json::to_vec(event).unwrap_or_default();
    let id = event.id.to_string();
    let timestamp = now.timestamp();
    let signature = signing::signature_header(&webhook.signing_secrets(now), &id, timestamp, &body);
    let started = Instant::now();
    let sent = client
        .post(&webhook.url)
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, concat!("wagate/", env!("CARGO_PKG_VERSION")))
        .body(body)
        .send()
        .await;
    let (status_code, response_body, error, retry_after, delivered) = match sent {
        Ok(response) => {
            let status = response.status();
            let retry_after = retry_after(response.headers(), now);
            let body = read_prefix(response).await;
            let error = (!status.is_success()).then(|| format!("the receiver answered {status}"));
            (Some(status.as_u16()), body, error, retry_after, status.is_success())
        }
        Err(e) => (None, None, Some(describe(&e)), None, false),
    };
    Answer {
        attempt: Attempt {
            at: now,
            status_code,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            response_body,
            error,
        },
        delivered,
        retry_after,
    }
}

/// An attempt not made: it fails with `why`.
pub(super) fn refused(now: Timestamp, why: &str) -> Answer {
    Answer {
        attempt: Attempt {
            at: now,
            status_code: None,
            latency_ms: 0,
            response_body: None,
            error: Some(why.into()),
        },
        delivered: false,
        retry_after: None,
    }
}

/// The first [`RESPONSE_PREFIX`] bytes of the answer's body, if it has one.
async fn read_prefix(mut response: reqwest::Response) -> Option<String> {
    let mut bytes = Vec::new();
    while bytes.len() < RESPONSE_PREFIX {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(RESPONSE_PREFIX);
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    // A cut through a multi-byte character shows as a replacement character: drop it.
    if bytes.len() == RESPONSE_PREFIX && text.ends_with('\u{FFFD}') {
        text.pop();
    }
    // PostgreSQL's text cannot hold a NUL: the attempt could not be recorded at all.
    if text.contains('\0') {
        text = text.replace('\0', "\u{FFFD}");
    }
    (!text.is_empty()).then_some(text)
}

/// Why no answer came, without the URL (it is on the webhook) and with the root cause.
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut text =
        if error.is_connect() { "could not connect".to_owned() } else { "request failed".to_owned() };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}

/// Where a failed attempt leaves its delivery: retried after the next delay of the schedule
/// (varied by the jitter, lengthened to what `Retry-After` asked for up to the schedule's
/// longest delay), or failed when the schedule is used up.
pub(super) fn after_failure(
    config: &WebhooksConfig,
    attempts_made: u32,
    retry_after: Option<Duration>,
    now: Timestamp,
) -> AttemptOutcome {
    let Some(&delay_ms) = config.retry_schedule_ms.get(attempts_made.saturating_sub(1) as usize) else {
        return AttemptOutcome::Failed;
    };
    let jitter = f64::from(config.retry_jitter_percent) / 100.0;
    let factor = if jitter > 0.0 { rand::rng().random_range(1.0 - jitter..=1.0 + jitter) } else { 1.0 };
    let mut delay = Duration::from_millis(delay_ms).mul_f64(factor);
    if let Some(asked) = retry_after {
        let longest =
            Duration::from_millis(config.retry_schedule_ms.iter().copied().max().unwrap_or(delay_ms));
        delay = delay.max(asked.min(longest));
    }
    AttemptOutcome::RetryAt(now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(schedule: &[u64], jitter: u32) -> WebhooksConfig {
        WebhooksConfig {
            retry_schedule_ms: schedule.to_vec(),
            retry_jitter_percent: jitter,
            ..Default::default()
        }
    }

    fn delay(outcome: AttemptOutcome, now: Timestamp) -> i64 {
        match outcome {
            AttemptOutcome::RetryAt(at) => (at - now).num_milliseconds(),
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn the_schedule_is_followed_then_the_delivery_fails() {
        let now = chrono::Utc::now();
        let config = config(&[5_000, 300_000], 0);
        assert_eq!(delay(after_failure(&config, 1, None, now), now), 5_000);
        assert_eq!(delay(after_failure(&config, 2, None, now), now), 300_000);
        assert_eq!(after_failure(&config, 3, None, now), AttemptOutcome::Failed);
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        let now = chrono::Utc::now();
        let config = config(&[10_000], 20);
        for _ in 0..200 {
            assert!((8_000..=12_000).contains(&delay(after_failure(&config, 1, None, now), now)));
        }
    }

    #[test]
    fn retry_after_lengthens_the_delay_up_to_the_longest_step() {
        let now = chrono::Utc::now();
        let config = config(&[1_000, 60_000], 0);
        assert_eq!(delay(after_failure(&config, 1, Some(Duration::from_secs(30)), now), now), 30_000);
        assert_eq!(delay(after_failure(&config, 1, Some(Duration::from_secs(3_600)), now), now), 60_000);
        // Asking for less than the schedule does not shorten it.
        assert_eq!(delay(after_failure(&config, 2, Some(Duration::from_secs(1)), now), now), 60_000);
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
        headers.insert(RETRY_AFTER, "Thu, 01 Jan 2026 00:01:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(60)));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, now), None);
    }
}
