//! End to end: the SMTP conversation, its limits and hostile input.

use std::time::Duration;

use crate::both_stores;
use crate::common::relay::{TestRelay, greeted, message};
use crate::common::sink::Sink;

async fn ehlo_advertises_the_extensions() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "max_message_size = 100000", "").await;
    let mut c = relay.client().await;
    c.expect("220").await;
    let r = c.cmd("EHLO client.test", "250").await;
    for ext in [
        "PIPELINING",
        "SIZE 100000",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
    ] {
        assert!(
            r.contains(&format!("250-{ext}\r\n")) || r.contains(&format!("250 {ext}\r\n")),
            "{ext} in {r}"
        );
    }
    c.cmd("NOOP", "250 2.0.0").await;
    c.cmd("VRFY someone", "252 2.5.0").await;
    c.cmd("HELP", "214").await;
    c.cmd("RSET", "250 2.0.0").await;
    c.cmd("STARTTLS", "502 5.5.1").await;
    c.cmd("FOO", "500 5.5.1").await;
    c.cmd("QUIT", "221 2.0.0").await;
    assert!(c.closed().await);
}
both_stores!(ehlo_advertises_the_extensions);

async fn commands_out_of_sequence_are_refused() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let mut c = relay.client().await;
    c.expect("220").await;
    c.cmd("MAIL FROM:<a@example.com>", "503 5.5.1").await;
    c.cmd("HELO client.test", "250").await;
    c.cmd("RCPT TO:<a@example.net>", "503 5.5.1").await;
    c.cmd("DATA", "503 5.5.1").await;
    c.cmd("MAIL FROM:<a@example.com>", "250 2.1.0").await;
    c.cmd("MAIL FROM:<a@example.com>", "503 5.5.1").await;
    c.cmd("DATA", "554 5.5.1").await;
    c.cmd("RCPT TO:<no-domain>", "501 5.1.3").await;
    c.cmd("RCPT TO:<a@example.net>", "250 2.1.5").await;
    c.cmd("RSET", "250").await;
    c.cmd("RCPT TO:<a@example.net>", "503 5.5.1").await;
}
both_stores!(commands_out_of_sequence_are_refused);

async fn pipelined_session_gets_every_reply_in_order() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let mut c = relay.client().await;
    c.expect("220").await;
    c.write(b"EHLO client.test\r\nMAIL FROM:<crm@example.com>\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
        .await;
    c.expect("250-relay.test").await;
    c.expect("250 2.1.0").await;
    c.expect("250 2.1.5").await;
    c.expect("250 2.1.5").await;
    c.expect("354").await;
    let mut data = message("prospecting", "..dot-stuffed line\r\nplain").into_bytes();
    data.extend_from_slice(
        b".\r\nMAIL FROM:<crm@example.com>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n",
    );
    c.write(&data).await;
    c.expect("250 2.0.0 queued as").await;
    c.expect("250 2.1.0").await;
    c.expect("250 2.1.5").await;
    c.expect("354").await;
    c.write(message("prospecting", "second").as_bytes()).await;
    c.write(b".\r\nQUIT\r\n").await;
    c.expect("250 2.0.0 queued as").await;
    c.expect("221").await;

    let got = sink.wait_for(3, Duration::from_secs(10)).await;
    let first = got
        .iter()
        .find(|m| m.rcpt_to == ["a@example.net"])
        .expect("copy for a");
    let text = String::from_utf8_lossy(&first.data);
    // Dot-stuffing undone exactly once on the way in, redone by the
    // upstream client on the way out.
    assert!(
        text.contains("\r\n.dot-stuffed line\r\nplain\r\n"),
        "{text}"
    );
    assert!(text.starts_with("Received: from client.test ([127.0.0.1])\r\n\tby relay.test (consent-relay) with ESMTP id "), "{text}");
    assert!(!text.contains("X-Campaign"), "{text}");
    // No placeholder in an opt-out message: the preferences footer follows the body.
    assert!(
        text.contains("\r\nplain\r\n\r\nYou receive this message from us."),
        "{text:?}"
    );
}
both_stores!(pipelined_session_gets_every_reply_in_order);

async fn data_sent_before_354_is_a_synchronization_error() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let mut c = greeted(&relay).await;
    c.write(b"MAIL FROM:<crm@example.com>\r\nRCPT TO:<a@example.net>\r\nDATA\r\nX-Campaign: prospecting\r\n\r\nx\r\n.\r\n")
        .await;
    c.expect("250").await;
    c.expect("250").await;
    c.expect("554 5.5.0").await;
    assert!(c.closed().await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.count(), 0);
}
both_stores!(data_sent_before_354_is_a_synchronization_error);

async fn oversize_messages_are_refused() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "max_message_size = 2048", "").await;
    let mut c = greeted(&relay).await;
    c.cmd("MAIL FROM:<crm@example.com> SIZE=4096", "552 5.3.4")
        .await;
    c.cmd("MAIL FROM:<crm@example.com> SIZE=1000", "250").await;
    c.cmd("RCPT TO:<a@example.net>", "250").await;
    c.cmd("DATA", "354").await;
    let big = message(
        "prospecting",
        &"x".repeat(80)
            .repeat(40)
            .chars()
            .collect::<Vec<_>>()
            .chunks(80)
            .map(|l| l.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("\r\n"),
    );
    c.write(big.as_bytes()).await;
    c.write(b".\r\n").await;
    c.expect("552 5.3.4").await;
    // The session goes on after a refused message.
    c.cmd("MAIL FROM:<crm@example.com>", "250").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.count(), 0);
}
both_stores!(oversize_messages_are_refused);

async fn too_many_recipients_get_452() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "max_recipients = 2", "").await;
    let mut c = greeted(&relay).await;
    c.cmd("MAIL FROM:<crm@example.com>", "250").await;
    c.cmd("RCPT TO:<a@example.net>", "250").await;
    c.cmd("RCPT TO:<b@example.net>", "250").await;
    c.cmd("RCPT TO:<c@example.net>", "452 4.5.3").await;
    c.cmd("DATA", "354").await;
    c.write(message("prospecting", "x").as_bytes()).await;
    c.write(b".\r\n").await;
    c.expect("250 2.0.0 queued as").await;
    let got = sink.wait_for(2, Duration::from_secs(10)).await;
    let mut rcpts: Vec<String> = got.into_iter().flat_map(|m| m.rcpt_to).collect();
    rcpts.sort();
    assert_eq!(rcpts, ["a@example.net", "b@example.net"]);
}
both_stores!(too_many_recipients_get_452);

/// RFC 5321 4.5.3.1.10: a 452 for `max_recipients` is flow control. Far
/// more over-limit RCPTs than `error_limit` leave the session open, and
/// DATA delivers to the recipients accepted; only past the overshoot bound
/// (1000 extra, as Postfix) do they count as errors.
async fn recipients_over_the_limit_are_flow_control_not_errors() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "max_recipients = 3\nerror_limit = 5", "").await;
    let mut c = greeted(&relay).await;
    c.cmd("MAIL FROM:<crm@example.com>", "250").await;
    for i in 0..3 {
        c.cmd(&format!("RCPT TO:<in{i}@example.net>"), "250").await;
    }
    for i in 0..15 {
        c.cmd(&format!("RCPT TO:<over{i}@example.net>"), "452 4.5.3")
            .await;
    }
    c.cmd("DATA", "354").await;
    c.write(message("prospecting", "x").as_bytes()).await;
    c.write(b".\r\n").await;
    c.expect("250 2.0.0 queued as").await;
    let got = sink.wait_for(3, Duration::from_secs(10)).await;
    let mut rcpts: Vec<String> = got.into_iter().flat_map(|m| m.rcpt_to).collect();
    rcpts.sort();
    assert_eq!(
        rcpts,
        ["in0@example.net", "in1@example.net", "in2@example.net"]
    );

    // A client that never stops is still cut: 1000 extra RCPTs are flow
    // control, the next `error_limit` count as errors, then 421.
    c.cmd("MAIL FROM:<crm@example.com>", "250").await;
    c.cmd("RCPT TO:<in0@example.net>", "250").await;
    c.cmd("RCPT TO:<in1@example.net>", "250").await;
    c.cmd("RCPT TO:<in2@example.net>", "250").await;
    let mut burst = String::new();
    for i in 0..1005 {
        burst.push_str(&format!("RCPT TO:<spin{i}@example.net>\r\n"));
    }
    c.write(burst.as_bytes()).await;
    for i in 0..1004 {
        let r = c.read_reply().await;
        assert!(r.starts_with("452 4.5.3"), "extra RCPT {i}: {r}");
    }
    c.expect("452 4.5.3").await;
    c.expect("421 4.7.0").await;
    assert!(c.closed().await);
}
both_stores!(recipients_over_the_limit_are_flow_control_not_errors);

/// Command lines keep RFC 5321's 512 octets; text lines are taken up to
/// `max_line_length` (here 1100, to keep the test small), not longer.
async fn long_command_and_text_lines_are_refused() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "max_line_length = 1100", "").await;
    let mut c = greeted(&relay).await;
    let long = format!("MAIL FROM:<{}@example.com>", "a".repeat(600));
    c.cmd(&long, "500 5.5.2").await;
    c.cmd("MAIL FROM:<crm@example.com>", "250").await;
    c.cmd("RCPT TO:<a@example.net>", "250").await;
    c.cmd("DATA", "354").await;
    c.write(message("prospecting", &"y".repeat(1200)).as_bytes())
        .await;
    c.write(b".\r\n").await;
    c.expect("550 5.6.0 message refused: a line is longer than 1100 octets")
        .await;
    // A command line ending in a bare LF is refused.
    c.write(b"NOOP\n").await;
    c.expect("500 5.5.2").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.count(), 0);
}
both_stores!(long_command_and_text_lines_are_refused);

/// Every smuggling end-of-data variant: the message is refused with
/// 550 5.6.0, the connection closes, and the command smuggled after the
/// fake end is never run (no second message reaches the sink).
async fn smuggling_variants_are_refused_and_nothing_after_runs() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let smuggled = "MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nX-Campaign: prospecting\r\n\r\nsmuggled\r\n.\r\n";
    for fake in [
        "\n.\n", "\n.\r\n", "\r.\r", "\r\n.\n", "\r.\r\n", "\r\n.\r", "\n..\n",
    ] {
        for split in [false, true] {
            let mut c = greeted(&relay).await;
            c.cmd("MAIL FROM:<crm@example.com>", "250").await;
            c.cmd("RCPT TO:<a@example.net>", "250").await;
            c.cmd("DATA", "354").await;
            let payload = format!("X-Campaign: prospecting\r\n\r\nbody{fake}{smuggled}");
            if split {
                for b in payload.as_bytes().chunks(3) {
                    // The relay may close as soon as it saw the bare newline.
                    if !c.try_write(b).await {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            } else {
                c.write(payload.as_bytes()).await;
            }
            let r = c.read_reply().await;
            assert!(r.starts_with("550 5.6.0"), "{fake:?} split={split}: {r:?}");
            assert!(c.closed().await, "{fake:?}: connection stays open");
        }
    }
    // NUL before the dot is not an end: the message is read to its real
    // end, then refused for the NUL (550 5.6.0), and the session goes on.
    let r = relay
        .send(
            &["b@example.net"],
            "X-Campaign: prospecting\r\n\r\nx\r\n\0.\r\ny\r\n",
        )
        .await;
    assert!(r.starts_with("550 5.6.0 message refused: NUL"), "{r}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 0, "a smuggled message was delivered");
}
both_stores!(smuggling_variants_are_refused_and_nothing_after_runs);

async fn data_cut_by_disconnect_stores_nothing() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let mut c = greeted(&relay).await;
    c.cmd("MAIL FROM:<crm@example.com>", "250").await;
    c.cmd("RCPT TO:<a@example.net>", "250").await;
    c.cmd("DATA", "354").await;
    c.write(b"X-Campaign: prospecting\r\n\r\nhalf a message\r\n")
        .await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = relay
        .store()
        .decisions(&consent_relay::store::DecisionFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(log.is_empty());
    assert_eq!(sink.count(), 0);
}
both_stores!(data_cut_by_disconnect_stores_nothing);

async fn clients_outside_allowed_networks_are_refused_at_connect() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "allowed_networks = [\"10.0.0.0/8\"]", "").await;
    let mut c = relay.client().await;
    let r = c.read_reply().await;
    assert!(r.starts_with("554 5.7.1"), "{r}");
    assert!(c.closed().await);
}
both_stores!(clients_outside_allowed_networks_are_refused_at_connect);

async fn idle_client_times_out_with_421() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "command_timeout = \"1s\"", "").await;
    let mut c = greeted(&relay).await;
    let r = c.read_reply().await;
    assert!(r.starts_with("421 4.4.2"), "{r}");
    assert!(c.closed().await);
}
both_stores!(idle_client_times_out_with_421);

async fn connection_limit_answers_421() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "max_connections = 2", "").await;
    let mut a = relay.client().await;
    a.expect("220").await;
    let mut b = relay.client().await;
    b.expect("220").await;
    let mut c = relay.client().await;
    c.expect("421 4.7.0").await;
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut d = relay.client().await;
    d.expect("220").await;
}
both_stores!(connection_limit_answers_421);

async fn error_flood_ends_the_session() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "error_limit = 3", "").await;
    let mut c = greeted(&relay).await;
    c.cmd("BOGUS", "500").await;
    c.cmd("BOGUS", "500").await;
    c.write(b"BOGUS\r\n").await;
    c.expect("500").await;
    c.expect("421 4.7.0").await;
    assert!(c.closed().await);
}
both_stores!(error_flood_ends_the_session);
