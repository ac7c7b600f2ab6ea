//! A real SMTP server on loopback, used as the relay's upstream in end-to-end
//! tests: it records every message it accepts and can be told to fail.
//!
//! It owns the server side of a small ESMTP dialogue (EHLO/HELO, MAIL, RCPT,
//! DATA, RSET, NOOP, QUIT, with PIPELINING), exact dot-unstuffing, and a FIFO
//! of one-shot [`Fault`]s that tests script at runtime. With [`SinkOptions`]
//! it also offers STARTTLS or implicit TLS (a certificate from
//! [`super::ca::TestCa`]) and AUTH PLAIN/LOGIN for one user, and records
//! whether each message came over TLS and who authenticated. It records the
//! MAIL FROM parameters of each message, and offers SMTPUTF8 unless told not
//! to (then it refuses the parameter and non-ASCII addresses). It does not do
//! BDAT or size enforcement, and it never relays anything.
//!
//! ```ignore
//! let sink = Sink::start().await;
//! sink.script([Fault::Rcpt(451, "4.3.0 try later")]);
//! // ... point the relay at sink.addr(), send mail ...
//! let got = sink.wait_for(2, Duration::from_secs(5)).await;
//! assert_eq!(got[0].rcpt_to, ["bob@example.net"]);
//! ```
//!
//! Dropping the [`Sink`] (or awaiting [`Sink::stop`]) closes the listener and
//! cuts every open session, as a crashed upstream would.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// The name the sink gives itself in its greeting and EHLO reply.
const HOSTNAME: &str = "sink.test";

/// One message the sink accepted (answered `250` to its final dot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The reverse path of `MAIL FROM:<...>`, without the brackets
    /// (empty for the null sender `<>`).
    pub mail_from: String,
    /// The forward paths of the accepted `RCPT TO:<...>` commands, in order,
    /// without the brackets. Recipients refused by a [`Fault::Rcpt`] are absent.
    pub rcpt_to: Vec<String>,
    /// The message as received after dot-unstuffing, without the final
    /// `".\r\n"`: it ends with the message's last CRLF (or is empty).
    pub data: Vec<u8>,
    /// The session was TLS (after STARTTLS, or implicit).
    pub tls: bool,
    /// The user of a successful AUTH in this session.
    pub auth_user: Option<String>,
    /// The ESMTP parameters after `MAIL FROM:<...>`, as sent
    /// (e.g. `["BODY=8BITMIME", "SMTPUTF8"]`).
    pub mail_params: Vec<String>,
}

/// What the sink offers beyond plain ESMTP ([`Sink::start_with`]).
#[derive(Clone, Default)]
pub struct SinkOptions {
    /// Offer STARTTLS with this certificate.
    pub starttls: Option<Arc<rustls::ServerConfig>>,
    /// TLS from the first byte (an smtps:// upstream) with this certificate.
    pub implicit_tls: Option<Arc<rustls::ServerConfig>>,
    /// Bytes written right after `220` to STARTTLS, in the same write and
    /// before the handshake (a response injection the client must ignore).
    pub inject_after_starttls: Option<&'static str>,
    /// Offer AUTH PLAIN and LOGIN, accepting this user and password.
    pub auth: Option<(String, String)>,
    /// Do not offer SMTPUTF8 (RFC 6531), and refuse a MAIL FROM that
    /// carries it or a non-ASCII address, as an older server would.
    pub without_smtputf8: bool,
}

/// A one-shot misbehaviour, consumed by the next event it matches.
///
/// Faults form one FIFO: only the fault at its head is compared with each
/// event, so `[Fault::Mail(..), Fault::DropAtData]` refuses the next
/// transaction and then cuts the first message after that. Events that do
/// not match the head are served normally and consume nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer the next `MAIL FROM` with this code and text, e.g.
    /// `Fault::Mail(451, "4.3.0 try later")`; no transaction starts.
    Mail(u16, &'static str),
    /// Answer the next `RCPT TO` with this code and text; that recipient is
    /// not added to the transaction.
    Rcpt(u16, &'static str),
    /// Close the next connection that completes a message (after its final
    /// dot), without replying; the message is not recorded.
    DropAtData,
}

/// The protocol events a [`Fault`] can be matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Mail,
    Rcpt,
    DataEnd,
}

impl Fault {
    fn matches(&self, event: Event) -> bool {
        matches!(
            (self, event),
            (Fault::Mail(..), Event::Mail)
                | (Fault::Rcpt(..), Event::Rcpt)
                | (Fault::DropAtData, Event::DataEnd)
        )
    }
}

/// What the accept loop and the sessions share with the test.
struct Shared {
    recorded: Mutex<Recorded>,
    /// Number of recorded messages; `wait_for` waits on it.
    count: watch::Sender<usize>,
    /// Connections accepted so far.
    connections: AtomicUsize,
    options: SinkOptions,
}

#[derive(Default)]
struct Recorded {
    messages: Vec<Received>,
    faults: VecDeque<Fault>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.recorded.lock().expect("sink state lock poisoned")
    }

    /// Pops the head fault if it matches `event`.
    fn take_fault(&self, event: Event) -> Option<Fault> {
        let mut recorded = self.lock();
        if recorded.faults.front()?.matches(event) {
            recorded.faults.pop_front()
        } else {
            None
        }
    }

    /// Records a message; returns its 1-based number (used as a queue id).
    fn record(&self, message: Received) -> usize {
        let n = {
            let mut recorded = self.lock();
            recorded.messages.push(message);
            recorded.messages.len()
        };
        self.count.send_replace(n);
        n
    }
}

/// A running SMTP sink on loopback. See the module docs.
pub struct Sink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Set to `true` to make the accept loop close the listener and abort
    /// every session.
    shutdown: watch::Sender<bool>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

/// A loopback port bound but not listening: connections to it are refused
/// (an upstream that is down), and no other socket, not even an outgoing
/// connection's, can take it before [`Sink::start_reserved`] listens on it.
/// (A port bound then released can be taken in between.)
pub struct ReservedPort(tokio::net::TcpSocket);

impl ReservedPort {
    pub fn new() -> ReservedPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind a loopback port");
        ReservedPort(socket)
    }

    pub fn addr(&self) -> SocketAddr {
        self.0.local_addr().expect("bound socket has an address")
    }

    /// Starts listening (for a server other than the sink).
    pub fn listen(self) -> TcpListener {
        self.0.listen(1024).expect("listen on the reserved port")
    }
}

impl Sink {
    /// Starts a sink on `127.0.0.1` with a port chosen by the system.
    pub async fn start() -> Sink {
        Sink::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a sink on `addr`, e.g. a port reserved earlier by the test for
    /// an "upstream down at start, up later" scenario.
    ///
    /// Panics if the address cannot be bound.
    pub async fn start_on(addr: SocketAddr) -> Sink {
        Sink::start_with(addr, SinkOptions::default()).await
    }

    /// Starts a sink on a port reserved earlier with [`ReservedPort::new`]
    /// ("upstream down at start, up later"): no other socket can have
    /// taken the port meanwhile.
    pub async fn start_reserved(port: ReservedPort) -> Sink {
        Sink::from_listener(port.listen(), SinkOptions::default())
    }

    /// Starts a sink on `addr` offering what `options` says (TLS, AUTH).
    pub async fn start_with(addr: SocketAddr, options: SinkOptions) -> Sink {
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("sink: cannot bind {addr}: {e}"));
        Sink::from_listener(listener, options)
    }

    fn from_listener(listener: TcpListener, options: SinkOptions) -> Sink {
        let addr = listener
            .local_addr()
            .expect("sink: bound listener has a local address");
        let shared = Arc::new(Shared {
            recorded: Mutex::new(Recorded::default()),
            count: watch::Sender::new(0),
            connections: AtomicUsize::new(0),
            options,
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared), shutdown_rx));
        Sink {
            addr,
            shared,
            shutdown,
            accept: Mutex::new(Some(accept)),
        }
    }

    /// The address the sink listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes the listener and cuts every open session (no reply, no QUIT),
    /// then returns once all of them are closed. Recorded messages stay
    /// readable. Calling it twice is harmless.
    pub async fn stop(&self) {
        self.shutdown.send_replace(true);
        let accept = self
            .accept
            .lock()
            .expect("sink accept lock poisoned")
            .take();
        if let Some(accept) = accept {
            // The accept loop only ends through shutdown; a JoinError here
            // would be a panic inside the sink, which the test must see.
            if let Err(e) = accept.await
                && e.is_panic()
            {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }

    /// Appends faults to the FIFO; each is consumed by the next matching
    /// event once it reaches the head (see [`Fault`]).
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.lock().faults.extend(faults);
    }

    /// Faults scripted but not consumed yet.
    pub fn faults_pending(&self) -> usize {
        self.shared.lock().faults.len()
    }

    /// The messages recorded so far, in the order their final dot arrived.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.lock().messages.clone()
    }

    /// How many messages were recorded so far.
    pub fn count(&self) -> usize {
        *self.shared.count.borrow()
    }

    /// TCP connections accepted so far: tells whether the relay reuses
    /// connections.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` messages were recorded and returns all of
    /// them. Panics, saying how many arrived, if `timeout` passes first.
    ///
    /// `timeout` is measured on tokio's clock: under a paused clock
    /// (`start_paused`) it would expire as soon as every task waits on IO,
    /// so use it in tests that run on real time.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let mut count = self.shared.count.subscribe();
        let reached = tokio::time::timeout(timeout, count.wait_for(|c| *c >= n)).await;
        if reached.is_err() {
            let got = self.messages();
            panic!(
                "sink: expected at least {n} message(s) within {timeout:?}, {} arrived \
                 ({} connection(s) accepted, {} fault(s) unconsumed): {:?}",
                got.len(),
                self.connections(),
                self.faults_pending(),
                got.iter()
                    .map(|m| (&m.mail_from, &m.rcpt_to, m.data.len()))
                    .collect::<Vec<_>>(),
            );
        }
        self.messages()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        // Aborting the accept task drops the listener and its JoinSet, which
        // aborts every session, even if nobody polls the shutdown signal.
        if let Ok(mut slot) = self.accept.lock()
            && let Some(accept) = slot.take()
        {
            accept.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            // The block drops the watch guard at once, keeping the future Send.
            () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => break,
            // Reap finished sessions so the set does not grow with each one.
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    // EMFILE and friends: back off briefly rather than spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                sessions.spawn(serve(stream, Arc::clone(&shared)));
            }
        }
    }
    drop(listener);
    sessions.shutdown().await;
}

/// Where the session is in the SMTP dialogue.
enum Phase {
    /// Connected, no EHLO/HELO yet.
    Connected,
    /// Greeted, no transaction open.
    Ready,
    /// `MAIL` accepted; collecting recipients.
    Mail {
        mail_from: String,
        mail_params: Vec<String>,
        rcpt_to: Vec<String>,
    },
    /// After `354`: collecting message lines until the lone dot.
    Data {
        mail_from: String,
        mail_params: Vec<String>,
        rcpt_to: Vec<String>,
        data: Vec<u8>,
    },
    /// `AUTH PLAIN` without an initial response: the next line is it.
    AuthPlain,
    /// `AUTH LOGIN`: the next line is the user (`None`) or the password.
    AuthLogin(Option<String>),
}

/// What the connection does after a line was handled.
enum Next {
    Continue,
    /// Send the pending replies, then close.
    Quit,
    /// Close without sending anything more.
    Cut,
    /// Send the pending replies, then do the TLS handshake (STARTTLS).
    StartTls,
}

struct Session {
    phase: Phase,
    shared: Arc<Shared>,
    /// Replies not written yet: pipelined commands are answered in one write,
    /// in order, once the input at hand is used up.
    out: Vec<u8>,
    tls: bool,
    auth_user: Option<String>,
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let options = shared.options.clone();
    if let Some(config) = options.implicit_tls {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        if let Ok(mut tls) = acceptor.accept(stream).await {
            converse(&mut tls, shared, true, true).await;
        }
        return;
    }
    let mut stream = stream;
    if converse(&mut stream, Arc::clone(&shared), true, false).await
        && let Some(config) = options.starttls
    {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        if let Ok(mut tls) = acceptor.accept(stream).await {
            // RFC 3207 4.2: a fresh session, no greeting, EHLO again.
            converse(&mut tls, shared, false, true).await;
        }
    }
}

/// Runs one session over `stream`; true when it ended with STARTTLS.
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    shared: Arc<Shared>,
    greet: bool,
    tls: bool,
) -> bool {
    let mut session = Session {
        phase: Phase::Connected,
        shared,
        out: if greet {
            format!("220 {HOSTNAME} ESMTP sink\r\n").into_bytes()
        } else {
            Vec::new()
        },
        tls,
        auth_user: None,
    };
    let mut input = Vec::with_capacity(8192);
    loop {
        let mut used = 0;
        while let Some(len) = next_line(&input[used..], session.in_data()) {
            let line = &input[used..used + len];
            used += len;
            match session.handle(line) {
                Next::Continue => {}
                Next::Quit => {
                    let _ = stream.write_all(&session.out).await;
                    let _ = stream.shutdown().await;
                    return false;
                }
                Next::Cut => return false,
                Next::StartTls => {
                    // Whatever the client pipelined after STARTTLS is dropped
                    // (RFC 3207 4.2), as a careful server does.
                    return stream.write_all(&session.out).await.is_ok();
                }
            }
        }
        input.drain(..used);
        if !session.out.is_empty() {
            if stream.write_all(&session.out).await.is_err() {
                return false;
            }
            session.out.clear();
        }
        match stream.read_buf(&mut input).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

/// Length of the first complete line in `input`, terminator included.
///
/// Commands end at the first LF (a bare LF is then refused by the session);
/// message lines end only at CRLF, so a bare LF or CR stays inside the line
/// and reaches the recorded data untouched.
fn next_line(input: &[u8], crlf_only: bool) -> Option<usize> {
    let mut from = 0;
    loop {
        let lf = from + input[from..].iter().position(|&b| b == b'\n')?;
        if !crlf_only || (lf > 0 && input[lf - 1] == b'\r') {
            return Some(lf + 1);
        }
        from = lf + 1;
    }
}

impl Session {
    fn in_data(&self) -> bool {
        matches!(self.phase, Phase::Data { .. })
    }

    fn reply(&mut self, code: u16, text: &str) {
        self.out
            .extend_from_slice(format!("{code} {text}\r\n").as_bytes());
    }

    fn handle(&mut self, line: &[u8]) -> Next {
        if let Phase::Data { data, .. } = &mut self.phase {
            if line == b".\r\n" {
                return self.end_of_data();
            }
            // RFC 5321 4.5.2: a leading dot was doubled by the client.
            data.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
            return Next::Continue;
        }
        if matches!(self.phase, Phase::AuthPlain | Phase::AuthLogin(_)) {
            return self.auth_continue(line);
        }
        let Some(command) = line.strip_suffix(b"\r\n") else {
            self.reply(500, "5.5.2 command lines must end with CRLF");
            return Next::Continue;
        };
        let command = String::from_utf8_lossy(command);
        let (verb, arg) = match command.split_once(' ') {
            Some((verb, arg)) => (verb.to_ascii_uppercase(), arg.trim()),
            None => (command.to_ascii_uppercase(), ""),
        };
        match verb.as_str() {
            "EHLO" => {
                self.phase = Phase::Ready;
                let options = &self.shared.options;
                let mut ehlo = format!(
                    "250-{HOSTNAME} greets {arg}\r\n250-PIPELINING\r\n250-8BITMIME\r\n\
                     250-SIZE 104857600\r\n"
                );
                if !options.without_smtputf8 {
                    ehlo.push_str("250-SMTPUTF8\r\n");
                }
                if options.starttls.is_some() && !self.tls {
                    ehlo.push_str("250-STARTTLS\r\n");
                }
                if options.auth.is_some() {
                    ehlo.push_str("250-AUTH PLAIN LOGIN\r\n");
                }
                ehlo.push_str("250 ENHANCEDSTATUSCODES\r\n");
                self.out.extend_from_slice(ehlo.as_bytes());
            }
            "HELO" => {
                self.phase = Phase::Ready;
                self.reply(250, HOSTNAME);
            }
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg),
            "DATA" => self.data(),
            "RSET" => {
                if !matches!(self.phase, Phase::Connected) {
                    self.phase = Phase::Ready;
                }
                self.reply(250, "2.0.0 ok");
            }
            "NOOP" => self.reply(250, "2.0.0 ok"),
            "STARTTLS" if self.shared.options.starttls.is_some() && !self.tls => {
                self.reply(220, "2.0.0 ready to start TLS");
                if let Some(extra) = self.shared.options.inject_after_starttls {
                    self.out.extend_from_slice(extra.as_bytes());
                }
                return Next::StartTls;
            }
            "AUTH" if self.shared.options.auth.is_some() && self.auth_user.is_none() => {
                self.auth(arg);
            }
            "QUIT" => {
                self.reply(221, "2.0.0 bye");
                return Next::Quit;
            }
            _ => self.reply(500, "5.5.2 command not recognized"),
        }
        Next::Continue
    }

    fn mail(&mut self, arg: &str) {
        match self.phase {
            Phase::Ready => {}
            Phase::Connected => return self.reply(503, "5.5.1 send EHLO or HELO first"),
            _ => return self.reply(503, "5.5.1 nested MAIL command"),
        }
        let Some(mail_from) = path_after(arg, "FROM:") else {
            return self.reply(501, "5.5.4 syntax: MAIL FROM:<address>");
        };
        let mail_params: Vec<String> = arg
            .rsplit_once('>')
            .map(|(_, params)| params.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        if self.shared.options.without_smtputf8 {
            if mail_params
                .iter()
                .any(|p| p.eq_ignore_ascii_case("SMTPUTF8"))
            {
                return self.reply(555, "5.5.4 SMTPUTF8 not supported");
            }
            if !mail_from.is_ascii() {
                return self.reply(553, "5.6.7 non-ASCII address not supported");
            }
        }
        if let Some(Fault::Mail(code, text)) = self.shared.take_fault(Event::Mail) {
            return self.reply(code, text);
        }
        self.phase = Phase::Mail {
            mail_from,
            mail_params,
            rcpt_to: Vec::new(),
        };
        self.reply(250, "2.1.0 ok");
    }

    fn rcpt(&mut self, arg: &str) {
        let without_smtputf8 = self.shared.options.without_smtputf8;
        let Phase::Mail { rcpt_to, .. } = &mut self.phase else {
            return self.reply(503, "5.5.1 need MAIL before RCPT");
        };
        let Some(address) = path_after(arg, "TO:") else {
            return self.reply(501, "5.5.4 syntax: RCPT TO:<address>");
        };
        if without_smtputf8 && !address.is_ascii() {
            return self.reply(553, "5.6.7 non-ASCII address not supported");
        }
        if let Some(Fault::Rcpt(code, text)) = self.shared.take_fault(Event::Rcpt) {
            return self.reply(code, text);
        }
        rcpt_to.push(address);
        self.reply(250, "2.1.5 ok");
    }

    fn data(&mut self) {
        match std::mem::replace(&mut self.phase, Phase::Ready) {
            Phase::Mail {
                mail_from,
                mail_params,
                rcpt_to,
            } if !rcpt_to.is_empty() => {
                self.phase = Phase::Data {
                    mail_from,
                    mail_params,
                    rcpt_to,
                    data: Vec::new(),
                };
                self.reply(354, "end data with <CR><LF>.<CR><LF>");
            }
            Phase::Mail {
                mail_from,
                mail_params,
                rcpt_to,
            } => {
                self.phase = Phase::Mail {
                    mail_from,
                    mail_params,
                    rcpt_to,
                };
                self.reply(554, "5.5.1 no valid recipients");
            }
            other => {
                self.phase = other;
                self.reply(503, "5.5.1 need MAIL and RCPT before DATA");
            }
        }
    }

    fn end_of_data(&mut self) -> Next {
        let Phase::Data {
            mail_from,
            mail_params,
            rcpt_to,
            data,
        } = std::mem::replace(&mut self.phase, Phase::Ready)
        else {
            unreachable!("end_of_data is only called in the Data phase");
        };
        match self.shared.take_fault(Event::DataEnd) {
            Some(Fault::DropAtData) => Next::Cut,
            _ => {
                let n = self.shared.record(Received {
                    mail_from,
                    rcpt_to,
                    data,
                    tls: self.tls,
                    auth_user: self.auth_user.clone(),
                    mail_params,
                });
                self.reply(250, &format!("2.0.0 queued as {n}"));
                Next::Continue
            }
        }
    }
}

impl Session {
    /// `AUTH PLAIN [initial]` or `AUTH LOGIN [user]`.
    fn auth(&mut self, arg: &str) {
        let (mechanism, initial) = arg.split_once(' ').unwrap_or((arg, ""));
        match (mechanism.to_ascii_uppercase().as_str(), initial) {
            ("PLAIN", "") => {
                self.phase = Phase::AuthPlain;
                self.out.extend_from_slice(b"334 \r\n");
            }
            ("PLAIN", initial) => {
                let initial = initial.to_owned();
                self.auth_plain(&initial);
            }
            ("LOGIN", "") => {
                self.phase = Phase::AuthLogin(None);
                self.reply(334, "VXNlcm5hbWU6");
            }
            ("LOGIN", user) => {
                self.phase = Phase::AuthLogin(Some(decode(user)));
                self.reply(334, "UGFzc3dvcmQ6");
            }
            _ => self.reply(504, "5.5.4 unrecognized authentication type"),
        }
    }

    /// The line after a 334 challenge.
    fn auth_continue(&mut self, line: &[u8]) -> Next {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']).to_owned();
        match std::mem::replace(&mut self.phase, Phase::Ready) {
            Phase::AuthPlain => self.auth_plain(&text),
            Phase::AuthLogin(None) => {
                self.phase = Phase::AuthLogin(Some(decode(&text)));
                self.reply(334, "UGFzc3dvcmQ6");
            }
            Phase::AuthLogin(Some(user)) => {
                let password = decode(&text);
                self.auth_check(user, &password);
            }
            _ => {}
        }
        Next::Continue
    }

    fn auth_plain(&mut self, encoded: &str) {
        let decoded = decode(encoded);
        let mut fields = decoded.split('\0');
        let (_authzid, user, password) = (fields.next(), fields.next(), fields.next());
        match (user, password) {
            (Some(user), Some(password)) => self.auth_check(user.to_owned(), password),
            _ => self.reply(501, "5.5.2 malformed AUTH PLAIN"),
        }
    }

    fn auth_check(&mut self, user: String, password: &str) {
        let accepted = self
            .shared
            .options
            .auth
            .as_ref()
            .is_some_and(|(u, p)| *u == user && p == password);
        if accepted {
            self.auth_user = Some(user);
            self.reply(235, "2.7.0 authentication succeeded");
        } else {
            self.reply(535, "5.7.8 authentication credentials invalid");
        }
    }
}

/// Base64 as text (lossy), empty when it is not base64.
fn decode(encoded: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The address inside `<...>` after `keyword` (`FROM:` or `TO:`, any case),
/// allowing a space after the colon; ESMTP parameters after `>` are ignored.
fn path_after(arg: &str, keyword: &str) -> Option<String> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start().strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_string())
}
