//! Broken and hostile input: rewritten correctly or forwarded unchanged,
//! never a panic, a bare CR or LF, or a new over-long line.

use super::*;

/// The copy's body is the input's, byte for byte.
fn assert_body_unchanged(raw: &[u8], out: &[u8]) {
    assert_eq!(
        String::from_utf8_lossy(body_of(out)),
        String::from_utf8_lossy(body_of(raw))
    );
}

#[test]
fn boundary_that_never_closes_forwards_the_body_unchanged() {
    let raw = corpus!("unclosed_boundary.eml");
    let (template, out) = copy(&raw);
    let reason = template.fallback_reason().expect("a reason");
    assert!(reason.contains("never closes"), "{reason}");
    assert_body_unchanged(&raw, &out);
    assert!(header_values(&out, "X-Campaign").is_empty());
    assert_eq!(header_values(&out, "List-Unsubscribe").len(), 1);
    parsed_texts(&out);
}

#[test]
fn malformed_base64_part_is_left_and_the_other_rewritten() {
    let raw = corpus!("bad_base64.eml");
    let (template, out) = copy(&raw);
    let reason = template.fallback_reason().expect("a reason");
    assert!(reason.contains("left unchanged"), "{reason}");
    let texts = parsed_texts(&out);
    assert_eq!(texts[0].text, format!("Unsubscribe: {UNSUB}"));
    let body = String::from_utf8_lossy(body_of(&out)).into_owned();
    assert!(body.ends_with(
        "base64\r\n\r\nPGh0bWw+W1tVTlNVQlNDUklCRV9VUkxdXT!!!*** not base64 at all\r\n--bb--\r\n"
    ));
}

#[test]
fn malformed_quoted_printable_next_to_a_placeholder_is_left() {
    let raw = corpus!("bad_qp.eml");
    let (template, out) = copy(&raw);
    let reason = template.fallback_reason().expect("a reason");
    assert!(reason.contains("malformed quoted-printable"), "{reason}");
    assert_body_unchanged(&raw, &out);
}

#[test]
fn malformed_quoted_printable_elsewhere_is_kept_as_it_was() {
    let raw = crlf(
        b"X-Campaign: c\nContent-Type: text/plain; charset=utf-8\n\
          Content-Transfer-Encoding: quoted-printable\n\nbroken =ZZ here\nlink [[OPTIN_URL]]\n",
    );
    let (template, out) = copy(&raw);
    assert_eq!(template.fallback_reason(), None);
    assert_eq!(
        String::from_utf8_lossy(body_of(&out)),
        format!("broken =ZZ here\r\nlink {OPTIN}\r\n")
    );
}

#[test]
fn unknown_charset_part_is_left_and_the_html_rewritten() {
    let raw = corpus!("unknown_charset.eml");
    let (template, out) = copy(&raw);
    let reason = template.fallback_reason().expect("a reason");
    assert!(reason.contains("x-klingon"), "{reason}");
    let body = body_of(&out);
    let kept: &[u8] = b"\r\n\r\nUnsubscribe: [[UNSUBSCRIBE_URL]] \xa4\xa4\r\n--uc";
    assert!(body.windows(kept.len()).any(|w| w == kept));
    let html = format!("<p><a href=\"{UNSUB_HTML}\">unsubscribe</a></p>");
    assert!(body.windows(html.len()).any(|w| w == html.as_bytes()));
}

#[test]
fn utf16_part_is_left() {
    let text: Vec<u8> = "Bye: [[UNSUBSCRIBE_URL]]\r\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut raw = crlf(
        b"X-Campaign: c\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-16le\n\
          Content-Transfer-Encoding: base64\n\n",
    );
    raw.extend(
        base64::engine::general_purpose::STANDARD
            .encode(&text)
            .as_bytes(),
    );
    raw.extend(b"\r\n");
    let (template, out) = copy(&raw);
    assert!(template.has_placeholders());
    assert!(
        template
            .fallback_reason()
            .expect("reason")
            .contains("utf-16le")
    );
    assert_body_unchanged(&raw, &out);
}

/// A text part under `depth` nested multipart/mixed levels.
fn nested(depth: usize) -> Vec<u8> {
    let mut raw = b"From: a@shop.example\r\nX-Campaign: c\r\nMIME-Version: 1.0\r\n".to_vec();
    raw.extend(b"Content-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n");
    for i in 1..depth {
        raw.extend(
            format!(
                "--b{}\r\nContent-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n",
                i - 1
            )
            .as_bytes(),
        );
    }
    raw.extend(
        format!(
            "--b{}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDeep: [[UNSUBSCRIBE_URL]]\r\n",
            depth - 1
        )
        .as_bytes(),
    );
    for i in (0..depth).rev() {
        raw.extend(format!("--b{i}--\r\n").as_bytes());
    }
    raw
}

#[test]
fn hundred_levels_of_nesting_are_rewritten() {
    let raw = nested(100);
    let (template, out) = copy(&raw);
    assert_eq!(template.fallback_reason(), None);
    let texts = parsed_texts(&out);
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0].text, format!("Deep: {UNSUB}"));
    python_texts(&out);
}

#[test]
fn thousands_of_levels_do_not_panic() {
    let raw = nested(3000);
    let (_, out) = copy(&raw);
    assert!(out.len() > raw.len());
}

#[test]
fn nested_attached_messages_do_not_panic() {
    let mut raw = Vec::new();
    for _ in 0..200 {
        raw.extend(b"Content-Type: message/rfc822\r\n\r\n");
    }
    raw.extend(b"X-Campaign: c\r\nSubject: x\r\n\r\n[[UNSUBSCRIBE_URL]]\r\n");
    let (_, out) = copy(&raw);
    assert!(!out.is_empty());
}

#[test]
fn raw_cr_and_lf_in_header_values_are_repaired() {
    let raw = b"From: a@shop.example\r\nSubject: one\rtwo\nthree\r\nX-Campaign: c\r\n\tmore\n\
                To: b@example.org\r\n\r\nbody [[UNSUBSCRIBE_URL]]\nline\r\n"
        .to_vec();
    let (template, out) = copy(&raw);
    assert!(
        template
            .fallback_reason()
            .expect("reason")
            .contains("bare CR or LF")
    );
    assert_eq!(header_values(&out, "Subject"), ["one two three"]);
    assert!(header_values(&out, "X-Campaign").is_empty());
    assert_eq!(header_values(&out, "To"), ["b@example.org"]);
    assert_eq!(
        String::from_utf8_lossy(body_of(&out)),
        format!("body {UNSUB}\r\nline\r\n")
    );
    python_texts(&out);
}

#[test]
fn hostile_links_and_list_id_cannot_inject_headers() {
    let raw = corpus!("no_mime.eml");
    let template = Template::parse(&raw, "X-Campaign");
    let links = Links {
        unsubscribe: "https://relay.example/u/T\r\nBcc: victim@example.org",
        preferences: "https://relay.example/p/\"><script>",
        optin: "https://relay.example/o/\n",
        mailto: Some("mailto:u@relay.example>\r\nX-Evil: 1"),
    };
    let list = ListHeaders {
        list_id: Some("evil\r\nBcc: victim@example.org"),
        add_unsubscribe: true,
        feedback: None,
    };
    let out = template.render(&links, &list, Some(&FOOTER));
    assert_well_formed(&raw, &out);
    let head = header_block(&out);
    assert!(!head.contains("\r\nBcc:"), "{head}");
    assert!(!head.contains("\r\nX-Evil:"), "{head}");
    assert!(head.contains("<https://relay.example/u/T%0D%0ABcc:%20victim@example.org>"));
    let body = String::from_utf8_lossy(body_of(&out)).into_owned();
    assert!(body.contains("https://relay.example/p/%22%3E%3Cscript%3E"));
    python_texts(&out);
}

#[test]
fn long_line_in_7bit_becomes_quoted_printable() {
    let mut raw = b"From: a@shop.example\r\nX-Campaign: c\r\nSubject: long\r\n\r\n".to_vec();
    raw.extend(std::iter::repeat_n(b'x', 970));
    raw.extend(b" [[UNSUBSCRIBE_URL]]\r\nshort line\r\n");
    let (template, out) = copy(&raw);
    assert_eq!(template.fallback_reason(), None);
    assert_eq!(header_values(&out, "MIME-Version"), ["1.0"]);
    assert_eq!(
        header_values(&out, "Content-Transfer-Encoding"),
        ["quoted-printable"]
    );
    assert!(body_of(&out).split(|&b| b == b'\n').all(|l| l.len() <= 77));
    let expected = format!("{} {UNSUB}\nshort line\n", "x".repeat(970));
    check_texts(&out, |t| assert_eq!(t.text, expected));
}

#[test]
fn eight_bit_footer_in_a_7bit_utf8_part_becomes_quoted_printable() {
    let raw = crlf(
        b"From: a@shop.example\nX-Campaign: c\nMIME-Version: 1.0\n\
          Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\nHi.\n",
    );
    let (_, out) = copy(&raw);
    assert_eq!(
        header_values(&out, "Content-Transfer-Encoding"),
        ["quoted-printable"]
    );
    assert_eq!(header_values(&out, "MIME-Version"), ["1.0"]);
    assert!(out.is_ascii());
    check_texts(&out, |t| {
        assert_eq!(
            t.text,
            format!("Hi.\n\nPour gérer vos abonnements : {PREFS}\n")
        );
    });
}

#[test]
fn degenerate_inputs_do_not_panic() {
    let inputs: [&[u8]; 9] = [
        b"",
        b"\r\n",
        b"\r\n\r\nbody only",
        b"X-Campaign: c",
        b"X-Campaign: c\r\nSubject: no body",
        b"no colon at all\r\n\r\n[[UNSUBSCRIBE_URL]]",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x--\r\n",
        b"Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\n[[OPTIN_URL]]\r\n--x--\r\n",
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n====\r\n",
    ];
    for raw in inputs {
        let (_, out) = copy(raw);
        assert!(out.starts_with(b"List-Unsubscribe: "), "{out:?}");
    }
}

/// A small deterministic generator for the mutation test.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }
}

#[test]
fn mutated_corpus_never_panics_nor_emits_bad_lines() {
    let corpus = [
        corpus!("alt_qp_b64.eml"),
        corpus!("mixed_pdf.eml"),
        corpus!("latin1_qp.eml"),
        corpus!("soft_break.eml"),
        corpus!("no_placeholder.eml"),
        corpus!("no_mime.eml"),
        corpus!("bad_base64.eml"),
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let nasty: &[u8] = b"\r\n=-[]<>\0\xff\x80 \t:;\"";
    for raw in &corpus {
        for _ in 0..150 {
            let mut m = raw.clone();
            match rng.next() % 4 {
                0 => m.truncate(rng.next() % m.len()),
                1 => {
                    for _ in 0..1 + rng.next() % 8 {
                        let at = rng.next() % m.len();
                        m[at] = nasty[rng.next() % nasty.len()];
                    }
                }
                2 => {
                    let at = rng.next() % m.len();
                    let len = rng.next() % 64;
                    m.drain(at..(at + len).min(m.len()));
                }
                _ => {
                    let at = rng.next() % m.len();
                    let piece: Vec<u8> = m[at..].iter().take(rng.next() % 200).copied().collect();
                    let to = rng.next() % m.len();
                    m.splice(to..to, piece);
                }
            }
            let template = Template::parse(&m, "X-Campaign");
            for footer in [Some(&FOOTER), None] {
                let out = template.render(&links(), &list(), footer);
                assert_well_formed(&m, &out);
                assert!(header_values(&out, "X-Campaign").is_empty());
            }
        }
    }
}

/// Found by the `rewrite` fuzz target: a message that is one header line
/// without CRLF (976 octets). The list headers must start a line of their
/// own, not be glued to the unterminated field.
#[test]
fn fuzz_unterminated_last_header_line_gets_no_glued_header() {
    let mut raw = b"Received: from crm.example by relay.example; ".to_vec();
    raw.extend(std::iter::repeat_n(b'x', 930));
    let (_, out) = copy(&raw);
    assert_well_formed(&raw, &out);
    let longest = out
        .split(|&b| b == b'\n')
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0);
    assert!(longest <= 1000, "a line of {longest} octets");
}

/// Every line of `out` is at most 998 octets, CRLF excluded.
fn assert_short_lines(out: &[u8]) {
    for line in out.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(line.len() <= 998, "a line of {} octets", line.len());
    }
}

#[test]
fn a_header_block_without_its_empty_line_ends_at_the_first_body_line() {
    // RFC 5322: "body line" is not a field, so the header block ends there.
    let raw = b"X-Campaign: promo\r\nbody line [[UNSUBSCRIBE_URL]]\r\n";
    let (template, out) = copy(raw);
    assert!(template.fallback_reason().is_some());
    let header = header_block(&out);
    assert!(!header.contains("body line"), "{header}");
    assert!(header_values(&out, "X-Campaign").is_empty());
    assert_eq!(header_values(&out, "List-Unsubscribe").len(), 1);
    assert_eq!(
        String::from_utf8_lossy(body_of(&out)),
        format!("body line {UNSUB}\r\n")
    );
    check_texts(&out, |t| assert_eq!(t.text, format!("body line {UNSUB}\n")));
}

#[test]
fn a_header_only_message_gets_the_footer() {
    let raw = b"From: a@shop.example\r\nX-Campaign: promo\r\nSubject: s\r\n";
    let (_, out) = copy(raw);
    assert_eq!(header_values(&out, "Subject"), ["s"]);
    check_texts(&out, |t| {
        assert!(t.text.contains(PREFS), "{:?}", t.text);
    });
}

#[test]
fn a_line_without_a_colon_ends_the_header_block_so_a_field_after_it_is_body() {
    // The field after the line is body text: not the campaign, not removed.
    let raw = b"Subject: s\r\nno colon\r\nX-Campaign: invoices\r\n\r\nHi\r\n";
    let (_, out) = copy(raw);
    assert_eq!(header_values(&out, "Subject"), ["s"]);
    assert!(header_values(&out, "X-Campaign").is_empty());
    let body = String::from_utf8_lossy(body_of(&out)).into_owned();
    assert!(
        body.starts_with("no colon\r\nX-Campaign: invoices\r\n\r\nHi\r\n"),
        "{body}"
    );
}

/// swaks and minified CRM HTML: one 5,000-octet line.
fn long_html(len: usize) -> String {
    let mut html = String::from("<html><body><table>");
    let mut i = 0;
    while html.len() < len {
        html.push_str(&format!(
            "<tr><td class=\"c{i}\">cell {i} = caf\u{e9}</td></tr>"
        ));
        i += 1;
    }
    html.push_str("</table></body></html>");
    html
}

#[test]
fn a_long_html_line_is_re_encoded_as_quoted_printable_with_its_content_intact() {
    let html = long_html(5000);
    let raw = format!(
        "From: a@shop.example\r\nX-Campaign: c\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{html}\r\n"
    );
    assert!(super::super::long_line_problem(raw.as_bytes()).is_none());
    let (_, out) = copy(raw.as_bytes());
    assert_short_lines(&out);
    assert_eq!(
        header_values(&out, "Content-Transfer-Encoding"),
        ["quoted-printable"]
    );
    // The footer goes before </body>; the rest is the line as it was.
    let footer = "<p class=\"footer\">Pour gérer vos <a href=\"https://relay.example/p/PREF-1\">abonnements</a></p>";
    let expected = html.replace("</body>", &format!("\n{footer}\n</body>"));
    check_texts(&out, |t| assert_eq!(t.text.trim_end(), expected));
}

#[test]
fn long_lines_in_every_kind_of_part_are_re_encoded() {
    let long_text = "word ".repeat(600);
    let long_b64 = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 3000]);
    let raw = format!(
        "From: a@shop.example\r\nX-Campaign: c\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\n{long_text}\r\nshort\r\n\
         --b\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=a.csv\r\n\r\n{long_text}\r\n\
         --b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{long_b64}\r\n\
         --b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{long_text}=3D\r\n\
         --b--\r\n"
    );
    let (_, out) = copy(raw.as_bytes());
    assert_short_lines(&out);
    let message = mail_parser::MessageParser::default()
        .parse(&out)
        .expect("parses");
    let bodies: Vec<Vec<u8>> = message.parts[1..]
        .iter()
        .map(|p| p.contents().to_vec())
        .collect();
    assert!(bodies[0].starts_with(format!("{long_text}\r\nshort").as_bytes()));
    assert_eq!(bodies[1], long_text.as_bytes(), "the attachment, intact");
    assert_eq!(bodies[2], vec![7u8; 3000]);
    assert!(bodies[3].starts_with(format!("{long_text}=").as_bytes()));
}

#[test]
fn long_lines_that_cannot_be_re_encoded_are_named() {
    let long = "x".repeat(1200);
    let signed = format!(
        "From: a@shop.example\r\nX-Campaign: c\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/signed; boundary=s; protocol=\"application/pgp-signature\"\r\n\r\n\
         --s\r\nContent-Type: text/plain\r\n\r\n{long}\r\n--s\r\nContent-Type: application/pgp-signature\r\n\r\nsig\r\n--s--\r\n"
    );
    let why = super::super::long_line_problem(signed.as_bytes()).expect("refused");
    assert!(why.contains("multipart/signed"), "{why}");
    let header = format!("From: a@shop.example\r\nX-Long: {long}\r\n\r\nHi\r\n");
    let why = super::super::long_line_problem(header.as_bytes()).expect("refused");
    assert!(why.contains("header line"), "{why}");
    assert!(super::super::long_line_problem(b"Subject: s\r\n\r\nshort\r\n").is_none());
}
