//! One recipient's copy: their signed links, the list headers their
//! campaign calls for, the feedback headers naming the delivery, and the
//! footer in the campaign's language, rendered from the message's template
//! (parsed once per message); and the copy's return path.

use std::borrow::Cow;

use crate::config::{Campaign, Config, Policy};
use crate::rewrite::{FeedbackHeaders, Footer, Links, ListHeaders, Template};
use crate::token::{self, Claims, Purpose, TokenError};

/// The links of one recipient for one campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientLinks {
    pub unsubscribe: String,
    pub preferences: String,
    pub optin: String,
    pub mailto: Option<String>,
}

/// Signs the three links (and the mailto form) for a subject.
pub fn links(
    cfg: &Config,
    campaign: &Campaign,
    subject_id: &str,
) -> Result<RecipientLinks, TokenError> {
    let base = cfg.http.public_url.as_str().trim_end_matches('/');
    let sign = |purpose, campaign: Option<&str>| {
        token::sign(
            &cfg.signing,
            &Claims {
                subject_id: subject_id.to_owned(),
                campaign: campaign.map(str::to_owned),
                purpose,
            },
        )
    };
    let unsubscribe = sign(Purpose::Unsubscribe, Some(&campaign.id))?;
    let preferences = sign(Purpose::Preferences, None)?;
    let optin = sign(Purpose::Optin, Some(&campaign.id))?;
    Ok(RecipientLinks {
        mailto: cfg
            .http
            .unsubscribe_mailto_domain
            .as_ref()
            .map(|d| format!("mailto:unsubscribe+{unsubscribe}@{d}")),
        unsubscribe: format!("{base}/u/{unsubscribe}"),
        preferences: format!("{base}/p/{preferences}"),
        optin: format!("{base}/o/{optin}"),
    })
}

/// The envelope sender of a relayed copy: `DELIVERY@<[bounces] domain>`
/// (`delivery` is the return path's local part,
/// [`token::bounce::local_part`]), or the client's own without the domain.
pub fn return_path<'a>(cfg: &Config, delivery: &str, client_sender: &'a str) -> Cow<'a, str> {
    match &cfg.bounces.domain {
        Some(domain) => Cow::Owned(format!("{delivery}@{domain}")),
        None => Cow::Borrowed(client_sender),
    }
}

/// Renders the copy. `links` is `None` when the recipient has no subject
/// (an erased address receiving mandatory mail): placeholders then point at
/// the relay's public address and no list header is added. `delivery` (the
/// return path's local part, `b-TOKEN`) names the copy in its feedback
/// headers, which every copy has, mandatory or not.
pub fn render(
    cfg: &Config,
    template: &Template,
    campaign: &Campaign,
    links: Option<&RecipientLinks>,
    delivery: &str,
) -> Vec<u8> {
    let base = cfg.http.public_url.as_str();
    let mandatory = campaign.policy == Policy::Mandatory;
    let lang = campaign.language.unwrap_or(cfg.texts.default_language);
    let footer = Footer {
        text: cfg.texts.get(lang, "footer_text"),
        html: cfg.texts.get(lang, "footer_html"),
    };
    let l = Links {
        unsubscribe: links.map_or(base, |l| &l.unsubscribe),
        preferences: links.map_or(base, |l| &l.preferences),
        optin: links.map_or(base, |l| &l.optin),
        mailto: links.and_then(|l| l.mailto.as_deref()),
    };
    let list = ListHeaders {
        list_id: if mandatory {
            None
        } else {
            campaign.list_id.as_deref()
        },
        add_unsubscribe: !mandatory && links.is_some(),
        feedback: Some(FeedbackHeaders {
            delivery,
            campaign: &campaign.id,
            sender_id: &cfg.complaints.feedback_id,
            cfbl_address: cfg.complaints.cfbl_address.as_deref(),
        }),
    };
    template.render(
        &l,
        &list,
        (!mandatory && links.is_some()).then_some(&footer),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::feedback::report::{self, DELIVERY_HEADER};
    use crate::mail::header::header_values;
    use crate::token::bounce;

    /// The example configuration with `extra` sections after it.
    fn config(extra: &str) -> Config {
        let text = format!(
            "{}\n{extra}",
            include_str!("../../config/consent-relay.toml")
        );
        Config::parse(Path::new("consent-relay.toml"), &text).expect("example config")
    }

    const MESSAGE: &[u8] = b"From: news@shop.example\r\nTo: ann@example.net\r\n\
        X-Campaign: newsletter\r\nX-Consent-Relay-Delivery: b-aeaaaaaaaaabbeuv2fmsxbjr72de3ta\r\n\
        Feedback-ID: other:spoof\r\nSubject: News\r\n\r\nHello [[UNSUBSCRIBE_URL]]\r\n";

    #[test]
    fn a_copy_names_its_delivery_and_a_returned_copy_reads_back() {
        let cfg = config(
            "[bounces]\ndomain = \"bounces.example.com\"\n\
             [complaints]\nfeedback_id = \"acme\"\ncfbl_address = \"fbl@example.com\"\n",
        );
        let campaign = cfg.campaign("newsletter").expect("campaign");
        let template = Template::parse(MESSAGE, &cfg.smtp.campaign_header);
        let delivery = bounce::local_part(&cfg.signing, 77).expect("token");
        let copy = render(&cfg, &template, campaign, None, &delivery);
        assert_eq!(header_values(&copy, DELIVERY_HEADER), [delivery.as_str()]);
        assert_eq!(header_values(&copy, "Feedback-ID"), ["newsletter:acme"]);
        assert_eq!(
            header_values(&copy, "CFBL-Address"),
            ["fbl@example.com; report=arf"]
        );
        assert_eq!(
            header_values(&copy, "CFBL-Feedback-ID"),
            [delivery.as_str()]
        );
        assert_eq!(
            return_path(&cfg, &delivery, "crm@shop.example"),
            format!("{delivery}@bounces.example.com")
        );

        // The copy's header, returned in a DSN, names delivery 77.
        let header = &copy[..crate::mail::header::header_end(&copy)];
        let mut dsn = b"From: MAILER-DAEMON@mx.example\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
            --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n\
            Final-Recipient: rfc822; ann@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
            --b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            .to_vec();
        dsn.extend_from_slice(header);
        dsn.extend_from_slice(b"\r\n--b--\r\n");
        let read = report::read(&dsn);
        let token = read.delivery_token().and_then(bounce::token_of);
        assert_eq!(token.map(|t| bounce::verify(&cfg.signing, t)), Some(Ok(77)));
    }

    #[test]
    fn without_a_bounce_domain_the_client_sender_stays_and_the_headers_are_there() {
        let cfg = config("");
        let campaign = cfg.campaign("newsletter").expect("campaign");
        let template = Template::parse(MESSAGE, &cfg.smtp.campaign_header);
        let delivery = bounce::local_part(&cfg.signing, 78).expect("token");
        assert_eq!(
            return_path(&cfg, &delivery, "crm@shop.example"),
            "crm@shop.example"
        );
        let copy = render(&cfg, &template, campaign, None, &delivery);
        assert_eq!(header_values(&copy, DELIVERY_HEADER), [delivery]);
        assert_eq!(header_values(&copy, "Feedback-ID"), ["newsletter:relay"]);
        assert!(header_values(&copy, "CFBL-Address").is_empty());
        assert!(header_values(&copy, "CFBL-Feedback-ID").is_empty());
    }
}
