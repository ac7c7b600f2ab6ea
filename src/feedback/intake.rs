//! The one intake behind the three doors (SMTP, `consent-relay feedback`,
//! `POST /api/v1/feedback`): a report is read, stored as received, then
//! applied (`Store::apply_report`: the rules and marking it applied in one
//! transaction, so exactly once across crashes, retries and nodes).
//! [`process_pending`] applies what a crash left stored but not applied.
//!
//! Whom a report is about, in order (never the report's `From:`):
//! 1. the return path it came to, `b-TOKEN@<[bounces] domain>`, whose
//!    token verifies under one of the `[signing] keys`;
//! 2. the relay's delivery header (`X-Consent-Relay-Delivery`, then
//!    `CFBL-Feedback-ID`) in the returned or attached copy, and an ARF
//!    report's `Original-Mail-From` when it is our return path;
//! 3. the signed unsubscribe link of the copy's `List-Unsubscribe` (copies
//!    sent before the delivery header existed).
//!
//! A token that does not verify, or no token at all, leaves the report
//! stored with the reason and changes nothing.

use crate::config::Config;
use crate::feedback::classify::{self, BounceOutcome, Verdict};
use crate::feedback::report::{self, Kind, Report, StatusCode};
use crate::store::{
    Applied, Effect, FeedbackRules, Findings, NewReport, ReceivedReport, ReportKind, Store,
    StoreError, Target, UpstreamBounce,
};
use crate::token::{self, bounce};

/// Why a door cannot take a message.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// Not a bounce, a complaint or an automatic reply: not stored (the
    /// SMTP door answers 550 5.6.0, the CLI exits 65, the API 422).
    #[error("not a report: {0}")]
    NotAReport(String),
    /// Larger than `[bounces] max_report_size`.
    #[error("the report is {size} bytes, more than [bounces] max_report_size ({max})")]
    TooBig { size: usize, max: usize },
    /// The store could not take it: try again later (451, 75, 503).
    #[error("the store cannot take the report now: {0}")]
    Store(#[from] StoreError),
}

/// A report taken: stored, and what applying it did.
#[derive(Debug, Clone)]
pub struct Processed {
    pub received: ReceivedReport,
    pub kind: ReportKind,
    pub applied: Applied,
}

/// Reads, stores and applies one report. `Ok` means it is stored durably
/// (and applied, unless the same bytes were applied before).
pub async fn receive(
    store: &Store,
    config: &Config,
    report: NewReport,
) -> Result<Processed, IntakeError> {
    let max = config.bounces.max_report_size;
    if report.raw.len() > max {
        return Err(IntakeError::TooBig {
            size: report.raw.len(),
            max,
        });
    }
    let read = report::read(&report.raw);
    let Some(kind) = kind_of(&read) else {
        let Kind::NotAReport(why) = read.kind else {
            unreachable!("kind_of is None only for NotAReport")
        };
        return Err(IntakeError::NotAReport(why.to_string()));
    };
    let envelope_to = report.envelope_to.clone();
    let received = store.receive_report(report).await?;
    let findings = findings(config, received.id, kind, &read, envelope_to.as_deref());
    let applied = store.apply_report(findings).await?;
    if !applied.already {
        crate::metrics::feedback_report(kind.as_str());
    }
    log_events(&applied);
    Ok(Processed {
        received,
        kind,
        applied,
    })
}

/// What a report made happen, for the operator's log and the metrics: a
/// suppression, a withdrawal, the guard's warning or pause (people by
/// subject id only).
fn log_events(applied: &Applied) {
    use crate::store::FeedbackEvent as E;
    for e in &applied.events {
        match e {
            E::Bounced { kind, campaign, .. } => crate::metrics::bounce(kind, campaign),
            E::Complained { campaign, .. } => crate::metrics::complaint(campaign),
            E::CampaignWarning { campaign, .. } => crate::metrics::campaign_warning(campaign),
            E::CampaignPaused { campaign, .. } => {
                crate::metrics::campaign_paused(campaign, crate::metrics::PAUSED_BY_GUARD)
            }
        }
        match e {
            E::Bounced {
                subject_id,
                campaign,
                kind,
                status,
                suppression_id,
            } => tracing::info!(
                report = applied.id,
                subject = %subject_id,
                campaign = %campaign,
                kind = %kind,
                status = status.as_deref().unwrap_or(""),
                suppression = suppression_id,
                "feedback: bounced, suppressed"
            ),
            E::Complained {
                subject_id,
                campaign,
                event_id,
            } => tracing::info!(
                report = applied.id,
                subject = %subject_id,
                campaign = %campaign,
                event = event_id,
                "feedback: complained, withdrawn"
            ),
            E::CampaignWarning {
                campaign,
                day,
                delivered,
                complaints,
                rate,
            } => tracing::warn!(
                campaign = %campaign,
                day = day,
                delivered = delivered,
                complaints = complaints,
                rate = %crate::config::rate_percent(*rate),
                "campaign-warning: the complaint rate reached [complaints] warn_rate"
            ),
            E::CampaignPaused {
                campaign,
                day,
                delivered,
                complaints,
                rate,
            } => tracing::error!(
                campaign = %campaign,
                day = day,
                delivered = delivered,
                complaints = complaints,
                rate = %crate::config::rate_percent(*rate),
                "campaign-paused: the complaint rate reached [complaints] pause_rate; its copies are held until `consent-relay campaign resume`"
            ),
        }
    }
}

/// Applies the reports stored but not applied (a crash came between
/// storing and applying), oldest first, up to `limit`.
pub async fn process_pending(
    store: &Store,
    config: &Config,
    limit: i64,
) -> Result<Vec<Processed>, StoreError> {
    let mut done = Vec::new();
    for p in store.pending_reports(limit).await? {
        let read = report::read(&p.raw);
        // A stored report was read as one when it came in; this reading
        // of the same bytes only fails if the reader changed since.
        let read_as = kind_of(&read);
        let kind = read_as.unwrap_or(ReportKind::AutoReply);
        let mut findings = findings(config, p.id, kind, &read, p.envelope_to.as_deref());
        if read_as.is_none() {
            // Its raw message went with an erasure, or this version reads
            // the bytes otherwise than the one that took them.
            findings.effect = Effect::Ignored {
                why: "no longer read as a report (raw message erased, or read otherwise by this version)".into(),
            };
        }
        let applied = store.apply_report(findings).await?;
        log_events(&applied);
        done.push(Processed {
            received: ReceivedReport {
                id: p.id,
                duplicate: false,
                pending: true,
            },
            kind,
            applied,
        });
    }
    Ok(done)
}

/// What the upstream's own reply to a copy that failed for good means
/// (a 5xx only: an expired copy tells nothing about the mailbox).
pub fn upstream_bounce(config: &Config, reply: &str) -> Option<Box<UpstreamBounce>> {
    if !reply.trim_start().starts_with('5') {
        return None;
    }
    let hard = hard_statuses(config);
    let status = StatusCode::from_reply(reply);
    let outcome = classify::outcome(&report::Action::Failed, status, &hard);
    Some(Box::new(UpstreamBounce {
        effect: bounce_effect(outcome, Some(reply.to_owned())),
        rules: FeedbackRules::of(config),
    }))
}

fn hard_statuses(config: &Config) -> Vec<StatusCode> {
    config
        .bounces
        .hard
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn kind_of(read: &Report) -> Option<ReportKind> {
    Some(match &read.kind {
        Kind::Bounce(_) => ReportKind::Bounce,
        Kind::Complaint(_) if classify::classify(read, &[]) == Verdict::Complaint => {
            ReportKind::Complaint
        }
        Kind::Complaint(_) => ReportKind::Feedback,
        Kind::AutoReply(_) => ReportKind::AutoReply,
        Kind::NotAReport(_) => return None,
    })
}

/// What a read report means and whom it is about.
fn findings(
    config: &Config,
    report_id: i64,
    kind: ReportKind,
    read: &Report,
    envelope_to: Option<&str>,
) -> Findings {
    Findings {
        report_id,
        kind,
        target: target(config, read, envelope_to),
        effect: effect(config, report_id, read),
        rules: FeedbackRules::of(config),
    }
}

fn effect(config: &Config, report_id: i64, read: &Report) -> Effect {
    match (&read.kind, classify::classify(read, &hard_statuses(config))) {
        (Kind::Bounce(b), Verdict::Bounce(outcomes)) => {
            // One copy, one recipient: the blocks are about one person
            // (a forward may add one); the worst outcome counts.
            let worst = outcomes
                .iter()
                .enumerate()
                .max_by_key(|(_, o)| match o {
                    BounceOutcome::Hard(_) => 2,
                    BounceOutcome::Soft(_) => 1,
                    BounceOutcome::NoChange => 0,
                })
                .map(|(i, o)| (i, *o));
            match worst {
                None => Effect::Soft {
                    status: None,
                    diagnostic: Some("a bounce that names no recipient block".into()),
                },
                Some((i, o)) => {
                    let block = &b.status.recipients[i];
                    let diagnostic = block
                        .diagnostic
                        .as_ref()
                        .map(|d| format!("{}; {}", d.kind, d.text));
                    if o == BounceOutcome::NoChange {
                        Effect::NoChange {
                            why: format!(
                                "Action: {} changes nothing",
                                match &block.action {
                                    report::Action::Other(a) => a.as_str(),
                                    a => action_name(a),
                                }
                            ),
                        }
                    } else {
                        bounce_effect(o, diagnostic)
                    }
                }
            }
        }
        (Kind::Complaint(c), Verdict::Complaint) => {
            let mut evidence = format!(
                "ARF report {report_id}: feedback type {}",
                c.feedback_type.as_str()
            );
            if let Some(mta) = &c.reporting_mta {
                evidence.push_str(&format!(", reporting MTA {mta}"));
            }
            if let Some(at) = c.arrival_date {
                evidence.push_str(&format!(
                    ", arrival date {}",
                    crate::time::format_time(at.saturating_mul(1000))
                ));
            }
            if c.incidents > 1 {
                evidence.push_str(&format!(", {} incidents", c.incidents));
            }
            Effect::Complaint {
                feedback_type: c.feedback_type.as_str().to_owned(),
                evidence,
                user_agent: c.user_agent.clone(),
            }
        }
        (Kind::Complaint(c), _) => Effect::Recorded {
            what: format!(
                "feedback type {} is recorded, not acted on",
                c.feedback_type.as_str()
            ),
        },
        (Kind::AutoReply(a), _) => Effect::Ignored {
            why: format!("an automatic reply ({})", a.signal),
        },
        (_, _) => Effect::Ignored {
            why: "not a report".into(),
        },
    }
}

fn action_name(a: &report::Action) -> &'static str {
    match a {
        report::Action::Failed => "failed",
        report::Action::Delayed => "delayed",
        report::Action::Delivered => "delivered",
        report::Action::Relayed => "relayed",
        report::Action::Expanded => "expanded",
        report::Action::Other(_) => "other",
        report::Action::Missing => "(none)",
    }
}

fn bounce_effect(o: BounceOutcome, diagnostic: Option<String>) -> Effect {
    match o {
        BounceOutcome::Hard(s) => Effect::Hard {
            status: s.to_string(),
            diagnostic,
        },
        BounceOutcome::Soft(s) => Effect::Soft {
            status: s.map(|s| s.to_string()),
            diagnostic,
        },
        BounceOutcome::NoChange => Effect::NoChange {
            why: "nothing failed".into(),
        },
    }
}

/// Whom the report is about (see the module's list), or why not known.
fn target(config: &Config, read: &Report, envelope_to: Option<&str>) -> Result<Target, String> {
    let signing = &config.signing;
    // 1. The return path it came to.
    if let (Some(to), Some(domain)) = (envelope_to, config.bounces.domain.as_deref())
        && let Some((local, at)) = to.rsplit_once('@')
        && at.trim_end_matches('.').eq_ignore_ascii_case(domain)
    {
        return return_path(signing, local)
            .map(Target::Delivery)
            .map_err(|e| format!("the return path it came to: {e}"));
    }
    // 2. The relay's header in the returned copy, or the ARF's
    //    Original-Mail-From when it is our return path.
    let arf_from = match &read.kind {
        Kind::Complaint(c) => c
            .original_mail_from
            .as_deref()
            .and_then(|a| a.rsplit_once('@'))
            .filter(|(_, d)| {
                config
                    .bounces
                    .domain
                    .as_deref()
                    .is_some_and(|ours| d.eq_ignore_ascii_case(ours))
            })
            .map(|(l, _)| l),
        _ => None,
    };
    let mut refused = None;
    for value in [read.delivery_token(), arf_from].into_iter().flatten() {
        match return_path(signing, value.trim()) {
            Ok(id) => return Ok(Target::Delivery(id)),
            Err(e) => refused = Some(e),
        }
    }
    // 3. The unsubscribe link of the copy.
    if let Some(t) = read.relay_header().and_then(report::unsubscribe_token) {
        return match token::verify_for(signing, t, token::Purpose::Unsubscribe) {
            Ok(claims) => Ok(Target::Subject {
                subject_id: claims.subject_id,
                campaign: claims.campaign,
            }),
            Err(e) => Err(format!(
                "the unsubscribe link in the returned copy does not verify: {e}"
            )),
        };
    }
    Err(match refused {
        Some(e) => format!("the delivery header in the returned copy: {e}"),
        None => "it names no copy the relay sent: no return-path token, and no relay header in a returned copy".into(),
    })
}

/// The delivery a `b-TOKEN` local part names, if its token verifies.
fn return_path(
    signing: &crate::config::SigningConfig,
    local: &str,
) -> Result<i64, bounce::BounceTokenError> {
    let token = local
        .get(..bounce::PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(bounce::PREFIX))
        .map(|_| &local[bounce::PREFIX.len()..])
        .ok_or(bounce::BounceTokenError::Malformed)?;
    bounce::verify(signing, token)
}
