//! The charset of a text part: which ones we rewrite, decoding with a
//! round-trip guarantee, and encoding what we insert (URLs are ASCII; the
//! footer may not be, so characters the charset cannot hold are written as
//! HTML character references in HTML and transliterated in plain text).

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// What a part's declared charset lets us write, beyond what its encoder
/// accepts: `us-ascii` and `iso-8859-1` are decoded with windows-1252 (as
/// WHATWG does) so that any bytes round-trip, but inserted text keeps to
/// the declared repertoire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repertoire {
    Ascii,
    Latin1,
    Any,
}

/// A charset we can decode and re-encode exactly.
#[derive(Debug, Clone, Copy)]
pub(super) struct Charset {
    encoding: &'static Encoding,
    repertoire: Repertoire,
}

impl Charset {
    /// From the `charset` parameter (absent means us-ascii, RFC 2045).
    /// `None` for charsets we cannot rewrite safely: unknown labels, UTF-16
    /// (not ASCII-compatible) and stateful ones such as ISO-2022-JP.
    pub fn from_label(label: Option<&str>) -> Option<Charset> {
        let label = label.map_or("us-ascii", str::trim);
        let lower = label.to_ascii_lowercase();
        let repertoire = match lower.as_str() {
            "us-ascii" | "ascii" | "us" | "ansi_x3.4-1968" | "ansi_x3.4-1986" | "iso646-us"
            | "iso-ir-6" | "cp367" | "ibm367" | "csascii" => {
                return Some(Charset {
                    encoding: WINDOWS_1252,
                    repertoire: Repertoire::Ascii,
                });
            }
            "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "iso_8859-1:1987" | "latin1" | "l1"
            | "cp819" | "ibm819" | "iso-ir-100" | "csisolatin1" => Repertoire::Latin1,
            _ => Repertoire::Any,
        };
        let encoding = Encoding::for_label_no_replacement(lower.as_bytes())?;
        let usable = encoding == UTF_8
            || (encoding.is_ascii_compatible() && encoding.output_encoding() == encoding);
        usable.then_some(Charset {
            encoding,
            repertoire,
        })
    }

    /// The charset's name, for logs.
    pub fn name(&self) -> &'static str {
        match self.repertoire {
            Repertoire::Ascii => "us-ascii",
            Repertoire::Latin1 => "iso-8859-1",
            Repertoire::Any => self.encoding.name(),
        }
    }

    /// Decodes `bytes`, or `None` when they are not valid in the charset or
    /// would not encode back to exactly the same bytes.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Option<Cow<'a, str>> {
        if self.encoding == UTF_8 || bytes.is_ascii() {
            return std::str::from_utf8(bytes).ok().map(Cow::Borrowed);
        }
        let text = self
            .encoding
            .decode_without_bom_handling_and_without_replacement(bytes)?;
        let (back, _, unmappable) = self.encoding.encode(&text);
        (!unmappable && back.as_ref() == bytes).then_some(text)
    }

    /// Encodes text that came out of [`Charset::decode`] (so every
    /// character is representable) onto `out`.
    pub fn encode_decoded(&self, text: &str, out: &mut Vec<u8>) {
        if self.encoding == UTF_8 || text.is_ascii() {
            out.extend_from_slice(text.as_bytes());
        } else {
            out.extend_from_slice(&self.encoding.encode(text).0);
        }
    }

    /// Encodes inserted text (the footer) onto `out`. Characters outside
    /// the charset become `&#N;` in HTML and an ASCII look-alike in text.
    pub fn encode_inserted(&self, text: &str, html: bool, out: &mut Vec<u8>) {
        if self.encoding == UTF_8 || text.is_ascii() {
            out.extend_from_slice(text.as_bytes());
            return;
        }
        let mut buf = [0u8; 4];
        for c in text.chars() {
            if c.is_ascii() {
                out.push(c as u8);
                continue;
            }
            let fits = match self.repertoire {
                Repertoire::Ascii => false,
                // C1 controls are where windows-1252 and iso-8859-1 differ.
                Repertoire::Latin1 => ('\u{a0}'..='\u{ff}').contains(&c),
                Repertoire::Any => true,
            };
            if fits {
                let (bytes, _, unmappable) = self.encoding.encode(c.encode_utf8(&mut buf));
                if !unmappable {
                    out.extend_from_slice(&bytes);
                    continue;
                }
            }
            if html {
                out.extend_from_slice(format!("&#{};", u32::from(c)).as_bytes());
            } else {
                out.extend_from_slice(transliterate(c).as_bytes());
            }
        }
    }
}

/// An ASCII stand-in for a character a plain-text part's charset cannot
/// hold (French and English footers: accents, quotes, dashes, spaces).
fn transliterate(c: char) -> &'static str {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => "a",
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' => "A",
        'æ' => "ae",
        'Æ' => "AE",
        'ç' | 'ć' | 'č' => "c",
        'Ç' | 'Ć' | 'Č' => "C",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ę' | 'Ě' => "E",
        'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ī' => "I",
        'ñ' | 'ń' | 'ň' => "n",
        'Ñ' | 'Ń' | 'Ň' => "N",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => "o",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' => "O",
        'œ' => "oe",
        'Œ' => "OE",
        'ß' => "ss",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' => "u",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ū' | 'Ů' => "U",
        'ý' | 'ÿ' => "y",
        'Ý' | 'Ÿ' => "Y",
        'š' => "s",
        'Š' => "S",
        'ž' | 'ź' | 'ż' => "z",
        'Ž' | 'Ź' | 'Ż' => "Z",
        '‘' | '’' | '‚' | '′' => "'",
        '“' | '”' | '„' | '″' | '«' | '»' => "\"",
        '‹' => "<",
        '›' => ">",
        '–' | '—' | '‐' | '‑' | '−' => "-",
        '…' => "...",
        '•' | '·' => "*",
        '€' => "EUR",
        '©' => "(c)",
        '®' => "(R)",
        '™' => "(TM)",
        '\u{a0}' | '\u{202f}' | '\u{2009}' | '\u{2007}' => " ",
        _ => "?",
    }
}
