//! Delivery status notifications (RFC 3464): the bounce a sender receives
//! when a recipient's copy failed for good. Pure: builds the bytes. When an
//! address, the diagnostic or the returned header is UTF-8, the report uses
//! the RFC 6533 types (`message/global-delivery-status`, `utf-8` address
//! type, `message/global-headers`) and must travel with SMTPUTF8.

/// What the bounce reports.
pub struct Bounce<'a> {
    pub reporting_host: &'a str,
    pub queue_id: &'a str,
    pub original_sender: &'a str,
    pub recipient: &'a str,
    /// The upstream's last reply, or why the relay gave up.
    pub diagnostic: &'a str,
    /// Enhanced status code, e.g. "5.1.1".
    pub status: &'a str,
    /// The original message (its header block is returned).
    pub original: &'a [u8],
    pub arrival: i64,
    pub now: i64,
}

/// Keeps text to one header-safe line of bounded length.
fn one_line(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect()
}

/// The RFC 3464 multipart/report, CRLF line ends.
pub fn build(b: &Bounce<'_>) -> Vec<u8> {
    let date = |ms: i64| mail_builder::headers::date::Date::new(ms / 1000).to_rfc822();
    let boundary = format!("dsn={}", b.queue_id);
    let diagnostic = one_line(b.diagnostic, 900);
    let recipient = one_line(b.recipient, 500);
    let headers = &b.original[..crate::mail::header::header_end(b.original)];
    // RFC 6533 3, 6: UTF-8 only in the "global" report types.
    let global = !(b.original_sender.is_ascii()
        && recipient.is_ascii()
        && diagnostic.is_ascii()
        && headers.is_ascii());
    let (status_type, address_type, headers_type) = if global {
        (
            "message/global-delivery-status",
            "utf-8",
            "message/global-headers",
        )
    } else {
        ("message/delivery-status", "rfc822", "text/rfc822-headers")
    };
    let mut out = String::with_capacity(2048);
    out.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{host}>\r\n\
         To: <{to}>\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: {date}\r\n\
         Message-ID: <{id}.dsn@{host}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\
         \r\n\
         This is a MIME-encapsulated message.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n\
         This is the mail relay at {host}.\r\n\
         \r\n\
         Your message (queue id {id}) could not be delivered to\r\n\
         <{rcpt}>. The relay gave up with this reply:\r\n\
         \r\n\
         {diag}\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: {status_type}\r\n\
         \r\n\
         Reporting-MTA: dns; {host}\r\n\
         X-Queue-ID: {id}\r\n\
         Arrival-Date: {arrival}\r\n\
         \r\n\
         Final-Recipient: {address_type}; {rcpt}\r\n\
         Action: failed\r\n\
         Status: {status}\r\n\
         Diagnostic-Code: smtp; {diag}\r\n\
         Last-Attempt-Date: {date}\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: {headers_type}\r\n\
         \r\n",
        host = b.reporting_host,
        to = one_line(b.original_sender, 500),
        date = date(b.now),
        arrival = date(b.arrival),
        id = b.queue_id,
        rcpt = recipient,
        diag = diagnostic,
        status = b.status,
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(headers);
    if !headers.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_has_the_three_parts() {
        let dsn = build(&Bounce {
            reporting_host: "relay.example",
            queue_id: "01ABC",
            original_sender: "crm@example.com",
            recipient: "ann@example.net",
            diagnostic: "550 5.1.1 no such user\r\nInjected: x",
            status: "5.1.1",
            original: b"From: crm@example.com\r\nSubject: hello\r\n\r\nbody\r\n",
            arrival: 0,
            now: 1000,
        });
        let text = String::from_utf8(dsn).unwrap();
        assert!(text.contains("Content-Type: multipart/report; report-type=delivery-status;"));
        assert!(text.contains("Final-Recipient: rfc822; ann@example.net\r\n"));
        assert!(text.contains("Status: 5.1.1\r\n"));
        assert!(text.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user  Injected: x\r\n"));
        assert!(text.contains("Subject: hello\r\n"));
        assert!(!text.contains("body\r\n"));
        assert!(text.ends_with("--dsn=01ABC--\r\n"));
        assert!(!text.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn utf8_addresses_or_header_make_a_global_report() {
        let bounce = |recipient: &'static str, original: &'static [u8]| {
            String::from_utf8(build(&Bounce {
                reporting_host: "relay.example",
                queue_id: "01ABC",
                original_sender: "crm@example.com",
                recipient,
                diagnostic: "553 5.6.7 upstream does not support SMTPUTF8",
                status: "5.6.7",
                original,
                arrival: 0,
                now: 1000,
            }))
            .unwrap()
        };
        let text = bounce("jörg@example.net", b"Subject: hello\r\n\r\nbody\r\n");
        assert!(text.contains("Content-Type: message/global-delivery-status\r\n"));
        assert!(text.contains("Final-Recipient: utf-8; jörg@example.net\r\n"));
        assert!(text.contains("Content-Type: message/global-headers\r\n"));
        let text = bounce("ann@example.net", "Subject: Grüße\r\n\r\n".as_bytes());
        assert!(text.contains("Final-Recipient: utf-8; ann@example.net\r\n"));
        assert!(text.contains("Subject: Grüße\r\n"));
        let text = bounce("ann@example.net", b"Subject: hello\r\n\r\n");
        assert!(text.contains("Content-Type: message/delivery-status\r\n"));
        assert!(text.contains("Final-Recipient: rfc822; ann@example.net\r\n"));
        assert!(text.contains("Content-Type: text/rfc822-headers\r\n"));
    }
}
