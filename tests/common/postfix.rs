//! A throwaway real Postfix (Debian's `postfix`), for the tests where the
//! relay's upstream must be a real MTA: its own config and queue under a
//! temp dir (`postfix -c DIR start`, as `bench/run.sh` makes one), smtpd on
//! 127.0.0.1 and a free port, no DNS (literal `[127.0.0.1]` next hops).
//!
//! It is the final destination of one domain (`virtual_mailbox_domains`)
//! that knows only the users it was given (Maildirs under the temp dir).
//! It accepts every recipient at that domain (`smtpd_reject_unlisted_recipient
//! = no`) and bounces an unknown one afterwards, as a real MX behind a
//! filter does: its own DSN, sent to the envelope sender. Mail for the
//! bounce domain goes by `transport_maps` to the address given, the relay's
//! SMTP listener. Stopped (and its directory removed) on drop.
//!
//! Postfix's master runs as root: without root, or without postfix, the
//! test says so and skips, unless `CONSENT_RELAY_REQUIRE_POSTFIX` is set
//! (CI), where it fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const POSTFIX: &str = "/usr/sbin/postfix";
const REQUIRE: &str = "CONSENT_RELAY_REQUIRE_POSTFIX";
/// The uid and gid the virtual agent writes Maildirs as (`nobody`).
const MAIL_ID: u32 = 65534;

/// A running Postfix instance.
pub struct Postfix {
    dir: tempfile::TempDir,
    /// Its smtpd.
    pub addr: SocketAddr,
}

/// `None` (after saying why) when this machine cannot run a Postfix
/// instance: `postfix` missing, or not root. Panics instead under
/// `CONSENT_RELAY_REQUIRE_POSTFIX`.
fn available(test: &str) -> bool {
    // SAFETY: getuid(2) has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    let why = if !Path::new(POSTFIX).exists() {
        "postfix is not installed (apt-get install postfix; CI installs it)"
    } else if !root {
        "Postfix's master runs as root, and this test does not"
    } else {
        return true;
    };
    if std::env::var_os(REQUIRE).is_some() {
        panic!("{REQUIRE} is set but {why}");
    }
    eprintln!("\n*** {test} skipped: {why} ***\n");
    false
}

impl Postfix {
    /// Starts an instance that delivers to `users` at `domain` (local
    /// parts) and sends mail for `bounce_domain` to `bounce_to`. `None`
    /// when the test must skip ([`available`]).
    pub fn start(
        test: &str,
        domain: &str,
        users: &[&str],
        bounce_domain: &str,
        bounce_to: SocketAddr,
    ) -> Option<Postfix> {
        if !available(test) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("consent-relay-postfix")
            .tempdir()
            .expect("temp dir");
        let root = dir.path();
        // Postfix's daemons run as `postfix` and `nobody`: they must reach it.
        chmod(root, 0o755);
        for d in ["etc", "spool", "data", "mail"] {
            std::fs::create_dir(root.join(d)).expect("mkdir");
        }
        chown(&root.join("data"), "postfix");
        let mail = root.join("mail");
        chown_ids(&mail, MAIL_ID, MAIL_ID);
        let etc = root.join("etc");
        for f in ["master.cf", "dynamicmaps.cf"] {
            std::fs::copy(Path::new("/etc/postfix").join(f), etc.join(f)).expect("copy");
        }
        let mailboxes: String = users
            .iter()
            .map(|u| format!("{u}@{domain} {u}/\n"))
            .collect();
        std::fs::write(etc.join("vmailbox"), mailboxes).expect("write");
        std::fs::write(
            etc.join("transport"),
            format!(
                "{bounce_domain} smtp:[{}]:{}\n",
                bounce_to.ip(),
                bounce_to.port()
            ),
        )
        .expect("write");
        let addr = super::binary::free_port();
        std::fs::write(etc.join("main.cf"), main_cf(root, domain)).expect("write");
        postconf(&etc, &["-M#", "smtp/inet"]);
        postconf(
            &etc,
            &["-M", &format!("{addr}/inet={addr} inet n - n - - smtpd")],
        );
        // No chroot: the queue is under the temp dir, not /var/spool.
        postconf(&etc, &["-F", "*/*/chroot = n"]);
        let pf = Postfix { dir, addr };
        // `check` creates the queue directories with their owners.
        pf.run(&["check"]);
        pf.run(&["start"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "postfix smtpd not listening on {addr}:\n{}",
                pf.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(pf)
    }

    fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// `postfix -c ETC <args>`, which must succeed.
    fn run(&self, args: &[&str]) {
        if let Err(e) = postfix_tool(POSTFIX, &self.etc(), args) {
            panic!("{e}\n{}", self.log());
        }
    }

    /// Its log (`maillog_file`) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postfix.log")).unwrap_or_default()
    }

    /// The messages delivered to `user`'s Maildir so far, oldest first.
    pub fn delivered(&self, user: &str) -> Vec<String> {
        let new = self.dir.path().join("mail").join(user).join("new");
        let mut files: Vec<_> = std::fs::read_dir(new)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// The master's pid, while it runs.
    fn master_pid(&self) -> Option<libc::pid_t> {
        let p = self.dir.path().join("spool/pid/master.pid");
        std::fs::read_to_string(p).ok()?.trim().parse().ok()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let pid = self.master_pid();
        let _ = Command::new(POSTFIX)
            .arg("-c")
            .arg(self.etc())
            .arg("stop")
            .output();
        let Some(pid) = pid else { return };
        // `stop` returns before the master is gone; its daemons must not
        // outlive the directory they work in.
        let deadline = Instant::now() + Duration::from_secs(10);
        // SAFETY: kill(2) with signal 0 only probes the pid this test's Postfix wrote.
        while unsafe { libc::kill(pid, 0) } == 0 {
            if Instant::now() > deadline {
                // SAFETY: as above; the master of the instance this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The instance's `main.cf`.
fn main_cf(root: &Path, domain: &str) -> String {
    let r = root.display();
    format!(
        r#"compatibility_level = 3.6
config_directory = {r}/etc
queue_directory = {r}/spool
data_directory = {r}/data
maillog_file = {r}/postfix.log
maillog_file_prefixes = {r}
myhostname = mx.{domain}
mydomain = {domain}
myorigin = $myhostname
mydestination =
relay_domains =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = {domain}
virtual_mailbox_maps = texthash:{r}/etc/vmailbox
virtual_mailbox_base = {r}/mail
virtual_uid_maps = static:{MAIL_ID}
virtual_gid_maps = static:{MAIL_ID}
# Accept unknown users, bounce them after: the DSN is Postfix's own.
smtpd_reject_unlisted_recipient = no
transport_maps = texthash:{r}/etc/transport
smtp_dns_support_level = disabled
smtp_host_lookup = native
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtp_tls_security_level = none
smtpd_tls_security_level = none
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"#
    )
}

fn postconf(etc: &Path, args: &[&str]) {
    if let Err(e) = postfix_tool("/usr/sbin/postconf", etc, args) {
        panic!("{e}");
    }
}

/// `tool -c ETC <args>`; what it said when it failed.
fn postfix_tool(tool: &str, etc: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(tool)
        .arg("-c")
        .arg(etc)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{tool} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown(p: &Path, user: &str) {
    let status = Command::new("chown")
        .arg(format!("{user}:"))
        .arg(p)
        .status()
        .expect("chown");
    assert!(status.success(), "chown {user} {}", p.display());
}

fn chown_ids(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown");
}
