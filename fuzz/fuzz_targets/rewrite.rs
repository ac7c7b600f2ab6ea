//! The rewriter: any bytes parse as a template and render a copy without
//! panicking; the copy never holds a bare CR or LF, and holds no line over
//! 998 octets unless the input already had one (bytes that are not
//! rewritten are copied as they are).
#![no_main]

use consent_relay::rewrite::{FeedbackHeaders, Footer, Links, ListHeaders, Template};
use libfuzzer_sys::fuzz_target;

const LINKS: Links<'static> = Links {
    unsubscribe: "https://relay.example/u/k1.AQEAAAAAAAAAAAAAAAAAAAAAbmV3c2xldHRlcgAAAAAAAAAAAAAAAAAAAAA",
    preferences: "https://relay.example/p/k1.AQIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    optin: "https://relay.example/o/k1.AQMAAAAAAAAAAAAAAAAAAAAAbmV3c2xldHRlcgAAAAAAAAAAAAAAAAAAAAA",
    mailto: Some("mailto:unsubscribe+k1.AQEAAAAAAAAAAAAAAAAAAAAAbmV3c2xldHRlcgAAAAAAAAAA@u.example"),
};

const FEEDBACK: FeedbackHeaders<'static> = FeedbackHeaders {
    delivery: "b-aeaaaaaaaaaaaaacrvhzjr7xqylbkq5",
    campaign: "newsletter",
    sender_id: "relay",
    cfbl_address: Some("fbl@relay.example"),
};

const FOOTER: Footer<'static> = Footer {
    text: "Vos préférences : {url}",
    html: "<p><a href=\"{url}\">Vos pr&eacute;f&eacute;rences</a></p>",
};

/// The longest line, CRLF excluded, and whether a CR or LF stands alone.
fn lines(bytes: &[u8]) -> (usize, bool) {
    let (mut longest, mut bare, mut start) = (0, false, 0);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                longest = longest.max(i - start);
                i += 2;
                start = i;
                continue;
            }
            b'\r' | b'\n' => bare = true,
            _ => {}
        }
        i += 1;
    }
    (longest.max(bytes.len() - start), bare)
}

fuzz_target!(|data: &[u8]| {
    // First byte: which kind of copy (footer, list and feedback headers).
    let Some((&mode, raw)) = data.split_first() else {
        return;
    };
    let template = Template::parse(raw, "X-Campaign");
    let list = ListHeaders {
        list_id: (mode & 1 == 1).then_some("newsletter.example.com"),
        add_unsubscribe: mode & 2 == 2,
        feedback: (mode & 8 == 8).then_some(FEEDBACK),
    };
    let footer = (mode & 4 == 4).then_some(&FOOTER);
    let copy = template.render(&LINKS, &list, footer);
    let (longest_in, _) = lines(raw);
    let (longest_out, bare_out) = lines(&copy);
    assert!(!bare_out, "the copy holds a bare CR or LF");
    if longest_in <= 998 {
        assert!(
            longest_out <= 998,
            "the copy holds a line of {longest_out} octets (input's longest: {longest_in})"
        );
    }
    let _ = template.fallback_reason();
});
