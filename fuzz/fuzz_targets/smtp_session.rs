//! The SMTP session: any bytes from a client get replies, never a panic.
//! The real session code (`smtp::session::run`) runs over an in-memory
//! stream, with a real SQLite store in a temp dir (on /dev/shm when there
//! is one) and a config that offers AUTH on loopback. Time is paused once
//! the store is open, so the delay after a failed AUTH and the timeouts
//! cost no wall time (a store wait may then time out into a `451`: the
//! session's error path, which is fuzzed too).
//!
//! Checked: every reply line is `DDD` then space or `-`, ends in CRLF, and
//! the session ends once the client has sent everything and closed.
#![no_main]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use consent_relay::config::Config;
use consent_relay::smtp::intake::Intake;
use consent_relay::smtp::limiter::AuthLimiter;
use consent_relay::smtp::session::{self, SessionContext, Start};
use consent_relay::store::Store;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct World {
    rt: tokio::runtime::Runtime,
    ctx: SessionContext,
    _dir: tempfile::TempDir,
    _shutdown: tokio::sync::watch::Sender<bool>,
}

/// A cheap argon2id hash of "secret" (the session verifies with the
/// parameters the hash names).
fn cheap_hash() -> String {
    use argon2::PasswordHasher as _;
    let params = argon2::Params::new(8, 1, 1, None).expect("params");
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    a.hash_password_with_salt(b"secret", b"saltsaltsaltsalt")
        .expect("hash")
        .to_string()
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            tempfile::tempdir_in("/dev/shm")
        } else {
            tempfile::tempdir()
        }
        .expect("temp dir");
        let text = format!(
            r#"
[smtp]
listen = "127.0.0.1:0"
hostname = "relay.test"
allow_plain_auth_on_loopback = true
max_message_size = 65536
max_recipients = 20
[[smtp.user]]
name = "crm"
password_hash = "{hash}"

[upstream]
url = "outbox:{dir}/outbox"

[http]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"
unsubscribe_mailto_domain = "unsubscribe.relay.test"

[signing]
current = "k1"
keys = {{ k1 = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktMzJieXRlcyE=" }}

[store]
url = "sqlite://{dir}/relay.db"

[[campaign]]
id = "newsletter"
label = "Newsletter"
policy = "opt-in"

[[campaign]]
id = "prospecting"
label = "Offers"
policy = "opt-out"

[[campaign]]
id = "invoices"
label = "Invoices"
policy = "mandatory"
"#,
            hash = cheap_hash(),
            dir = base.path().display()
        );
        let config = Arc::new(
            Config::parse(&base.path().join("fuzz.toml"), &text).expect("fuzz config"),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // Opened on real time (the pool's timeouts would fire at once on a
        // paused clock), then the clock is paused for the sessions.
        let store = rt
            .block_on(Store::open(&config.store, false))
            .expect("store");
        rt.block_on(async { tokio::time::pause() });
        let intake = Intake::new(config.clone(), store, Arc::new(tokio::sync::Notify::new()));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let auth_limiter = Arc::new(AuthLimiter::new(&config.smtp.guard));
        World {
            rt,
            ctx: SessionContext {
                config,
                intake,
                shutdown: rx,
                tls: None,
                auth_limiter,
            },
            _dir: base,
            _shutdown: tx,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    // First byte: whether the client is in allowed_networks.
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let authorized = flags & 1 == 1;
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
    let replies = w.rt.block_on(async {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let session = session::run(&w.ctx, server, peer, authorized, Start::Plain);
        let (mut rd, mut wr) = tokio::io::split(client);
        let write = async {
            let _ = wr.write_all(input).await;
            let _ = wr.shutdown().await;
        };
        let read = async {
            let mut out = Vec::new();
            let _ = rd.read_to_end(&mut out).await;
            out
        };
        let (_, _, out) = tokio::join!(
            tokio::time::timeout(Duration::from_secs(3600), session),
            write,
            read
        );
        out
    });
    for line in replies.split_inclusive(|&b| b == b'\n') {
        assert!(line.ends_with(b"\r\n"), "reply line without CRLF: {line:?}");
        assert!(
            line.len() >= 5
                && line[..3].iter().all(u8::is_ascii_digit)
                && (line[3] == b' ' || line[3] == b'-'),
            "malformed reply line: {line:?}"
        );
    }
});
