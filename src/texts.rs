//! Every text a recipient reads, in English and French: the footer added to
//! mail and the words of the pages (`page_*`, plain text). Each can be overridden in the TOML file
//! (`[texts.en]`, `[texts.fr]`); the version of the texts in force is kept
//! as proof with every consent change made on a page. A campaign label goes
//! into a text by [`with_label`], which in French makes `de` and `à` agree
//! with it ([`french`]). Pure.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

pub mod french;

/// A language the relay speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Language {
    En,
    Fr,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::En, Language::Fr];

    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Fr => "fr",
        }
    }

    pub fn parse(s: &str) -> Option<Language> {
        match s {
            "en" => Some(Language::En),
            "fr" => Some(Language::Fr),
            _ => None,
        }
    }

    /// The best language for an `Accept-Language` header value (RFC 9110
    /// 12.5.4: quality values honoured, `fr-CA` counts as `fr`), or `default`.
    pub fn negotiate(accept: Option<&str>, default: Language) -> Language {
        let Some(accept) = accept else {
            return default;
        };
        let mut best: Option<(f32, Language)> = None;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            if let Some(lang) = Language::parse(primary)
                && q > 0.0
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(default, |(_, l)| l)
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// `text` with `{label}` filled in: as written in English; in French with
/// `de` or `à` before it agreeing with the label (`d'Offres`, `du
/// Bulletin`), see [`french`].
pub fn with_label(lang: Language, text: &str, label: &str) -> String {
    match lang {
        Language::En => text.replace("{label}", label),
        Language::Fr => french::fill(text, label),
    }
}

/// A label standing alone (an item of a list, a sender's name) in `lang`:
/// in French with a capital if it opens with a lowercase article.
pub fn label_alone(lang: Language, label: &str) -> String {
    match lang {
        Language::En => label.to_owned(),
        Language::Fr => french::capitalised(label),
    }
}

/// (key, English, French). `{url}`, `{label}` and the like are filled in by
/// the code that uses the text; HTML texts are HTML.
const DEFAULTS: &[(&str, &str, &str)] = &[
    (
        "footer_text",
        "You receive this message from us. To choose what you receive, or to unsubscribe: {url}",
        "Vous recevez ce message de notre part. Pour choisir ce que vous recevez, ou vous désabonner : {url}",
    ),
    (
        "footer_html",
        "<p style=\"font-size:12px;color:#555\">You receive this message from us. <a href=\"{url}\">Choose what you receive, or unsubscribe</a>.</p>",
        "<p style=\"font-size:12px;color:#555\">Vous recevez ce message de notre part. <a href=\"{url}\">Choisir ce que vous recevez, ou vous désabonner</a>.</p>",
    ),
    // The double opt-in confirmation mail (`confirmation`), plain text.
    // `{label}` is the campaign's label, `{url}` the confirmation link.
    (
        "optin_mail_subject",
        "Please confirm: {label}",
        "Merci de confirmer\u{a0}: {label}",
    ),
    (
        "optin_mail_text",
        "Hello,\n\nWe received a request to send {label} to this address. To confirm that you want it, open this link and press the button:\n\n{url}\n\nIf you did not ask for it, ignore this message: nothing will be sent.",
        "Bonjour,\n\nNous avons reçu une demande d'envoi de {label} à cette adresse. Pour confirmer que vous le souhaitez, ouvrez ce lien et appuyez sur le bouton\u{a0}:\n\n{url}\n\nSi vous n'avez rien demandé, ignorez ce message\u{a0}: rien ne vous sera envoyé.",
    ),
    // The erasure notice (`[erasure] notify`, `rights`), plain text: the
    // last mail the person gets at the address.
    (
        "erasure_mail_subject",
        "Your personal data has been erased",
        "Vos données personnelles ont été effacées",
    ),
    (
        "erasure_mail_text",
        "Hello,\n\nAs requested, we have erased the personal data we held about this address. We keep only a one-way keyed fingerprint of it, so that we do not write to it again unless you sign up anew.\n\nThis is the last message you will receive from us at this address.",
        "Bonjour,\n\nComme demandé, nous avons effacé les données personnelles que nous détenions sur cette adresse. Nous n'en gardons qu'une empreinte chiffrée à sens unique, pour ne plus y écrire, sauf si vous vous inscrivez à nouveau.\n\nCe message est le dernier que vous recevrez de notre part à cette adresse.",
    ),
    // The pages (`web::pages`). Plain text: the page escapes them, so HTML in
    // an override shows as typed. `{label}` is the campaign's label.
    ("page_unsubscribe_title", "Unsubscribe", "Désabonnement"),
    (
        "page_unsubscribe_question",
        "Unsubscribe from {label}?",
        "Vous désabonner de {label}\u{a0}?",
    ),
    (
        "page_unsubscribe_explain",
        "You will no longer receive these messages at this address.",
        "Vous ne recevrez plus ces messages à cette adresse.",
    ),
    ("page_unsubscribe_button", "Unsubscribe", "Me désabonner"),
    (
        "page_unsubscribe_done",
        "You are unsubscribed from {label}.",
        "Votre désabonnement de {label} est enregistré.",
    ),
    (
        "page_unsubscribe_done_detail",
        "You will not receive these messages any more. You can change your mind at any time on your preferences page.",
        "Vous ne recevrez plus ces messages. Vous pouvez changer d'avis à tout moment sur la page de vos préférences.",
    ),
    ("page_all_messages", "all our messages", "tous nos messages"),
    (
        "page_all_messages_note",
        "Messages needed for your account or contract, such as invoices, are still sent.",
        "Les messages nécessaires à votre compte ou à votre contrat, comme les factures, restent envoyés.",
    ),
    (
        "page_mandatory_unsubscribe",
        "{label}: these messages are always sent, because they are needed for your account or contract.",
        "{label}\u{a0}: ces messages sont toujours envoyés, car ils sont nécessaires à votre compte ou à votre contrat.",
    ),
    (
        "page_preferences_link",
        "Choose what you receive",
        "Choisir ce que vous recevez",
    ),
    (
        "page_preferences_title",
        "Your email preferences",
        "Vos préférences de messages",
    ),
    (
        "page_preferences_intro",
        "Tick the messages you want to receive from us, then save.",
        "Cochez les messages que vous souhaitez recevoir de notre part, puis enregistrez.",
    ),
    (
        "page_preferences_legend",
        "Messages you receive",
        "Messages que vous recevez",
    ),
    (
        "page_mandatory_note",
        "Always sent: needed for your account or contract.",
        "Toujours envoyé\u{a0}: nécessaire à votre compte ou à votre contrat.",
    ),
    ("page_all_legend", "All messages", "Tous les messages"),
    (
        "page_all_label",
        "Unsubscribe from all",
        "Me désabonner de tout",
    ),
    ("page_save_button", "Save", "Enregistrer"),
    (
        "page_saved_notice",
        "Saved. Your choices apply to every message from now on.",
        "Enregistré. Vos choix s'appliquent à tous les messages à partir de maintenant.",
    ),
    (
        "page_optin_title",
        "Confirm your subscription",
        "Confirmer votre inscription",
    ),
    (
        "page_optin_question",
        "Confirm that you want to receive {label}",
        "Confirmez que vous souhaitez recevoir {label}",
    ),
    ("page_optin_button", "Confirm", "Confirmer"),
    (
        "page_optin_done",
        "Thank you: you will receive {label}.",
        "Merci\u{a0}: vous recevrez {label}.",
    ),
    (
        "page_undo_question",
        "Changed your mind?",
        "Vous avez changé d'avis\u{a0}?",
    ),
    (
        "page_undo_button",
        "Undo the unsubscription",
        "Annuler le désabonnement",
    ),
    (
        "page_undo_done",
        "Your unsubscription from {label} is cancelled.",
        "Votre désabonnement de {label} est annulé.",
    ),
    (
        "page_undo_done_detail",
        "Your earlier choices apply again; you can change them at any time on your preferences page.",
        "Vos choix précédents s'appliquent de nouveau\u{a0}; vous pouvez les modifier à tout moment sur la page de vos préférences.",
    ),
    // What every page says around its content (`[http] organisation`,
    // `privacy_url`, `contact`; GDPR Art. 13) and which address it is about.
    (
        "page_address",
        "This page is about the address {address}.",
        "Cette page concerne l'adresse {address}.",
    ),
    (
        "page_controller",
        "Data controller: {organisation}",
        "Responsable du traitement\u{a0}: {organisation}",
    ),
    (
        "page_privacy_link",
        "Privacy notice",
        "Politique de confidentialité",
    ),
    (
        "page_contact",
        "Questions about your data: {contact}",
        "Questions sur vos données\u{a0}: {contact}",
    ),
    (
        "page_error_link_title",
        "This link does not work",
        "Ce lien ne fonctionne pas",
    ),
    (
        "page_error_link_detail",
        "Check that the whole link was copied from the message. Nothing was changed.",
        "Vérifiez que le lien a été copié en entier depuis le message. Rien n'a été modifié.",
    ),
    (
        "page_error_gone_title",
        "This link is no longer valid",
        "Ce lien n'est plus valable",
    ),
    (
        "page_error_gone_detail",
        "What it pointed to no longer exists. The links in a more recent message will work. Nothing was changed.",
        "Ce qu'il désignait n'existe plus. Les liens d'un message plus récent fonctionneront. Rien n'a été modifié.",
    ),
    (
        "page_error_request_title",
        "This request could not be handled",
        "Cette demande n'a pas pu être traitée",
    ),
    (
        "page_error_request_detail",
        "Please go back to the page and try again. Nothing was changed.",
        "Revenez à la page et réessayez. Rien n'a été modifié.",
    ),
    (
        "page_error_server_title",
        "Something went wrong",
        "Une erreur est survenue",
    ),
    (
        "page_error_server_detail",
        "Nothing was changed. Please try again in a few minutes.",
        "Rien n'a été modifié. Veuillez réessayer dans quelques minutes.",
    ),
];

/// The keys that `[texts.en]` and `[texts.fr]` may override.
pub fn keys() -> impl Iterator<Item = &'static str> {
    DEFAULTS.iter().map(|(k, _, _)| *k)
}

/// The texts in force: defaults, with the configuration's overrides.
#[derive(Debug, Clone)]
pub struct Texts {
    pub default_language: Language,
    overrides: BTreeMap<(Language, String), String>,
    version: String,
}

impl Default for Texts {
    fn default() -> Self {
        Texts::new(Language::En, BTreeMap::new())
    }
}

impl Texts {
    /// `overrides` keys must be among [`keys`] (the configuration checks).
    pub fn new(
        default_language: Language,
        overrides: BTreeMap<(Language, String), String>,
    ) -> Texts {
        // The version names exactly the words shown: proof of what a person
        // read when they changed their consent.
        let mut h = Sha256::new();
        for (k, en, fr) in DEFAULTS {
            h.update(k.as_bytes());
            h.update(en.as_bytes());
            h.update(fr.as_bytes());
        }
        for ((lang, key), value) in &overrides {
            h.update(lang.code().as_bytes());
            h.update(key.as_bytes());
            h.update(value.as_bytes());
        }
        let digest = h.finalize();
        let version = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        Texts {
            default_language,
            overrides,
            version,
        }
    }

    /// The text for `key` in `lang`; empty for an unknown key.
    pub fn get(&self, lang: Language, key: &str) -> &str {
        if let Some(v) = self.overrides.get(&(lang, key.to_owned())) {
            return v;
        }
        DEFAULTS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or("", |(_, en, fr)| match lang {
                Language::En => en,
                Language::Fr => fr,
            })
    }

    /// A short digest of every text in force (defaults and overrides).
    pub fn version(&self) -> &str {
        &self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_honours_quality_and_regions() {
        let en = Language::En;
        assert_eq!(Language::negotiate(None, en), Language::En);
        assert_eq!(
            Language::negotiate(Some("fr-CA,fr;q=0.9,en;q=0.8"), en),
            Language::Fr
        );
        assert_eq!(
            Language::negotiate(Some("en;q=0.5, fr;q=0.9"), en),
            Language::Fr
        );
        assert_eq!(
            Language::negotiate(Some("de, it"), Language::Fr),
            Language::Fr
        );
        assert_eq!(Language::negotiate(Some("fr;q=0"), en), Language::En);
        assert_eq!(
            Language::negotiate(Some("garbage;;;q=x,,"), en),
            Language::En
        );
    }

    #[test]
    fn overrides_win_and_change_the_version() {
        let plain = Texts::default();
        let mut o = BTreeMap::new();
        o.insert(
            (Language::Fr, "footer_text".to_owned()),
            "Se désabonner : {url}".to_owned(),
        );
        let custom = Texts::new(Language::Fr, o);
        assert_eq!(
            custom.get(Language::Fr, "footer_text"),
            "Se désabonner : {url}"
        );
        assert_eq!(
            custom.get(Language::En, "footer_text"),
            plain.get(Language::En, "footer_text")
        );
        assert_ne!(plain.version(), custom.version());
        assert_eq!(plain.get(Language::En, "no-such-key"), "");
    }

    #[test]
    fn both_languages_use_the_same_placeholders() {
        let placeholders = |text: &str| -> Vec<String> {
            text.split('{')
                .skip(1)
                .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
                .collect()
        };
        for (k, en, fr) in DEFAULTS {
            assert_eq!(placeholders(en), placeholders(fr), "{k}");
            if k.starts_with("page_") {
                assert!(!en.contains('<') && !fr.contains('<'), "{k} is plain text");
            }
        }
        let keys: Vec<&str> = keys().collect();
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(keys.len(), unique.len(), "duplicate text keys");
    }

    #[test]
    fn labels_go_into_texts_as_each_language_writes_them() {
        let t = Texts::default();
        let fill = |lang, key, label| with_label(lang, t.get(lang, key), label);
        assert_eq!(
            fill(
                Language::Fr,
                "page_unsubscribe_question",
                "Offres pour les professionnels"
            ),
            "Vous désabonner d'Offres pour les professionnels\u{a0}?"
        );
        assert_eq!(
            fill(
                Language::Fr,
                "page_unsubscribe_question",
                "la Lettre d'information"
            ),
            "Vous désabonner de la Lettre d'information\u{a0}?"
        );
        assert_eq!(
            fill(Language::Fr, "page_undo_done", "le Bulletin"),
            "Votre désabonnement du Bulletin est annulé."
        );
        assert_eq!(
            fill(Language::Fr, "page_mandatory_unsubscribe", "les Factures"),
            "Les Factures\u{a0}: ces messages sont toujours envoyés, car ils sont nécessaires à votre compte ou à votre contrat."
        );
        assert_eq!(
            fill(Language::Fr, "optin_mail_text", "Actualités")
                .lines()
                .nth(2),
            Some(
                "Nous avons reçu une demande d'envoi d'Actualités à cette adresse. Pour confirmer que vous le souhaitez, ouvrez ce lien et appuyez sur le bouton\u{a0}:"
            )
        );
        // English: as written, wherever it stands.
        assert_eq!(
            fill(Language::En, "page_unsubscribe_question", "offers"),
            "Unsubscribe from offers?"
        );
        assert_eq!(label_alone(Language::Fr, "la Lettre"), "La Lettre");
        assert_eq!(label_alone(Language::En, "la Lettre"), "la Lettre");
    }

    #[test]
    fn every_default_has_both_languages_and_a_url() {
        for (k, en, fr) in DEFAULTS {
            assert!(!en.is_empty() && !fr.is_empty(), "{k}");
            if k.starts_with("footer") {
                assert!(en.contains("{url}") && fr.contains("{url}"), "{k}");
            }
        }
    }
}
