//! CloudWatch metrics in Embedded Metric Format (EMF): each count is one
//! JSON line on stdout, which Lambda's log pipeline turns into a metric in
//! namespace [`NAMESPACE`] with the dimension `Stage` — no API call, no
//! SDK, nothing on the request's path but a `write`. Printed only in Lambda
//! (`AWS_LAMBDA_FUNCTION_NAME` set) with `STAGE` set; the local run and the
//! tests print nothing. The template's dashboard shows every [`Metric`]
//! (`functions/src/tests/template.rs` checks).

use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

pub const NAMESPACE: &str = "PeakUsers";

/// What the functions count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Invitation emails (new and resent) handed to SES.
    InvitationsSent,
    /// Invitations accepted (the person went on to set a password).
    InvitationsAccepted,
    EmailsSent,
    /// Emails failed for good (kept for an operator).
    EmailsFailed,
    /// Owed Auth0 work seen by a sweep (a gauge: the records waiting).
    Auth0WorkPending,
    /// Attempts at owed Auth0 work that has failed five or more times.
    Auth0WorkStuck,
    /// Auth0 deliveries applied (or already applied).
    WebhookDeliveriesApplied,
    /// Auth0 deliveries refused (bad signature or token, replay, malformed).
    WebhookDeliveriesRejected,
    /// Bulk-invite rows worked by the runner.
    BulkRowsProcessed,
}

impl Metric {
    pub const ALL: [Metric; 9] = [
        Metric::InvitationsSent,
        Metric::InvitationsAccepted,
        Metric::EmailsSent,
        Metric::EmailsFailed,
        Metric::Auth0WorkPending,
        Metric::Auth0WorkStuck,
        Metric::WebhookDeliveriesApplied,
        Metric::WebhookDeliveriesRejected,
        Metric::BulkRowsProcessed,
    ];

    /// The metric's name in CloudWatch.
    pub fn name(self) -> &'static str {
        match self {
            Metric::InvitationsSent => "InvitationsSent",
            Metric::InvitationsAccepted => "InvitationsAccepted",
            Metric::EmailsSent => "EmailsSent",
            Metric::EmailsFailed => "EmailsFailed",
            Metric::Auth0WorkPending => "Auth0WorkPending",
            Metric::Auth0WorkStuck => "Auth0WorkStuck",
            Metric::WebhookDeliveriesApplied => "WebhookDeliveriesApplied",
            Metric::WebhookDeliveriesRejected => "WebhookDeliveriesRejected",
            Metric::BulkRowsProcessed => "BulkRowsProcessed",
        }
    }
}

/// The EMF line for `value` of `metric` at `timestamp_ms`, in `stage`.
/// The stage is the template's `Stage` (`[a-z0-9-]+`); anything else is
/// left out rather than escaped.
pub fn line(metric: Metric, value: u64, stage: &str, timestamp_ms: u128) -> String {
    let stage: String = stage
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let name = metric.name();
    format!(
        "{{\"_aws\":{{\"Timestamp\":{timestamp_ms},\"CloudWatchMetrics\":[{{\"Namespace\":\"{NAMESPACE}\",\
         \"Dimensions\":[[\"Stage\"]],\"Metrics\":[{{\"Name\":\"{name}\",\"Unit\":\"Count\"}}]}}]}},\
         \"Stage\":\"{stage}\",\"{name}\":{value}}}"
    )
}

/// The stage to emit under, when this process emits at all (in Lambda).
fn stage() -> Option<&'static str> {
    static STAGE: OnceLock<Option<String>> = OnceLock::new();
    STAGE
        .get_or_init(|| {
            std::env::var_os("AWS_LAMBDA_FUNCTION_NAME")?;
            std::env::var("STAGE").ok().filter(|s| !s.is_empty())
        })
        .as_deref()
}

/// Counts `value` of `metric` (nothing outside Lambda, nothing for 0).
pub fn count(metric: Metric, value: u64) {
    let Some(stage) = stage() else { return };
    if value == 0 && metric != Metric::Auth0WorkPending {
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    // One write of a whole line, so it is not interleaved with log lines.
    let _ =
        std::io::stdout().write_all(format!("{}\n", line(metric, value, stage, now)).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_the_embedded_metric_format() {
        let v: serde_json::Value =
            serde_json::from_str(&line(Metric::EmailsSent, 3, "prod", 1_700_000_000_123))
                .expect("JSON");
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_123u64);
        let m = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "PeakUsers");
        assert_eq!(m["Dimensions"], serde_json::json!([["Stage"]]));
        assert_eq!(m["Metrics"][0]["Name"], "EmailsSent");
        assert_eq!(m["Metrics"][0]["Unit"], "Count");
        assert_eq!(v["Stage"], "prod");
        assert_eq!(v["EmailsSent"], 3);
    }

    #[test]
    fn every_metric_has_its_own_name_and_a_stage_cannot_break_the_json() {
        let names: std::collections::BTreeSet<_> = Metric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Metric::ALL.len());
        for m in Metric::ALL {
            let v: serde_json::Value =
                serde_json::from_str(&line(m, 1, "pr\"od\n", 0)).expect("JSON");
            assert_eq!(v["Stage"], "prod");
            assert_eq!(v[m.name()], 1);
        }
    }
}
