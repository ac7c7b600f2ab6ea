//! The real binary's `serve` as a child process with its output in files:
//! started on a config file, waited for, stopped with SIGTERM (its log
//! then complete), and killed if the test fails first.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_consent-relay");

/// A loopback address with a port free right now (the binary cannot tell
/// the test an ephemeral one).
pub fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// A running `consent-relay serve --config CONFIG`, logging (JSON, stdout
/// not being a terminal) to `LOG.stdout` and `LOG.stderr` beside the config.
pub struct Serve {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl Serve {
    /// Starts `serve` with `RUST_LOG=rust_log`; `name` names its log files.
    pub fn start(config: &Path, name: &str, rust_log: &str) -> Serve {
        let dir = config.parent().expect("config dir");
        let out = dir.join(format!("{name}.stdout"));
        let err = dir.join(format!("{name}.stderr"));
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            .current_dir(dir)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::from(std::fs::File::create(&out).expect("log")))
            .stderr(Stdio::from(std::fs::File::create(&err).expect("log")))
            .spawn()
            .expect("spawn serve");
        Serve {
            child: Some(child),
            out,
            err,
        }
    }

    /// Waits until `addr` accepts connections. Panics, saying whether the
    /// process exited and what it logged, when it died first or does not
    /// listen within 30 s (a loaded machine can take seconds to start it,
    /// its migrations on PostgreSQL included).
    pub async fn listening(&mut self, addr: SocketAddr) {
        for _ in 0..1200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return;
            }
            let exited = self.child.as_mut().map(|c| c.try_wait());
            if let Some(Ok(Some(status))) = exited {
                panic!(
                    "serve exited ({status}) before listening on {addr}:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nothing listens on {addr} after 30 s:\n{}", self.log());
    }

    /// What it wrote so far, stdout then stderr.
    pub fn log(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!("{}\n{}", read(&self.out), read(&self.err))
    }

    /// SIGTERM, then waits for the exit.
    pub async fn term(&mut self) -> ExitStatus {
        let child = self.child.as_ref().expect("running");
        // SAFETY: kill(2) on the child this test spawned.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        self.wait().await
    }

    /// SIGKILL (`kill -9`): no shutdown runs, nothing is handed back.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the exit (the process ends by itself).
    pub async fn wait(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("join")
            .expect("wait")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
