//! The double opt-in confirmation mail: when a grant for a `double_opt_in`
//! campaign arrives through the API, the relay records a `request` and
//! mails the person the campaign's signed opt-in link itself, in the
//! campaign's language (texts `optin_mail_subject`, `optin_mail_text`,
//! overridable under `[texts.en]` / `[texts.fr]`).
//!
//! Builds the message only, from the recorded `request` (its id, its
//! subject): the store queues it (kind `notice`) in the event's
//! transaction ([`crate::store::FollowUp`]), and the delivery worker sends
//! it as built, like a DSN: no consent check (the person's state is
//! `pending` on purpose) and no bounce.

use mail_builder::MessageBuilder;

use crate::config::{Campaign, Config};
use crate::consent::identity::Identity;
use crate::consent::policy::{Outcome, Reason};
use crate::store::{MessageKind, NewMessage, RecipientDecision};
use crate::texts::Language;
use crate::token::{self, Claims, Purpose, TokenError};

/// The confirmation mail to `to` (subject `subject_id`; sent to the address
/// as it was written) for `campaign`,
/// ready to queue; its decision row rests on the `request` event `event_id`. From `no-reply@` the relay's hostname, null envelope
/// sender (RFC 3834 automatic message: bounces must not come back).
pub fn message(
    config: &Config,
    campaign: &Campaign,
    subject_id: &str,
    to: &Identity,
    event_id: i64,
    now: i64,
) -> Result<NewMessage, ConfirmationError> {
    let address = to.spelling();
    let token = token::sign(
        &config.signing,
        &Claims {
            subject_id: subject_id.to_owned(),
            campaign: Some(campaign.id.clone()),
            purpose: Purpose::Optin,
        },
    )?;
    let base = config.http.public_url.as_str().trim_end_matches('/');
    let url = format!("{base}/o/{token}");
    let lang = campaign.language.unwrap_or(config.texts.default_language);
    let label = campaign.label_in(lang, config.texts.default_language);
    let fill = |key: &str| {
        crate::texts::with_label(lang, config.texts.get(lang, key), label).replace("{url}", &url)
    };
    let id = ulid::Ulid::generate().to_string();
    let host = &config.smtp.hostname;
    let body = mail(
        config,
        Some(&crate::texts::label_alone(lang, label)),
        address,
        lang,
        (&fill("optin_mail_subject"), &fill("optin_mail_text")),
        &format!("{id}.optin"),
        now,
    )
    .map_err(ConfirmationError::Build)?;
    Ok(NewMessage {
        id,
        kind: MessageKind::Notice,
        mail_from: String::new(),
        client_ip: "127.0.0.1".into(),
        helo: host.clone(),
        auth_user: None,
        campaign: campaign.id.clone(),
        header_message_id: crate::mail::header::message_id(&body),
        body,
        received_at: now,
        recipients: vec![RecipientDecision {
            recipient: to.canonical().to_owned(),
            rcpt_to: (address != to.canonical()).then(|| address.to_owned()),
            subject_id: Some(subject_id.to_owned()),
            new_subject: None,
            outcome: Outcome::Deliver,
            // The person asked for this mail; the campaign's own mail waits
            // for the confirmation it carries.
            reason: Reason::PendingConfirmation,
            event_id: Some(event_id),
        }],
        // RFC 6531: a UTF-8 address is only reachable with SMTPUTF8.
        smtputf8: !address.is_ascii(),
    })
}

/// A plain-text mail the relay writes to a person itself: from `no-reply@`
/// the relay's hostname (shown as `from_name`), marked `Auto-Submitted`
/// (RFC 3834) and with its language; `text` has LF line ends.
pub(crate) fn mail(
    config: &Config,
    from_name: Option<&str>,
    address: &str,
    lang: Language,
    (subject, text): (&str, &str),
    message_id: &str,
    now: i64,
) -> std::io::Result<Vec<u8>> {
    let host = &config.smtp.hostname;
    let from = format!("no-reply@{host}");
    let builder = match from_name {
        Some(name) => MessageBuilder::new().from((name, from.as_str())),
        None => MessageBuilder::new().from(from.as_str()),
    };
    builder
        .to(address)
        .subject(subject)
        .message_id(format!("{message_id}@{host}"))
        .date(now / 1000)
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-generated"),
        )
        .header(
            "Content-Language",
            mail_builder::headers::raw::Raw::new(lang.code()),
        )
        .text_body(text.replace('\n', "\r\n"))
        .write_to_vec()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmationError {
    #[error("cannot sign the opt-in link: {0}")]
    Token(#[from] TokenError),
    #[error("cannot build the confirmation mail: {0}")]
    Build(std::io::Error),
}
