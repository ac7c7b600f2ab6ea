//! `[[campaign]]`: each campaign's id, label, consent policy, state and
//! options, in file order.

use std::collections::HashMap;

use serde::Deserialize;

use super::Check;
use super::label::{self, Label};
use crate::texts::Language;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    OptIn,
    OptOut,
    Mandatory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignState {
    Active,
    Inactive,
    Deleted,
}

#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: String,
    /// What recipients see: read it with [`Campaign::label_in`].
    pub label: Label,
    pub policy: Policy,
    pub state: CampaignState,
    pub consent_max_age_days: Option<u32>,
    pub list_id: Option<String>,
    pub double_opt_in: bool,
    /// Display order on the preference page; defaults to the position in the file.
    pub order: i64,
    /// Language of the footer in this campaign's mail; default `[texts] default_language`.
    pub language: Option<Language>,
}

impl Campaign {
    /// The label a visitor reading `lang` sees: in `lang` if the file gives
    /// one, else in the campaign's `language`, else in `default_language`
    /// (`[texts] default_language`), else the first given.
    pub fn label_in(&self, lang: Language, default_language: Language) -> &str {
        self.label
            .get(lang, self.language.unwrap_or(default_language))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawCampaign {
    id: Option<String>,
    /// A text, or a table of texts by language: checked by `label`.
    label: Option<toml::Value>,
    policy: Option<String>,
    state: Option<String>,
    consent_max_age_days: Option<i64>,
    list_id: Option<String>,
    double_opt_in: Option<bool>,
    order: Option<i64>,
    language: Option<String>,
}

pub(super) fn check(c: &mut Check<'_>, raw: &[RawCampaign]) -> Option<Vec<Campaign>> {
    if raw.is_empty() {
        c.error(
            "campaign",
            "no campaign is defined (add a [[campaign]] with id, label and policy)",
        );
        return None;
    }
    let mut seen = HashMap::new();
    let campaigns: Vec<Option<Campaign>> = raw
        .iter()
        .enumerate()
        .map(|(i, one_raw)| one(c, i, one_raw, &mut seen))
        .collect();
    campaigns.into_iter().collect()
}

/// The ids the file gives, checked or not (`smtp.missing_campaign` names one).
pub(super) fn ids(raw: &[RawCampaign]) -> Vec<&str> {
    raw.iter().filter_map(|c| c.id.as_deref()).collect()
}

/// `campaign[i]`; `seen` holds the ids of the campaigns before it, by
/// their lowercase form (a message's campaign header is matched without
/// regard to case, so two ids must differ in more than case).
fn one<'r>(
    c: &mut Check<'_>,
    i: usize,
    raw: &'r RawCampaign,
    seen: &mut HashMap<String, (usize, &'r str)>,
) -> Option<Campaign> {
    let at = |key: &str| format!("campaign[{i}].{key}");
    let id = c.required(&at("id"), &raw.id, r#"add e.g. id = "newsletter""#);
    if let Some(id) = id {
        if id.is_empty()
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            c.error(
                &at("id"),
                format_args!(
                    "{id:?} is not a campaign id (use 1 to 64 letters, digits, '.', '_' or '-')"
                ),
            );
        } else if let Some((first, other)) = seen.insert(id.to_ascii_lowercase(), (i, id)) {
            if other == id {
                c.error(
                    &at("id"),
                    format_args!(
                        "{id:?} is already the id of campaign[{first}] (ids must be unique)"
                    ),
                );
            } else {
                c.error(
                    &at("id"),
                    format_args!("{id:?} differs only in case from {other:?}, the id of campaign[{first}] (campaign headers are matched case-insensitively: rename one)"),
                );
            }
        }
    }
    let label = label::check(c, &at("label"), &raw.label);
    let policy = match c.required(
        &at("policy"),
        &raw.policy,
        "add policy = \"opt-in\", \"opt-out\" or \"mandatory\"",
    ) {
        Some("opt-in") => Some(Policy::OptIn),
        Some("opt-out") => Some(Policy::OptOut),
        Some("mandatory") => Some(Policy::Mandatory),
        Some(other) => {
            c.error(
                &at("policy"),
                format_args!("{other:?} is not a policy (use opt-in, opt-out or mandatory)"),
            );
            None
        }
        None => None,
    };
    let state = match raw.state.as_deref() {
        None | Some("active") => Some(CampaignState::Active),
        Some("inactive") => Some(CampaignState::Inactive),
        Some("deleted") => Some(CampaignState::Deleted),
        Some(other) => {
            c.error(
                &at("state"),
                format_args!("{other:?} is not a state (use active, inactive or deleted)"),
            );
            None
        }
    };
    let opt_in = policy.is_none_or(|p| p == Policy::OptIn);
    let max_age = raw.consent_max_age_days.map(|days| {
        if !opt_in {
            c.error(
                &at("consent_max_age_days"),
                "applies only to opt-in campaigns (remove it, or use policy = \"opt-in\")",
            );
        }
        c.number(
            &at("consent_max_age_days"),
            Some(days),
            0,
            1..=i64::from(u32::MAX),
        )
    });
    if raw.double_opt_in == Some(true) && !opt_in {
        c.error(
            &at("double_opt_in"),
            "applies only to opt-in campaigns (remove it, or use policy = \"opt-in\")",
        );
    }
    if let Some(list_id) = raw.list_id.as_deref()
        && !is_dot_atom(list_id)
    {
        c.error(
            &at("list_id"),
            format_args!(
                "{list_id:?} is not a list id (use a dot-atom such as newsletter.example.com)"
            ),
        );
    }
    Some(Campaign {
        id: id?.to_owned(),
        label: label?,
        policy: policy?,
        state: state?,
        consent_max_age_days: max_age.map_or(Some(None), |d| d.map(Some))?,
        list_id: raw.list_id.clone(),
        double_opt_in: raw.double_opt_in.unwrap_or(false),
        order: raw.order.unwrap_or(i as i64 + 1),
        language: match raw.language.as_deref() {
            None => None,
            Some(v) => Some(c.language(&at("language"), v)?),
        },
    })
}

/// RFC 2919 list id: a dot-atom with at least one dot (`newsletter.example.com`).
fn is_dot_atom(text: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
    text.len() <= 255
        && text.contains('.')
        && text.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || SPECIALS.contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn duplicate_campaign_id() {
        let text = format!(
            "{}\n[[campaign]]\nid = \"news\"\nlabel = \"Again\"\npolicy = \"opt-out\"\n",
            minimal()
        );
        single_error(
            &text,
            "consent-relay.toml: campaign[1].id: \"news\" is already the id of campaign[0] (ids must be unique)",
        );
    }

    #[test]
    fn campaign_ids_differing_only_in_case_are_refused() {
        let text = format!(
            "{}\n[[campaign]]\nid = \"News\"\nlabel = \"Again\"\npolicy = \"opt-out\"\n",
            minimal()
        );
        single_error(
            &text,
            "consent-relay.toml: campaign[1].id: \"News\" differs only in case from \"news\", the id of campaign[0] (campaign headers are matched case-insensitively: rename one)",
        );
    }

    #[test]
    fn bad_campaign_fields() {
        let text = edit(&[("policy = \"opt-in\"", "policy = \"optin\"")]);
        single_error(
            &text,
            "consent-relay.toml: campaign[0].policy: \"optin\" is not a policy (use opt-in, opt-out or mandatory)",
        );

        let text = edit(&[(
            "policy = \"opt-in\"",
            "policy = \"opt-out\"\nconsent_max_age_days = 30\ndouble_opt_in = true",
        )]);
        assert_eq!(
            errors(&text),
            [
                "consent-relay.toml: campaign[0].consent_max_age_days: applies only to opt-in campaigns (remove it, or use policy = \"opt-in\")",
                "consent-relay.toml: campaign[0].double_opt_in: applies only to opt-in campaigns (remove it, or use policy = \"opt-in\")",
            ]
        );

        let text = edit(&[(
            "id = \"news\"",
            "id = \"*\"\nstate = \"paused\"\nlist_id = \"news\"",
        )]);
        assert_eq!(
            errors(&text),
            [
                "consent-relay.toml: campaign[0].id: \"*\" is not a campaign id (use 1 to 64 letters, digits, '.', '_' or '-')",
                "consent-relay.toml: campaign[0].state: \"paused\" is not a state (use active, inactive or deleted)",
                "consent-relay.toml: campaign[0].list_id: \"news\" is not a list id (use a dot-atom such as newsletter.example.com)",
            ]
        );

        let text = minimal();
        let text = &text[..text.find("[[campaign]]").expect("campaign")];
        single_error(
            text,
            "consent-relay.toml: campaign: no campaign is defined (add a [[campaign]] with id, label and policy)",
        );
    }
}
