//! The pieces: encoders, header folding, charsets, and smaller behaviours.

use super::super::charset::Charset;
use super::super::transfer;
use super::*;

#[test]
fn quoted_printable_lines_stay_within_76_and_round_trip() {
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for len in [0usize, 1, 74, 75, 76, 77, 150, 1000] {
        let data: Vec<u8> = (0..len)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                // Mostly text, some spaces, '=' and 8-bit.
                b"abc =\t\xe9\xff\r\nxyz"[(rng % 13) as usize]
            })
            .collect();
        let mut enc = Vec::new();
        transfer::qp_encode_line(&data, &mut enc);
        for line in enc.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            assert!(line.len() <= 76, "{}", line.len());
            assert!(line.iter().all(|&b| (32..=126).contains(&b) || b == b'\t'));
            assert!(!line.ends_with(b" ") && !line.ends_with(b"\t"));
        }
        let mut dec = Vec::new();
        assert!(transfer::qp_decode_line(&enc, &mut dec));
        assert_eq!(dec, data);
    }
}

#[test]
fn quoted_printable_encodes_trailing_space_and_equals() {
    let mut enc = Vec::new();
    transfer::qp_encode_line(b"a=b ", &mut enc);
    assert_eq!(enc, b"a=3Db=20");
}

#[test]
fn base64_is_wrapped_at_76() {
    let data = vec![7u8; 1000];
    let mut enc = Vec::new();
    transfer::base64_encode_lines(&data, &mut enc);
    let lines: Vec<&[u8]> = enc.split(|&b| b == b'\n').collect();
    assert!(lines[..lines.len() - 1].iter().all(|l| l.len() == 77));
    assert_eq!(transfer::base64_decode(&enc), Some(data));
}

#[test]
fn charsets_we_cannot_rewrite_are_refused() {
    for label in ["utf-16", "UTF-16LE", "iso-2022-jp", "x-klingon", "utf-7"] {
        assert!(Charset::from_label(Some(label)).is_none(), "{label}");
    }
    for label in [
        "utf-8",
        "UTF8",
        "iso-8859-15",
        "windows-1252",
        "shift_jis",
        "gb18030",
    ] {
        assert!(Charset::from_label(Some(label)).is_some(), "{label}");
    }
}

#[test]
fn latin1_footer_keeps_to_latin1() {
    let latin1 = Charset::from_label(Some("ISO-8859-1")).expect("latin-1");
    let mut out = Vec::new();
    latin1.encode_inserted("é 5 € ’", false, &mut out);
    assert_eq!(out, b"\xe9 5 EUR '");
    out.clear();
    latin1.encode_inserted("é 5 €", true, &mut out);
    assert_eq!(out, b"\xe9 5 &#8364;");
}

#[test]
fn very_long_links_are_folded_under_998() {
    let raw = corpus!("no_mime.eml");
    let long = format!("https://relay.example/u/{}", "A".repeat(1500));
    let links = Links {
        unsubscribe: &long,
        ..links()
    };
    let out = Template::parse(&raw, "X-Campaign").render(&links, &list(), None);
    assert_well_formed(&raw, &out);
    let value: String = header_values(&out, "List-Unsubscribe")[0]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    assert_eq!(value, format!("<{long}>,<{MAILTO}>"));
    python_texts(&out);
}

#[test]
fn short_list_unsubscribe_stays_on_one_line() {
    let raw = corpus!("no_mime.eml");
    let links = Links {
        unsubscribe: "https://r.example/u/1",
        mailto: Some("mailto:u+1@r.example"),
        ..links()
    };
    let out = Template::parse(&raw, "X-Campaign").render(&links, &list(), None);
    assert!(
        header_block(&out)
            .contains("List-Unsubscribe: <https://r.example/u/1>, <mailto:u+1@r.example>\r\n")
    );
}

#[test]
fn existing_list_id_is_replaced_only_when_we_add_ours() {
    let raw = crlf(b"List-Id: Old <old.example>\nX-Campaign: c\nSubject: s\n\nbody\n");
    let template = Template::parse(&raw, "X-Campaign");
    let out = template.render(&links(), &list(), None);
    assert_eq!(
        header_values(&out, "List-Id"),
        ["<newsletter.shop.example>"]
    );
    let keep = ListHeaders {
        list_id: None,
        ..list()
    };
    let out = template.render(&links(), &keep, None);
    assert_eq!(header_values(&out, "List-Id"), ["Old <old.example>"]);
    let named = ListHeaders {
        list_id: Some("Shop news <news.shop.example>"),
        ..list()
    };
    let out = template.render(&links(), &named, None);
    assert_eq!(
        header_values(&out, "List-Id"),
        ["Shop news <news.shop.example>"]
    );
}

#[test]
fn feedback_headers_replace_the_senders_own() {
    let raw = crlf(
        b"Received: from crm\nX-Consent-Relay-Delivery: b-forged\nFeedback-ID: x:evil\n\
          cfbl-address: evil@example.org; report=arf\nCFBL-Feedback-ID: b-forged\n\
          X-Campaign: c\nSubject: s\n\nbody\n",
    );
    let template = Template::parse(&raw, "X-Campaign");
    let feedback = FeedbackHeaders {
        delivery: "b-token",
        campaign: "news",
        sender_id: "relay",
        cfbl_address: Some("fbl@relay.example"),
    };
    let with = ListHeaders {
        feedback: Some(feedback),
        ..list()
    };
    let out = template.render(&links(), &with, None);
    assert_well_formed(&raw, &out);
    assert_eq!(header_values(&out, "X-Consent-Relay-Delivery"), ["b-token"]);
    assert_eq!(header_values(&out, "Feedback-ID"), ["news:relay"]);
    assert_eq!(
        header_values(&out, "CFBL-Address"),
        ["fbl@relay.example; report=arf"]
    );
    assert_eq!(header_values(&out, "CFBL-Feedback-ID"), ["b-token"]);
    // After the leading Received, before the rest.
    let text = String::from_utf8(out).expect("ascii");
    assert!(
        text.starts_with("Received: from crm\r\nX-Consent-Relay-Delivery: b-token\r\n"),
        "{text}"
    );

    // Without an address, no CFBL field; without feedback headers, none,
    // and never the sender's.
    let no_cfbl = ListHeaders {
        feedback: Some(FeedbackHeaders {
            cfbl_address: None,
            ..feedback
        }),
        ..list()
    };
    let out = template.render(&links(), &no_cfbl, None);
    assert_eq!(header_values(&out, "Feedback-ID"), ["news:relay"]);
    assert!(header_values(&out, "CFBL-Address").is_empty());
    assert!(header_values(&out, "CFBL-Feedback-ID").is_empty());
    let out = template.render(&links(), &list(), None);
    for name in FEEDBACK_FIELDS {
        assert!(header_values(&out, name).is_empty(), "{name}");
    }
}

#[test]
fn signed_content_is_never_rewritten() {
    let raw = crlf(
        b"From: a@shop.example\nX-Campaign: c\nMIME-Version: 1.0\n\
          Content-Type: multipart/signed; boundary=s; protocol=\"application/pgp-signature\"\n\n\
          --s\nContent-Type: text/plain\n\nSigned [[UNSUBSCRIBE_URL]]\n\
          --s\nContent-Type: application/pgp-signature\n\nSIG\n--s--\n",
    );
    let (template, out) = copy(&raw);
    assert!(
        template
            .fallback_reason()
            .expect("reason")
            .contains("signed")
    );
    assert_eq!(body_of(&out), body_of(&raw));
}

#[test]
fn html_footer_goes_before_the_last_body_close_or_at_the_end() {
    let with_close = crlf(
        b"X-Campaign: c\nContent-Type: text/html; charset=utf-8\n\n\
          <p>a</p></body><!-- </body> --></body></html>\n",
    );
    let footer =
        format!("<p class=\"footer\">Pour gérer vos <a href=\"{PREFS}\">abonnements</a></p>");
    let (_, out) = copy(&with_close);
    // 7bit cannot hold the footer's "é": the part became quoted-printable.
    assert_eq!(
        header_values(&out, "Content-Transfer-Encoding"),
        ["quoted-printable"]
    );
    check_texts(&out, |t| {
        assert_eq!(
            t.text,
            format!("<p>a</p></body><!-- </body> -->\n{footer}\n</body></html>\n")
        );
    });
    let without = crlf(b"X-Campaign: c\nContent-Type: text/html; charset=utf-8\n\n<p>a</p>\n");
    let (_, out) = copy(&without);
    check_texts(&out, |t| {
        assert_eq!(t.text, format!("<p>a</p>\n{footer}\n"))
    });
}

#[test]
fn template_can_be_shared_between_workers() {
    fn shared<T: Send + Sync>() {}
    shared::<Template>();
    let debug = format!(
        "{:?}",
        Template::parse(&corpus!("no_mime.eml"), "X-Campaign")
    );
    assert!(!debug.contains("Hello"), "{debug}");
}

#[test]
fn double_cr_before_lf_is_one_line_break() {
    let raw =
        b"From: a@shop.example\r\r\nX-Campaign: c\r\nSubject: s\r\r\n\r\nHi [[OPTIN_URL]]\r\n";
    let (_, out) = copy(raw);
    assert_eq!(header_values(&out, "Subject"), ["s"]);
    assert!(header_values(&out, "X-Campaign").is_empty());
    assert_eq!(
        String::from_utf8_lossy(body_of(&out)),
        format!("Hi {OPTIN}\r\n")
    );
}

#[test]
fn empty_campaign_header_name_removes_nothing() {
    let raw = crlf(b"From: a@shop.example\nno colon line\nSubject: s\n\nHi\n");
    let out = Template::parse(&raw, " ").render(&links(), &list(), None);
    // The line without a colon ends the header block (RFC 5322): it and
    // what follows are body text, all kept.
    assert!(header_block(&out).contains("From: a@shop.example\r\n"));
    assert!(
        body_of(&out).starts_with(b"no colon line\r\nSubject: s\r\n\r\nHi\r\n"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn one_template_renders_many_recipients() {
    let raw = corpus!("alt_qp_b64.eml");
    let template = Template::parse(&raw, "X-Campaign");
    let mut seen = std::collections::HashSet::new();
    for i in 0..20 {
        let unsub = format!("https://relay.example/u/T{i}");
        let links = Links {
            unsubscribe: &unsub,
            ..links()
        };
        let out = template.render(&links, &list(), None);
        assert_well_formed(&raw, &out);
        let texts = parsed_texts(&out);
        assert!(texts.iter().all(|t| t.text.contains(&unsub)));
        assert!(seen.insert(out));
    }
}

#[test]
fn text_attachment_without_placeholder_does_not_get_the_footer() {
    let raw = crlf(
        b"X-Campaign: c\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=m\n\n\
          --m\nContent-Type: text/plain\n\nBody.\n\
          --m\nContent-Type: text/plain\nContent-Disposition: attachment; filename=a.txt\n\nAttached.\n\
          --m--\n",
    );
    let (_, out) = copy(&raw);
    let texts = parsed_texts(&out);
    assert!(texts[0].text.contains("abonnements"));
    assert_eq!(texts[1].text, "Attached.");
    python_texts(&out);
}
