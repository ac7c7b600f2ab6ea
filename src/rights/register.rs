//! The record of processing activities (GDPR Art. 30) that the relay's
//! configuration implies, for `consent-relay register`: per campaign its
//! purpose, legal basis, consent lifetime, retention and recipients, and the
//! relay's own processing (the decision log, the proof of consent), under
//! the controller's name and contact (Art. 30(1)(a)). Pure: built from the
//! configuration alone.

use serde::Serialize;

use crate::config::{Campaign, CampaignState, Config, Policy, UpstreamTarget};

/// One processing activity.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Activity {
    /// The campaign id, or `relay:decision-log` / `relay:consent-proof`.
    pub id: String,
    /// What the data is processed for (a campaign's label).
    pub purpose: String,
    /// `opt-in`, `opt-in, double opt-in`, `opt-out`, `mandatory`; `None` for the relay's own.
    pub policy: Option<String>,
    /// `active`, `inactive` or `deleted`; `None` for the relay's own.
    pub state: Option<String>,
    /// `consent`, `legitimate interest`, `contract`, `legal obligation`.
    pub legal_basis: String,
    /// The article it rests on, e.g. `GDPR Art. 6(1)(a)`.
    pub article: String,
    /// After this many days a grant counts as expired (re-permission).
    pub consent_max_age_days: Option<u32>,
    /// How long what is stored for it is kept.
    pub retention: String,
    /// Who receives the data from the relay.
    pub recipients: Vec<String>,
}

/// Who keeps the register (GDPR Art. 30(1)(a): the controller's name and
/// contact details, and the data-protection officer's), from `[http]`
/// `organisation`, `contact` and `privacy_url`; `None` where not configured.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ControllerEntry {
    pub organisation: Option<String>,
    /// The data-protection contact (`http.contact`).
    pub contact: Option<String>,
    pub privacy_url: Option<String>,
}

/// The register: campaigns in file order, then the relay's own processing.
#[derive(Debug, Clone, Serialize)]
pub struct Register {
    /// The relay's SMTP hostname (which relay the register describes).
    pub relay: String,
    pub controller: ControllerEntry,
    pub activities: Vec<Activity>,
}

/// (legal basis, article) of a campaign's policy.
fn basis(policy: Policy) -> (&'static str, &'static str) {
    match policy {
        Policy::OptIn => ("consent", "GDPR Art. 6(1)(a)"),
        Policy::OptOut => ("legitimate interest", "GDPR Art. 6(1)(f)"),
        Policy::Mandatory => ("contract", "GDPR Art. 6(1)(b)"),
    }
}

fn policy_name(c: &Campaign) -> String {
    match c.policy {
        Policy::OptIn if c.double_opt_in => "opt-in, double opt-in".into(),
        Policy::OptIn => "opt-in".into(),
        Policy::OptOut => "opt-out".into(),
        Policy::Mandatory => "mandatory".into(),
    }
}

fn state_name(s: CampaignState) -> &'static str {
    match s {
        CampaignState::Active => "active",
        CampaignState::Inactive => "inactive",
        CampaignState::Deleted => "deleted",
    }
}

/// The register of `config`.
pub fn register(config: &Config) -> Register {
    let r = &config.retention;
    let span = |d: std::time::Duration| humantime::format_duration(d).to_string();
    let upstream = match &config.upstream.target {
        UpstreamTarget::Smtp { host, port } => format!("upstream relay smtp://{host}:{port}"),
        UpstreamTarget::Smtps { host, port } => format!("upstream relay smtps://{host}:{port}"),
        UpstreamTarget::Outbox(dir) => format!("local outbox {}", dir.display()),
    };
    let webhook = config
        .webhook
        .as_ref()
        .map(|w| format!("CRM webhook {}", w.url));
    let mail_retention = format!(
        "message bodies {} after delivery ends; decisions and deliveries {}",
        span(r.message_bodies),
        span(r.decisions)
    );
    let mut activities: Vec<Activity> = config
        .campaigns
        .iter()
        .map(|c| {
            let (legal_basis, article) = basis(c.policy);
            Activity {
                id: c.id.clone(),
                purpose: c
                    .label_in(config.texts.default_language, config.texts.default_language)
                    .to_owned(),
                policy: Some(policy_name(c)),
                state: Some(state_name(c.state).into()),
                legal_basis: legal_basis.into(),
                article: article.into(),
                consent_max_age_days: c.consent_max_age_days,
                retention: mail_retention.clone(),
                recipients: std::iter::once(upstream.clone())
                    .chain(webhook.clone())
                    .collect(),
            }
        })
        .collect();
    activities.push(Activity {
        id: "relay:decision-log".into(),
        purpose: "Decision log: why each recipient of each message got it or not".into(),
        policy: None,
        state: None,
        legal_basis: "legal obligation".into(),
        article: "GDPR Art. 6(1)(c), Art. 5(2) (accountability)".into(),
        consent_max_age_days: None,
        retention: format!("{} (decisions and deliveries)", span(r.decisions)),
        recipients: Vec::new(),
    });
    activities.push(Activity {
        id: "relay:consent-proof".into(),
        purpose:
            "Proof of consent: every consent change with its source, IP, user agent and text shown"
                .into(),
        policy: None,
        state: None,
        legal_basis: "legal obligation".into(),
        article: "GDPR Art. 6(1)(c), Art. 7(1) (demonstrating consent)".into(),
        consent_max_age_days: None,
        retention: "until erasure; then a keyed hash of the address stays as a suppression".into(),
        recipients: webhook.into_iter().collect(),
    });
    let who = &config.http.controller;
    Register {
        relay: config.smtp.hostname.clone(),
        controller: ControllerEntry {
            organisation: who.organisation.clone(),
            contact: who.contact.clone(),
            privacy_url: who.privacy_url.as_ref().map(|u| u.to_string()),
        },
        activities,
    }
}

/// The register as an aligned text table, one activity per line.
pub fn table(reg: &Register) -> String {
    let header = [
        "id",
        "purpose",
        "policy",
        "state",
        "legal basis",
        "consent max age",
        "retention",
        "recipients",
    ];
    let rows: Vec<[String; 8]> = reg
        .activities
        .iter()
        .map(|a| {
            [
                a.id.clone(),
                a.purpose.clone(),
                a.policy.clone().unwrap_or_else(|| "-".into()),
                a.state.clone().unwrap_or_else(|| "-".into()),
                format!("{}, {}", a.legal_basis, a.article),
                a.consent_max_age_days
                    .map_or_else(|| "-".into(), |d| format!("{d} days")),
                a.retention.clone(),
                if a.recipients.is_empty() {
                    "-".into()
                } else {
                    a.recipients.join("; ")
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| -> String {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        out.push('\n');
        out
    };
    let mut out = format!("Processing register of the relay {}\n\n", reg.relay);
    out.push_str(&line(&header));
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        out.push_str(&line(&cells));
    }
    let who = &reg.controller;
    let or_unset = |v: &Option<String>, key: &str| {
        v.clone()
            .unwrap_or_else(|| format!("not configured (set [http] {key})"))
    };
    out.push_str(&format!(
        "\nController: {}\nData-protection contact: {}\nPrivacy notice: {}\n",
        or_unset(&who.organisation, "organisation"),
        or_unset(&who.contact, "contact"),
        or_unset(&who.privacy_url, "privacy_url"),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_has_its_legal_basis() {
        assert_eq!(basis(Policy::OptIn), ("consent", "GDPR Art. 6(1)(a)"));
        assert_eq!(
            basis(Policy::OptOut),
            ("legitimate interest", "GDPR Art. 6(1)(f)")
        );
        assert_eq!(basis(Policy::Mandatory), ("contract", "GDPR Art. 6(1)(b)"));
    }
}
