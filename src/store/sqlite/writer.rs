//! SQLite's one writer: a task that runs the writes of concurrent callers
//! in one transaction (group commit), so throughput is not one fsync per
//! message. When one job of a group fails, the group rolls back and each
//! job runs again in a transaction of its own, so a failing job fails
//! alone and the others still commit.
//!
//! Each job is an [`Op`] with its own typed reply ([`Pending`]); [`Job`]
//! names the ops the writer runs, so the compiler checks every answer.

use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::store::ops::accept::{Accept, ClaimDue, ReleaseLeases};
use crate::store::ops::audit;
use crate::store::ops::consent::AppendEvent;
use crate::store::ops::erase::Erase;
use crate::store::ops::feedback::{Apply, PurgeReports, Receive};
use crate::store::ops::identity::BringToIdentity;
use crate::store::ops::import::{AppendOnce, Import};
use crate::store::ops::nodes::{Heartbeat, Join, Leave};
use crate::store::ops::outcomes::Record;
use crate::store::ops::purge::Purge;
use crate::store::ops::webhooks::{
    ClaimNotices, ClaimWebhooks, RecordNotice, RecordWebhook, ReleaseWebhooks,
};
use crate::store::ops::{Conn, Op, guard, sessions, suppressions};
use crate::store::{NewMessage, StoreError};

/// Jobs a writer transaction can hold at most.
const MAX_GROUP: usize = 512;

/// One caller's write: the op, where its answer goes, and the answer while
/// the transaction has not committed yet.
pub(in crate::store) struct Pending<W: Op> {
    op: W,
    reply: oneshot::Sender<Result<W::Out, StoreError>>,
    out: Option<W::Out>,
}

impl<W: Op> Pending<W> {
    pub(super) fn new(op: W) -> (Self, oneshot::Receiver<Result<W::Out, StoreError>>) {
        let (reply, rx) = oneshot::channel();
        (
            Pending {
                op,
                reply,
                out: None,
            },
            rx,
        )
    }

    async fn run(&mut self, conn: &mut SqliteConnection, now: i64) -> Result<(), StoreError> {
        self.out = Some(self.op.run(conn, now).await?);
        Ok(())
    }

    /// Answers the caller: its output after the commit, or the error.
    fn finish(self, result: Result<(), StoreError>) {
        let answer = result.and_then(|()| {
            // Every job of a committed transaction ran to its output.
            self.out
                .ok_or_else(|| StoreError::Corrupt("a committed job left no output".into()))
        });
        let _ = self.reply.send(answer);
    }
}

/// Runs `$e` with `$p` bound to the [`Pending`] of whichever op `$job` holds.
macro_rules! each_job {
    ($job:expr, $p:ident => $e:expr) => {
        match $job {
            Job::Accept($p) => $e,
            Job::Record($p) => $e,
            Job::Claim($p) => $e,
            Job::Release($p) => $e,
            Job::Consent($p) => $e,
            Job::Erase($p) => $e,
            Job::ClaimWebhooks($p) => $e,
            Job::RecordWebhook($p) => $e,
            Job::ReleaseWebhooks($p) => $e,
            Job::Purge($p) => $e,
            Job::Import($p) => $e,
            Job::ConsentOnce($p) => $e,
            Job::JoinNode($p) => $e,
            Job::NodeHeartbeat($p) => $e,
            Job::LeaveNode($p) => $e,
            Job::Identity($p) => $e,
            Job::PauseCampaign($p) => $e,
            Job::ResumeCampaign($p) => $e,
            Job::DropHeld($p) => $e,
            Job::RemoveSuppressions($p) => $e,
            Job::ClaimNotices($p) => $e,
            Job::RecordNotice($p) => $e,
            Job::ReceiveReport($p) => $e,
            Job::ApplyReport($p) => $e,
            Job::PurgeReports($p) => $e,
            Job::OpenSession($p) => $e,
            Job::TouchSession($p) => $e,
            Job::CloseSession($p) => $e,
            Job::Audit($p) => $e,
            Job::Queue($p) => $e,
        }
    };
}

macro_rules! jobs {
    ($($variant:ident($op:ty)),* $(,)?) => {
        /// The writes the writer runs.
        pub(in crate::store) enum Job {
            $($variant(Pending<$op>),)*
        }
        $(impl From<Pending<$op>> for Job {
            fn from(p: Pending<$op>) -> Job {
                Job::$variant(p)
            }
        })*
    };
}

jobs! {
    Accept(Accept),
    Record(Record),
    Claim(ClaimDue),
    Release(ReleaseLeases),
    Consent(AppendEvent),
    Erase(Erase),
    ClaimWebhooks(ClaimWebhooks),
    RecordWebhook(RecordWebhook),
    ReleaseWebhooks(ReleaseWebhooks),
    Purge(Purge),
    Import(Import),
    ConsentOnce(AppendOnce),
    JoinNode(Join),
    NodeHeartbeat(Heartbeat),
    LeaveNode(Leave),
    Identity(BringToIdentity),
    PauseCampaign(guard::Pause),
    ResumeCampaign(guard::Resume),
    DropHeld(guard::DropHeld),
    RemoveSuppressions(suppressions::Remove),
    ClaimNotices(ClaimNotices),
    RecordNotice(RecordNotice),
    ReceiveReport(Receive),
    ApplyReport(Apply),
    PurgeReports(PurgeReports),
    OpenSession(sessions::Open),
    TouchSession(sessions::Touch),
    CloseSession(sessions::Close),
    Audit(audit::Record),
    Queue(crate::store::ops::queue::Act),
}

impl Job {
    fn accepted(&self) -> Option<&NewMessage> {
        each_job!(self, p => p.op.accepted())
    }

    async fn run(&mut self, conn: &mut SqliteConnection, now: i64) -> Result<(), StoreError> {
        match self {
            // Inserted with the group's other messages (`run_together`).
            Job::Accept(p) => {
                p.out = Some(());
                Ok(())
            }
            other => each_job!(other, p => p.run(conn, now).await),
        }
    }

    fn finish(self, result: Result<(), StoreError>) {
        each_job!(self, p => p.finish(result))
    }
}

pub(in crate::store) enum Task {
    Write(Job),
    /// Finish what is queued before this, then stop.
    Stop,
}

pub(super) async fn writer_loop(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Task>) {
    let mut tasks = Vec::with_capacity(MAX_GROUP);
    loop {
        tasks.clear();
        if rx.recv_many(&mut tasks, MAX_GROUP).await == 0 {
            break;
        }
        let mut group: Vec<Job> = Vec::with_capacity(tasks.len());
        let mut stop = false;
        for task in tasks.drain(..) {
            match task {
                Task::Write(job) if !stop => group.push(job),
                Task::Write(job) => job.finish(Err(StoreError::Closed)),
                Task::Stop => stop = true,
            }
        }
        if !group.is_empty() {
            run_group(&mut conn, group).await;
        }
        if stop {
            rx.close();
            while let Ok(late) = rx.try_recv() {
                if let Task::Write(job) = late {
                    job.finish(Err(StoreError::Closed));
                }
            }
            break;
        }
    }
    let _ = conn.close().await;
}

/// Runs every job of the group in one transaction (one fsync for all). If
/// any job fails, the group rolls back and each job runs again alone, so a
/// bad job fails by itself and the others still commit.
async fn run_group(conn: &mut SqliteConnection, mut group: Vec<Job>) {
    let now = crate::time::now_ms();
    let started = std::time::Instant::now();
    if group.len() > 1 {
        let together = run_together(conn, &mut group, now).await;
        metrics::histogram!(crate::metrics::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        match together {
            Ok(()) => {
                for job in group {
                    job.finish(Ok(()));
                }
                return;
            }
            Err(e) => {
                tracing::warn!(cause = %e, jobs = group.len(), "store: group transaction failed; running its jobs one by one");
            }
        }
    }
    for mut job in group {
        let started = std::time::Instant::now();
        let result = run_together(conn, std::slice::from_mut(&mut job), now).await;
        metrics::histogram!(crate::metrics::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            tracing::error!(cause = %e, "store: write failed");
        }
        job.finish(result);
    }
}

/// One transaction over these jobs; each holds its output after the commit.
async fn run_together(
    conn: &mut SqliteConnection,
    jobs: &mut [Job],
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    // The group's messages are inserted together, the other jobs one by one.
    let accepts: Vec<&NewMessage> = jobs.iter().filter_map(Job::accepted).collect();
    let mut result = conn.insert_messages(&accepts, now).await;
    for job in jobs.iter_mut() {
        if result.is_err() {
            break;
        }
        result = job.run(conn, now).await;
    }
    if let Err(e) = result {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        return Err(e);
    }
    if let Err(e) = sqlx::query("COMMIT").execute(&mut *conn).await {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        return Err(e.into());
    }
    Ok(())
}
