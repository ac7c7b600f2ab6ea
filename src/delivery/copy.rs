//! One recipient's copy: their signed links, the list headers their
//! campaign calls for, and the footer in the campaign's language, rendered
//! from the message's template (parsed once per message).

use crate::config::{Campaign, Config, Policy};
use crate::rewrite::{Footer, Links, ListHeaders, Template};
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

/// Renders the copy. `links` is `None` when the recipient has no subject
/// (an erased address receiving mandatory mail): placeholders then point at
/// the relay's public address and no list header is added.
pub fn render(
    cfg: &Config,
    template: &Template,
    campaign: &Campaign,
    links: Option<&RecipientLinks>,
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
    };
    template.render(
        &l,
        &list,
        (!mandatory && links.is_some()).then_some(&footer),
    )
}
