//! Render throughput, run by hand:
//! `cargo test --release -- --ignored --nocapture render_throughput`

use std::time::Instant;

use super::super::transfer;
use super::*;

/// A 20 KB multipart/alternative message: quoted-printable text and
/// base64 HTML, two placeholders in each.
fn newsletter() -> Vec<u8> {
    let mut text = String::new();
    let mut html = String::from("<html><body>\r\n");
    for i in 0..88 {
        text.push_str(&format!(
            "Paragraphe {i} : les nouveautés de la semaine, café, thé et crème brûlée.\r\n"
        ));
        html.push_str(&format!(
            "<p>Paragraphe {i} : les nouveautés de la semaine, café, thé et crème brûlée.</p>\r\n"
        ));
    }
    text.push_str("Désabonnement : [[UNSUBSCRIBE_URL]]\r\nPréférences : [[PREFERENCES_URL]]\r\n");
    html.push_str(
        "<p><a href=\"[[UNSUBSCRIBE_URL]]\">Se désabonner</a> \
         <a href=\"[[PREFERENCES_URL]]\">Préférences</a></p>\r\n</body></html>\r\n",
    );
    let mut qp = Vec::new();
    for (i, line) in text.split("\r\n").enumerate() {
        if i > 0 {
            qp.extend_from_slice(b"\r\n");
        }
        transfer::qp_encode_line(line.as_bytes(), &mut qp);
    }
    let mut b64 = Vec::new();
    transfer::base64_encode_lines(html.as_bytes(), &mut b64);
    let mut raw =
        b"Received: from crm.example by relay.example; Tue, 25 Nov 2025 10:00:00 +0000\r\n\
        From: news@shop.example\r\nTo: zoe@example.org\r\nSubject: Newsletter\r\n\
        X-Campaign: newsletter\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
        --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            .to_vec();
    raw.extend(qp);
    raw.extend(
        b"\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\
          Content-Transfer-Encoding: base64\r\n\r\n",
    );
    raw.extend(b64);
    raw.extend(b"\r\n--alt--\r\n");
    raw
}

#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn render_throughput() {
    let raw = newsletter();
    let template = Template::parse(&raw, "X-Campaign");
    assert_eq!(template.fallback_reason(), None);
    assert!(template.has_placeholders());
    let tokens: Vec<String> = (0..1000)
        .map(|i| format!("https://relay.example/u/v1.{i:08}.Zm9vYmFyYmF6cXV4cXV1eGZvb2Jhcg"))
        .collect();
    let render = |i: usize| {
        let links = Links {
            unsubscribe: &tokens[i % tokens.len()],
            preferences: &tokens[(i + 1) % tokens.len()],
            optin: &tokens[(i + 2) % tokens.len()],
            mailto: Some("mailto:unsubscribe+v1.abc@relay.example"),
        };
        template.render(&links, &list(), Some(&FOOTER))
    };
    let first = render(0);
    assert_well_formed(&raw, &first);
    let copies = 50_000;
    let started = Instant::now();
    let mut bytes = 0;
    for i in 0..copies {
        bytes += render(i).len();
    }
    let elapsed = started.elapsed();
    let parse_started = Instant::now();
    for _ in 0..1000 {
        std::hint::black_box(Template::parse(&raw, "X-Campaign"));
    }
    let parse = parse_started.elapsed() / 1000;
    println!(
        "message {} bytes, copy {} bytes: {copies} copies in {elapsed:?} = {:.0} copies/s \
         ({:.1} µs each, {:.0} MB/s); parse {parse:?}",
        raw.len(),
        bytes / copies,
        copies as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / copies as f64,
        bytes as f64 / elapsed.as_secs_f64() / 1e6,
    );
}
