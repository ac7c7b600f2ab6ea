//! `consent-relay feedback [FILE]`: one report (a DSN, an ARF complaint)
//! from FILE or stdin, through the same intake as the SMTP door, for a
//! Postfix pipe alias or a fetchmail setup. Exit codes a mail system
//! understands (sysexits): 0 stored, 65 (EX_DATAERR) not a report (never
//! retried), 75 (EX_TEMPFAIL) the store cannot take it now (the MTA keeps
//! the message and tries again), 66 (EX_NOINPUT) FILE cannot be read.

use std::io::Read as _;
use std::path::PathBuf;

use clap::Args;

use super::Exit;
use crate::config::Config;
use crate::feedback::intake::{self, IntakeError};
use crate::store::{Door, NewReport};

/// sysexits EX_DATAERR: the input is not what was expected.
pub const EXIT_DATAERR: i32 = 65;
/// sysexits EX_NOINPUT: the input file cannot be read.
pub const EXIT_NOINPUT: i32 = 66;
/// sysexits EX_TEMPFAIL: try again later.
pub const EXIT_TEMPFAIL: i32 = 75;

#[derive(Args, Debug)]
pub struct FeedbackArgs {
    /// The message (as received, headers and body); stdin when absent or "-"
    pub file: Option<PathBuf>,
}

pub async fn run(config: &Config, a: FeedbackArgs) -> anyhow::Result<()> {
    let raw = read(&a, config.bounces.max_report_size)?;
    let store = super::open(config).await.map_err(|e| Exit {
        code: EXIT_TEMPFAIL,
        message: format!("{e:#}; the report was not stored (try again)"),
    })?;
    let size = raw.len();
    let report = NewReport {
        door: Door::Cli,
        envelope_from: None,
        envelope_to: None,
        client_ip: None,
        raw,
        received_at: crate::time::now_ms(),
        // A mail system's pipe, like the SMTP door: no operator acts.
        actor: None,
    };
    let r = intake::receive(&store, config, report).await;
    store.close().await;
    match r {
        Ok(p) => {
            crate::feedback::door::log_report(&p, "cli", "-", size);
            let again = if p.received.duplicate {
                " (received before)"
            } else {
                ""
            };
            println!(
                "report {}{again}: {}, {}: {}",
                p.received.id, p.kind, p.applied.result, p.applied.detail
            );
            Ok(())
        }
        Err(e @ (IntakeError::NotAReport(_) | IntakeError::TooBig { .. })) => Err(Exit {
            code: EXIT_DATAERR,
            message: format!("{e}; nothing was stored"),
        }
        .into()),
        Err(IntakeError::Store(e)) => Err(Exit {
            code: EXIT_TEMPFAIL,
            message: format!("the store cannot take the report now ({e}); try again"),
        }
        .into()),
    }
}

/// The message, up to one byte more than `max` (enough for the intake to
/// say it is too big without reading a runaway input whole).
fn read(a: &FeedbackArgs, max: usize) -> anyhow::Result<Vec<u8>> {
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut raw = Vec::new();
    let r = match a.file.as_deref() {
        None => std::io::stdin().lock().take(limit).read_to_end(&mut raw),
        Some(p) if p.as_os_str() == "-" => {
            std::io::stdin().lock().take(limit).read_to_end(&mut raw)
        }
        Some(p) => std::fs::File::open(p).and_then(|f| f.take(limit).read_to_end(&mut raw)),
    };
    r.map_err(|e| Exit {
        code: EXIT_NOINPUT,
        message: match &a.file {
            Some(p) => format!("{}: cannot read the report: {e}", p.display()),
            None => format!("stdin: cannot read the report: {e}"),
        },
    })?;
    Ok(raw)
}
