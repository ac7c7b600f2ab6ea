//! The corpus messages, rendered and read back.

use super::*;

#[test]
fn alternative_with_qp_text_and_base64_html_gets_links() {
    let raw = corpus!("alt_qp_b64.eml");
    let (template, out) = copy(&raw);
    assert!(template.has_placeholders());
    assert_eq!(template.fallback_reason(), None);

    // Headers: campaign fields (both, the folded one too) and the sender's
    // List-Unsubscribe gone, ours after Received, the rest as it was.
    assert!(header_values(&out, "X-Campaign").is_empty());
    assert!(!header_block(&out).contains("folded continuation"));
    assert_eq!(header_values(&out, "X-Campaign-Note"), ["kept"]);
    assert_eq!(
        header_values(&out, "List-Unsubscribe"),
        [format!("<{UNSUB}>, <{MAILTO}>")]
    );
    assert_eq!(
        header_values(&out, "List-Unsubscribe-Post"),
        ["List-Unsubscribe=One-Click"]
    );
    assert_eq!(
        header_values(&out, "List-Id"),
        ["<newsletter.shop.example>"]
    );
    let ours = ["List-Unsubscribe:", "List-Unsubscribe-Post:", "List-Id:"];
    let out_fields: Vec<String> = fields(&header_block(&out))
        .into_iter()
        .filter(|f| !ours.iter().any(|n| f.starts_with(n)))
        .collect();
    let in_fields: Vec<String> = fields(&header_block(&raw))
        .into_iter()
        .filter(|f| !f.to_ascii_lowercase().starts_with("x-campaign:"))
        .filter(|f| !f.starts_with("List-Unsubscribe:"))
        .collect();
    assert_eq!(out_fields, in_fields);
    assert!(header_block(&out).starts_with("Received: from crm.example"));
    let after_received = header_block(&out).split("\r\n").nth(2).map(str::to_owned);
    assert_eq!(
        after_received.as_deref(),
        Some(format!("List-Unsubscribe: <{UNSUB}>,").as_str())
    );

    // Preamble and epilogue kept.
    assert!(body_of(&out).starts_with(b"This is a multi-part message in MIME format.\r\n"));
    assert!(out.ends_with(b"\r\n--=_alt_1--\r\n\r\n"));

    let texts = check_texts(&out, |t| {
        assert!(!t.text.contains("[["), "placeholder left: {}", t.text);
        if t.html {
            assert!(
                t.text
                    .contains(&format!("<a href=\"{UNSUB_HTML}\">Se désabonner</a>"))
            );
            assert!(
                t.text
                    .contains(&format!("<a href=\"{PREFS}\">Préférences</a>"))
            );
            assert!(t.text.contains("crème brûlée"));
            assert!(
                !t.text.contains("abonnements"),
                "no footer with placeholders"
            );
        } else {
            assert!(
                t.text
                    .contains(&format!("Pour vous désabonner : {UNSUB}\n"))
            );
            assert!(t.text.contains(&format!("un peu : {PREFS} fin.")));
            assert!(t.text.contains("café, thé et crème brûlée."));
            assert!(!t.text.contains("abonnements"));
        }
    });
    assert_eq!(texts.len(), 2);

    // Encoded lines: QP at most 76, base64 exactly 76 but the last.
    let body = String::from_utf8(body_of(&out).to_vec()).expect("ascii body");
    let (text_part, html_part) = body
        .split_once("Content-Type: text/html")
        .expect("two parts");
    assert!(text_part.lines().all(|l| l.len() <= 76));
    let b64: Vec<&str> = html_part
        .split("\r\n\r\n")
        .nth(1)
        .expect("html body")
        .lines()
        .take_while(|l| !l.starts_with("--"))
        .collect();
    assert!(b64.len() > 3);
    assert!(b64[..b64.len() - 1].iter().all(|l| l.len() == 76));
}

#[test]
fn pdf_attachment_text_attachment_and_attached_message_stay_byte_for_byte() {
    let raw = corpus!("mixed_pdf.eml");
    let (template, out) = copy(&raw);
    assert!(template.has_placeholders());
    assert_eq!(template.fallback_reason(), None);
    let from = raw
        .windows(12)
        .position(|w| w == b"\r\n--mixed-XY")
        .and_then(|first| {
            raw[first + 2..]
                .windows(12)
                .position(|w| w == b"\r\n--mixed-XY")
                .map(|p| first + 2 + p)
        })
        .expect("second mixed boundary");
    assert!(raw[from..].starts_with(b"\r\n--mixed-XYZ\r\nContent-Type: application/pdf"));
    assert!(out.ends_with(&raw[from..]), "attachments changed");

    let mut pdf =
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
            .to_vec();
    pdf.extend(0..=255u8);
    pdf.extend_from_slice(b"\n%%EOF\n");
    let message = MessageParser::default().parse(&out).expect("parses");
    let decoded = message
        .attachments()
        .find(|a| a.content_type().and_then(|c| c.subtype()) == Some("pdf"))
        .map(|a| a.contents().to_vec());
    assert_eq!(decoded, Some(pdf));

    let texts = check_texts(&out, |t| {
        if t.attachment {
            assert!(t.text.contains("[[UNSUBSCRIBE_URL]]"));
        } else if t.text.contains("forwarded message") {
            // Python walks into the attached message: untouched.
            assert!(t.text.contains("[[OPTIN_URL]]"));
        } else if t.html {
            assert!(
                t.text
                    .contains(&format!("<a href=\"{PREFS}\">Préférences</a>"))
            );
        } else {
            assert_eq!(
                t.text.trim_end(),
                format!("Votre facture est jointe. Préférences : {PREFS}")
            );
        }
    });
    assert!(texts.iter().any(|t| t.attachment));
}

#[test]
fn iso_8859_1_quoted_printable_keeps_its_charset() {
    let raw = corpus!("latin1_qp.eml");
    let (template, out) = copy(&raw);
    assert_eq!(template.fallback_reason(), None);
    let body = String::from_utf8(body_of(&out).to_vec()).expect("qp is ascii");
    assert!(body.starts_with("Ch=E8re cliente, notre caf=E9 vous attend =E0 No=EBl.\r\n"));
    assert!(!body.contains("=C3"), "no UTF-8 in a latin-1 part");
    assert!(body.contains("(=E9t=E9 2026)."));
    check_texts(&out, |t| {
        assert!(
            t.text
                .contains("Chère cliente, notre café vous attend à Noël.")
        );
        assert!(t.text.contains(&format!("Désinscription : {UNSUB}\n")));
        assert!(
            t.text
                .contains(&format!("inscription : {OPTIN} (été 2026)."))
        );
    });
}

#[test]
fn placeholder_split_by_a_soft_line_break_is_replaced() {
    let raw = corpus!("soft_break.eml");
    let (_, out) = copy(&raw);
    check_texts(&out, |t| {
        assert_eq!(
            t.text,
            format!(
                "A placeholder split by a soft line break: {UNSUB} and one split right after \
                 the brackets {PREFS} end.\n"
            )
        );
    });
}

#[test]
fn message_without_placeholder_gets_the_footer_in_text_and_html() {
    let raw = corpus!("no_placeholder.eml");
    let (template, out) = copy(&raw);
    assert!(!template.has_placeholders());
    assert_eq!(template.fallback_reason(), None);
    let texts = check_texts(&out, |t| {
        if t.html {
            let footer = format!(
                "<p class=\"footer\">Pour gérer vos <a href=\"{PREFS}\">abonnements</a></p>"
            );
            let at = t.text.find(&footer).expect("html footer");
            let close = t.text.find("</BODY>").expect("body close");
            assert!(at < close, "footer before </body>");
            assert!(t.text.contains("Café et thé."));
        } else {
            // us-ascii part: the accent is transliterated.
            assert_eq!(
                t.text,
                format!(
                    "Hello,\nthis message has no placeholder.\n\nPour gerer vos abonnements : \
                     {PREFS}\n"
                )
            );
        }
    });
    assert_eq!(texts.len(), 2);
    // The 7bit part stays 7bit.
    assert!(body_of(&out).is_ascii());
}

#[test]
fn mandatory_copy_has_no_list_unsubscribe_and_no_footer() {
    let raw = corpus!("no_placeholder.eml");
    let template = Template::parse(&raw, "x-campaign");
    let no_list = ListHeaders {
        list_id: None,
        add_unsubscribe: false,
        feedback: None,
    };
    let out = template.render(&links(), &no_list, None);
    assert_well_formed(&raw, &out);
    // Exactly the input without its campaign header.
    let expected = String::from_utf8(raw.clone())
        .expect("ascii")
        .replace("X-Campaign: newsletter\r\n", "");
    assert_eq!(String::from_utf8(out).expect("ascii"), expected);

    // With a list id: only List-Id is added.
    let with_id = ListHeaders {
        list_id: Some("invoices.shop.example"),
        add_unsubscribe: false,
        feedback: None,
    };
    let out = template.render(&links(), &with_id, None);
    assert!(header_values(&out, "List-Unsubscribe").is_empty());
    assert!(header_values(&out, "List-Unsubscribe-Post").is_empty());
    assert_eq!(header_values(&out, "List-Id"), ["<invoices.shop.example>"]);
    python_texts(&out);
}

#[test]
fn message_without_mime_is_rewritten_in_place() {
    let raw = corpus!("no_mime.eml");
    let (template, out) = copy(&raw);
    assert_eq!(template.fallback_reason(), None);
    assert_eq!(
        String::from_utf8_lossy(body_of(&out)),
        format!("Hello,\r\nunsubscribe here: {UNSUB}\r\nor manage preferences: <{PREFS}>\r\n")
    );
    assert!(header_values(&out, "Content-Transfer-Encoding").is_empty());
    check_texts(&out, |t| assert!(t.text.contains(UNSUB)));
}

#[test]
fn message_without_mime_and_placeholder_gets_an_ascii_footer() {
    let raw = crlf(b"From: a@shop.example\nTo: b@example.org\nX-Campaign: c\nSubject: s\n\nHi.\n");
    let (_, out) = copy(&raw);
    assert_eq!(
        String::from_utf8_lossy(body_of(&out)),
        format!("Hi.\r\n\r\nPour gerer vos abonnements : {PREFS}\r\n")
    );
    check_texts(&out, |_| {});
}
