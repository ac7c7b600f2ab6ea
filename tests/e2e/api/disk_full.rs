//! End to end: the store's disk is full for real (a 4 MiB tmpfs the test
//! mounts under the SQLite database and fills). `POST /api/v1/consent`
//! answers `503` with `Retry-After` (not `500`) and stores nothing; once
//! there is room, the same request is stored. Mounting needs root: run as
//! another user, the test says so and passes. (PostgreSQL's disk cannot be
//! filled from here; its `disk_full` code maps the same way, see the
//! store's unit test.)

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::admin::{admin, admin_config};
use crate::common::relay::TestRelay;
use crate::common::sink::Sink;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// A tmpfs mounted on a directory, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros to `path` until the filesystem has no room left.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test]
async fn a_full_disk_gets_503_with_retry_after_then_the_write_once_there_is_room() {
    if crate::common::backend::on_postgres() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(mount) = Tmpfs::mount(dir.path(), "4m") else {
        eprintln!("SKIPPED: mounting a tmpfs needs root; the disk-full answer is not tested here");
        return;
    };
    let sink = Sink::start().await;
    let text = admin_config(dir.path(), &format!("smtp://{}", sink.addr()));
    let mut relay = TestRelay::start_with(dir, &text).await;
    let body = |email: &str| json!({ "email": email, "campaign": "newsletter", "action": "grant" });
    let ok = admin(
        &relay,
        Method::POST,
        "/api/v1/consent",
        Some(body("room@example.net")),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);

    let filler = relay.dir.path().join("filler");
    fill(&filler);
    let mut full = None;
    // The WAL may still hold free pages: write until the disk is hit.
    for i in 0..200 {
        let a = admin(
            &relay,
            Method::POST,
            "/api/v1/consent",
            Some(body(&format!("full{i}@example.net"))),
        )
        .await;
        if a.status != StatusCode::CREATED {
            full = Some(a);
            break;
        }
    }
    let full = full.expect("the disk filled up");
    assert_eq!(
        full.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        full.body
    );
    assert_eq!(full.body["error"], "unavailable", "{}", full.body);
    assert_eq!(
        full.headers.get("retry-after").map(|v| v.as_bytes()),
        Some(&b"60"[..]),
        "Retry-After"
    );

    std::fs::remove_file(&filler).expect("make room");
    let again = admin(
        &relay,
        Method::POST,
        "/api/v1/consent",
        Some(body("later@example.net")),
    )
    .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    relay.stop().await;
    drop(mount);
}
