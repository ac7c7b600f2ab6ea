//! Rendering one recipient's copy (issue: ≥ 20,000 copies/s on one core);
//! the only render benchmark (it replaced an ignored test in src/rewrite).
//!
//! `cargo bench --bench rewrite`. The message: 20 KB multipart/alternative,
//! quoted-printable text and base64 HTML, two placeholders in each. A copy
//! is what delivery does per recipient: sign three links and the return
//! path's token, render.

use std::hint::black_box;
use std::path::Path;

use base64::Engine;
use consent_relay::config::{Campaign, Config};
use consent_relay::delivery::copy;
use consent_relay::rewrite::Template;
use consent_relay::token;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

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
    let qp = quoted_printable(&text);
    let b64 = base64::engine::general_purpose::STANDARD.encode(html.as_bytes());
    let b64_lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "Received: from crm.example by relay.example; Tue, 25 Nov 2025 10:00:00 +0000\r\n\
         From: news@shop.example\r\nTo: zoe@example.org\r\nSubject: Newsletter\r\n\
         X-Campaign: newsletter\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
         --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\n{qp}\r\n\
         --alt\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--alt--\r\n",
        b64_lines.join("\r\n")
    )
    .into_bytes()
}

/// Quoted-printable, soft breaks at 76 columns (enough for the fixture).
fn quoted_printable(text: &str) -> String {
    let mut out = String::new();
    for line in text.split("\r\n") {
        let mut col = 0;
        for b in line.bytes() {
            let piece = if (b.is_ascii_graphic() && b != b'=') || b == b' ' {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            };
            if col + piece.len() > 75 {
                out.push_str("=\r\n");
                col = 0;
            }
            col += piece.len();
            out.push_str(&piece);
        }
        out.push_str("\r\n");
    }
    out.truncate(out.len() - 2);
    out
}

fn config() -> Config {
    let text = include_str!("../config/consent-relay.toml");
    match Config::parse(Path::new("config/consent-relay.toml"), text) {
        Ok(c) => c,
        Err(e) => panic!("example config: {e}"),
    }
}

fn bench(c: &mut Criterion) {
    let cfg = config();
    let campaign: Campaign = match cfg.campaign("newsletter") {
        Some(c) => c.clone(),
        None => panic!("the example config has a newsletter campaign"),
    };
    let raw = newsletter();
    let template = Template::parse(&raw, "X-Campaign");
    assert!(template.has_placeholders());
    let subjects: Vec<String> = (0..1000u32)
        .map(|i| {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&i.to_be_bytes());
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
        })
        .collect();
    let mut g = c.benchmark_group("copy");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("render_20kb_with_signed_links", |b| {
        b.iter(|| {
            i = (i + 1) % subjects.len();
            let links = copy::links(&cfg, &campaign, &subjects[i]).ok();
            let delivery = token::bounce::local_part(&cfg.signing, i as i64).unwrap_or_default();
            black_box(copy::render(
                &cfg,
                &template,
                &campaign,
                links.as_ref(),
                &delivery,
            ))
        })
    });
    g.bench_function("parse_20kb_template", |b| {
        b.iter(|| black_box(Template::parse(black_box(&raw), "X-Campaign")))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
