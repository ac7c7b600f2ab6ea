//! A campaign label in a French sentence: the preposition before it agrees
//! with the label's first word, as French writes it. Pure.
//!
//! The rule, for `de {label}` and `à {label}` in a French text (the word
//! `de` or `à`, alone, a space, then the placeholder; `De` and `À` at the
//! start of a sentence keep their capital):
//!
//! - a label starting with the article `le` contracts with it: `du Bulletin`,
//!   `au Bulletin`; `les` likewise: `des Offres`, `aux Offres`;
//! - `la` and `l'` do not: `de la Lettre d'information`, `de l'Agenda`,
//!   `à la Lettre`;
//! - otherwise `de` is elided before a vowel (accented or not, `æ`, `œ`):
//!   `d'Offres pour les professionnels`, `d'Événements`; before a `y`
//!   sounded as a vowel, that is followed by a consonant (`d'Yvelines`,
//!   but `de Yoga`); and before a mute `h` (`d'Hôtels`): an `h` is taken
//!   as mute unless the word is one of a short list of common words with
//!   an aspirated `h` ([`H_ASPIRE`]: `de Hors-série`, `de Hockey`).
//!   `à` is never elided.
//!
//! A label that opens the text (`{label} : ces messages…`) and starts with
//! a lowercase article gets a capital (`La Lettre d'information : …`).
//!
//! So the French label is best written with the article running text
//! should give it: `fr = "la Lettre d'information"` reads "Vous désabonner
//! de la Lettre d'information ?", `fr = "Offres pour les professionnels"`
//! reads "Vous désabonner d'Offres pour les professionnels ?". Where the
//! rule guesses wrong (an `h` it does not know), write the label with its
//! article, or override the text without `de` before `{label}`. Any other
//! `{label}` is filled in as written, so overridden texts keep working.

/// Common words whose `h` is aspirated (no elision), in lowercase, each
/// also matched with `s`, `e` or `es` added (`hauts`, `haute`).
pub const H_ASPIRE: &[&str] = &[
    "hache",
    "haie",
    "haine",
    "hall",
    "halle",
    "halte",
    "hamac",
    "hameau",
    "hamburger",
    "hamster",
    "hanche",
    "handball",
    "handicap",
    "hangar",
    "hanté",
    "happening",
    "harcèlement",
    "hardi",
    "hareng",
    "haricot",
    "harpe",
    "hasard",
    "hâte",
    "hausse",
    "haut",
    "havre",
    "hérisson",
    "hernie",
    "héron",
    "héros",
    "hêtre",
    "hibou",
    "hiérarchie",
    "hippie",
    "hobby",
    "hockey",
    "hold-up",
    "hollande",
    "homard",
    "hongrie",
    "honte",
    "hoquet",
    "hors",
    "hotte",
    "houblon",
    "housse",
    "hublot",
    "huit",
    "huitième",
    "hurlement",
    "hutte",
];

const PLACEHOLDER: &str = "{label}";

/// `text` with every `{label}` filled in by the rule of the module.
pub fn fill(text: &str, label: &str) -> String {
    let mut out = String::with_capacity(text.len() + label.len());
    let mut rest = text;
    let mut first = true;
    while let Some(at) = rest.find(PLACEHOLDER) {
        let before = &rest[..at];
        match preposition(before) {
            Some((start, prep)) => {
                out.push_str(&before[..start]);
                out.push_str(&prep.join(label));
            }
            None if first && before.is_empty() => out.push_str(&capitalised(label)),
            None => {
                out.push_str(before);
                out.push_str(label);
            }
        }
        first = false;
        rest = &rest[at + PLACEHOLDER.len()..];
    }
    out.push_str(rest);
    out
}

/// The label as it stands alone (a list, a sentence's first word): with
/// a capital if it starts with a lowercase article.
pub fn capitalised(label: &str) -> String {
    if article(label).is_some() || starts_with_word(label, "la") || elided_article(label) {
        let mut chars = label.chars();
        if let Some(c) = chars.next().filter(|c| c.is_lowercase()) {
            return c.to_uppercase().chain(chars).collect();
        }
    }
    label.to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prep {
    De { capital: bool },
    A { capital: bool },
}

/// The preposition `before` ends with (as a word, then one space), and
/// where it starts.
fn preposition(before: &str) -> Option<(usize, Prep)> {
    let stem = before.strip_suffix(' ')?;
    let (len, prep) = if stem.ends_with("de") {
        (2, Prep::De { capital: false })
    } else if stem.ends_with("De") {
        (2, Prep::De { capital: true })
    } else if stem.ends_with('à') {
        ('à'.len_utf8(), Prep::A { capital: false })
    } else if stem.ends_with('À') {
        ('À'.len_utf8(), Prep::A { capital: true })
    } else {
        return None;
    };
    let start = stem.len() - len;
    // A word of its own: `de`, not the end of `monde`.
    let whole = stem[..start]
        .chars()
        .next_back()
        .is_none_or(|c| !c.is_alphanumeric() && c != '\'' && c != '’' && c != '-');
    whole.then_some((start, prep))
}

/// `le` or `les` opening the label (which contract with `de` and `à`),
/// and what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Article<'a> {
    Le(&'a str),
    Les(&'a str),
}

fn article(label: &str) -> Option<Article<'_>> {
    let (word, rest) = label.split_once(' ')?;
    if word.eq_ignore_ascii_case("le") {
        Some(Article::Le(rest))
    } else if word.eq_ignore_ascii_case("les") {
        Some(Article::Les(rest))
    } else {
        None
    }
}

fn starts_with_word(label: &str, word: &str) -> bool {
    label
        .split_once(' ')
        .is_some_and(|(w, _)| w.eq_ignore_ascii_case(word))
}

/// `l'` or `l’` opening the label.
fn elided_article(label: &str) -> bool {
    let mut chars = label.chars();
    matches!(chars.next(), Some('l' | 'L')) && matches!(chars.next(), Some('\'' | '’'))
}

impl Prep {
    fn join(self, label: &str) -> String {
        let (capital, contracted, plain) = match self {
            Prep::De { capital } => (capital, ["du", "des"], "de"),
            Prep::A { capital } => (capital, ["au", "aux"], "à"),
        };
        let joined = match article(label) {
            Some(Article::Le(rest)) => format!("{} {rest}", contracted[0]),
            Some(Article::Les(rest)) => format!("{} {rest}", contracted[1]),
            None if matches!(self, Prep::De { .. }) && elides(label) => format!("d'{label}"),
            None => format!("{plain} {label}"),
        };
        if capital {
            capitalised_first(&joined)
        } else {
            joined
        }
    }
}

fn capitalised_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn is_vowel(c: char) -> bool {
    "aàâäeéèêëiîïoôöuùûüæœ".contains(c)
}

/// Whether `de` before `label` becomes `d'`.
fn elides(label: &str) -> bool {
    let word: String = label
        .chars()
        .take_while(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    let mut chars = word.chars();
    match chars.next() {
        Some(c) if is_vowel(c) => true,
        // `y` before a consonant is a vowel (Yves); before a vowel, not (yoga).
        Some('y') => chars.next().is_some_and(|c| !is_vowel(c)),
        Some('h') => !aspirated(&word),
        _ => false,
    }
}

fn aspirated(word: &str) -> bool {
    H_ASPIRE.iter().any(|h| {
        word.strip_prefix(h)
            .is_some_and(|rest| matches!(rest, "" | "s" | "e" | "es"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn de(label: &str) -> String {
        fill("Vous désabonner de {label} ?", label)
    }

    #[test]
    fn de_is_elided_before_a_vowel_and_a_mute_h() {
        assert_eq!(
            de("Offres pour les professionnels"),
            "Vous désabonner d'Offres pour les professionnels ?"
        );
        assert_eq!(de("Événements"), "Vous désabonner d'Événements ?");
        assert_eq!(de("œuvres"), "Vous désabonner d'œuvres ?");
        assert_eq!(
            de("Hôtels et séjours"),
            "Vous désabonner d'Hôtels et séjours ?"
        );
        assert_eq!(de("Yvelines infos"), "Vous désabonner d'Yvelines infos ?");
        assert_eq!(de("Newsletter"), "Vous désabonner de Newsletter ?");
        assert_eq!(de("Yoga"), "Vous désabonner de Yoga ?");
        assert_eq!(de("Hors-série"), "Vous désabonner de Hors-série ?");
        assert_eq!(
            de("Hauts de France"),
            "Vous désabonner de Hauts de France ?"
        );
        assert_eq!(de("Hockey"), "Vous désabonner de Hockey ?");
        assert_eq!(
            de("tous nos messages"),
            "Vous désabonner de tous nos messages ?"
        );
        assert_eq!(de("« Offres »"), "Vous désabonner de « Offres » ?");
        assert_eq!(de("8 conseils"), "Vous désabonner de 8 conseils ?");
    }

    #[test]
    fn articles_contract_or_stay() {
        assert_eq!(
            de("la Lettre d'information"),
            "Vous désabonner de la Lettre d'information ?"
        );
        assert_eq!(de("l'Agenda"), "Vous désabonner de l'Agenda ?");
        assert_eq!(de("le Bulletin"), "Vous désabonner du Bulletin ?");
        assert_eq!(de("Le Monde"), "Vous désabonner du Monde ?");
        assert_eq!(de("les Offres"), "Vous désabonner des Offres ?");
        assert_eq!(
            fill("Inscrit à {label}, et à {label}.", "le Bulletin"),
            "Inscrit au Bulletin, et au Bulletin."
        );
        assert_eq!(fill("À {label} !", "les Offres"), "Aux Offres !");
        assert_eq!(fill("à {label}", "Offres"), "à Offres");
        assert_eq!(fill("à {label}", "la Lettre"), "à la Lettre");
        assert_eq!(fill("De {label}", "Offres"), "D'Offres");
        assert_eq!(fill("De {label}", "le Bulletin"), "Du Bulletin");
    }

    #[test]
    fn only_the_word_de_agrees_and_other_placeholders_are_left_as_written() {
        // Not the end of another word, and not without its space.
        assert_eq!(fill("Monde {label}", "Offres"), "Monde Offres");
        assert_eq!(fill("Voilà {label}", "le Bulletin"), "Voilà le Bulletin");
        assert_eq!(fill("de{label}", "Offres"), "deOffres");
        assert_eq!(fill("recevoir {label}", "la Lettre"), "recevoir la Lettre");
        assert_eq!(fill("(de {label})", "Offres"), "(d'Offres)");
        assert_eq!(fill("no label here", "Offres"), "no label here");
    }

    #[test]
    fn a_label_that_opens_the_text_gets_a_capital_after_an_article() {
        assert_eq!(
            fill("{label} : toujours envoyés", "la Lettre"),
            "La Lettre : toujours envoyés"
        );
        assert_eq!(fill("{label}", "l'Agenda"), "L'Agenda");
        assert_eq!(fill("{label}", "les Offres"), "Les Offres");
        // Not a French article: left as written.
        assert_eq!(fill("{label} :", "eBay news"), "eBay news :");
        assert_eq!(fill("{label} :", "lettre"), "lettre :");
        assert_eq!(capitalised("la Lettre"), "La Lettre");
        assert_eq!(capitalised("Factures"), "Factures");
    }

    #[test]
    fn the_aspirated_h_list_is_lowercase_and_starts_with_h() {
        for word in H_ASPIRE {
            assert!(word.starts_with('h'), "{word}");
            assert_eq!(word.to_lowercase(), *word);
        }
        assert!(aspirated("hautes") && aspirated("héros") && !aspirated("héroïne"));
        assert!(!aspirated("huître") && !aspirated("hebdo"));
    }
}
