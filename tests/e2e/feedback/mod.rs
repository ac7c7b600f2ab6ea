//! What comes back (SPEC "What comes back: bounces and complaints"), end
//! to end: the three doors and a real Postfix as the upstream.

use std::io::{Read, Write};
use std::time::Duration;

use crate::common::{postfix::Postfix, sink::Sink};

/// The fixture itself: the throwaway Postfix delivers to a user it knows
/// and writes its own DSN for one it does not, sent to the bounce domain's
/// next hop (here a sink).
#[tokio::test]
async fn the_test_postfix_bounces_an_unknown_user_to_the_bounce_domain() {
    let sink = Sink::start().await;
    let Some(pf) = Postfix::start(
        "feedback::the_test_postfix",
        "postfix.test",
        &["alice"],
        "bounces.test",
        sink.addr(),
    ) else {
        return;
    };
    let mut s = std::net::TcpStream::connect(pf.addr).expect("connect");
    let mut greeting = [0u8; 512];
    let _ = s.read(&mut greeting).expect("greeting");
    s.write_all(
        b"EHLO x\r\nMAIL FROM:<b-x@bounces.test>\r\nRCPT TO:<zed@postfix.test>\r\n\
          RCPT TO:<alice@postfix.test>\r\nDATA\r\n",
    )
    .expect("write");
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(b"Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        .expect("write");
    let got = sink.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(got[0].mail_from, "");
    assert_eq!(got[0].rcpt_to, ["b-x@bounces.test"]);
    let dsn = String::from_utf8_lossy(&got[0].data);
    assert!(dsn.contains("Status: 5.1.1"), "{dsn}");
    assert!(dsn.contains("zed@postfix.test"), "{dsn}");
    assert_eq!(pf.delivered("alice").len(), 1, "{}", pf.log());
}
