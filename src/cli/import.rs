//! `consent-relay import FILE.csv`: consent records from a CSV file (a CRM
//! export, a former provider's list). The whole file is checked first and
//! every bad cell reported as `FILE:LINE: column NAME: what is wrong (fix)`;
//! one bad row and nothing is written. Each row becomes one consent event
//! through the store's usual event path, with its provenance (source, the
//! row's evidence, file and line) and an import key (SHA-256 of the
//! normalised row), so importing the same file again adds nothing.
//!
//! Owns the CSV format and its checks; the events are the store's.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;
use sha2::{Digest, Sha256};

use crate::cli::Exit;
use crate::config::{CampaignState, Config};
use crate::consent::identity::{Identity, legacy_form};
use crate::consent::subject;
use crate::consent::{ALL_CAMPAIGNS, Action, Source};
use crate::store::{AuditAction, AuditEntry, ImportEvent, NewConsentEvent, Store};

/// sysexits EX_DATAERR: the input file is wrong.
pub const EXIT_DATA: i32 = 65;
/// Rows per store call (one transaction each, short enough that a running
/// relay's writes wait little).
const BATCH: usize = 1000;
/// Longest `evidence` cell, in bytes.
const EVIDENCE_MAX: usize = 4096;

/// The columns, in the order the documentation lists them.
pub const COLUMNS: [&str; 6] = ["email", "campaign", "action", "at", "source", "evidence"];
const REQUIRED: [&str; 3] = ["email", "campaign", "action"];

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// CSV file with a header row: email,campaign,action[,at,source,evidence]
    pub file: PathBuf,
    /// Source of rows whose `source` cell is empty: api, form, one-click, link, preference-page, import, admin
    #[arg(long, default_value = "import")]
    pub source: String,
    /// Check the file and count what would be imported; write nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// One problem in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub file: String,
    pub line: u64,
    /// The column at fault; `None` for the row as a whole.
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(c) = &self.column {
            write!(f, "column {c}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A checked row, ready to become an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: u64,
    /// The address's canonical identity.
    pub address: String,
    /// The forms an erased person's keyed hash may have been made from
    /// (`Identity::hash_forms`).
    pub hash_forms: Vec<String>,
    pub campaign: String,
    pub action: Action,
    pub at: i64,
    pub source: Source,
    /// The row's evidence followed by its provenance (file and line).
    pub evidence: String,
    /// SHA-256 of the normalised row (hex): what makes a re-run add nothing.
    /// The address in it is trimmed and lowercased as before the identity
    /// rules, so a file imported then adds nothing now either.
    pub key: String,
}

/// Reads and checks a whole CSV text. `file` names it in errors and
/// evidence; rows without `at` get `now`; rows without `source` get
/// `default_source`. Every problem is returned, in file order.
pub fn parse(
    file: &str,
    data: &[u8],
    config: &Config,
    default_source: Source,
    now: i64,
) -> Result<Vec<Row>, Vec<RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(data);
    let header = match reader.byte_headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return Err(vec![row_error(
                file,
                1,
                None,
                format!("{e} (save the file as CSV)"),
            )]);
        }
    };
    let columns = Columns::from_header(file, &header)?;
    let checks = RowChecks {
        file,
        file_name: Path::new(file)
            .file_name()
            .map_or_else(|| file.to_owned(), |n| n.to_string_lossy().into_owned()),
        config,
        campaign_ids: config
            .campaigns
            .iter()
            .filter(|c| c.state != CampaignState::Deleted)
            .map(|c| c.id.as_str())
            .collect(),
        default_source,
        now,
    };
    let lines = LineIndex::new(data);
    let (mut rows, mut errors) = (Vec::new(), Vec::new());
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = lines.line_at(e.position());
                errors.push(row_error(
                    file,
                    line,
                    None,
                    format!("{e} (check the quotes)"),
                ));
                break;
            }
        }
        let line = lines.line_at(record.position());
        if record.len() == 1 && record.get(0).is_some_and(|f| f.trim_ascii().is_empty()) {
            continue; // a blank line
        }
        if record.len() != header.len() {
            errors.push(row_error(
                file,
                line,
                None,
                format!(
                    "has {} fields, the header has {} (quote cells that contain commas)",
                    record.len(),
                    header.len()
                ),
            ));
            continue;
        }
        match checks.row(&columns, &record, line) {
            Ok(row) => rows.push(row),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

fn row_error(file: &str, line: u64, column: Option<&str>, message: String) -> RowError {
    RowError {
        file: file.to_owned(),
        line,
        column: column.map(str::to_owned),
        message,
    }
}

/// Where each known column stands in the file.
struct Columns(HashMap<&'static str, usize>);

impl Columns {
    /// Reads the header row: every column known, none twice, the required
    /// ones present. Every problem is returned.
    fn from_header(file: &str, header: &csv::ByteRecord) -> Result<Columns, Vec<RowError>> {
        let mut errors = Vec::new();
        let mut at_index: HashMap<&'static str, usize> = HashMap::new();
        for (i, name) in header.iter().enumerate() {
            let name = String::from_utf8_lossy(name);
            let name = name.trim().trim_start_matches('\u{feff}').to_lowercase();
            match COLUMNS.iter().find(|c| **c == name) {
                Some(c) if at_index.contains_key(c) => errors.push(row_error(
                    file,
                    1,
                    Some(c),
                    "appears twice in the header (keep one)".into(),
                )),
                Some(c) => {
                    at_index.insert(c, i);
                }
                None => errors.push(row_error(
                    file,
                    1,
                    Some(&name),
                    format!("is not a column (use {})", COLUMNS.join(", ")),
                )),
            }
        }
        for c in REQUIRED {
            if !at_index.contains_key(c) {
                errors.push(row_error(
                    file,
                    1,
                    Some(c),
                    format!(
                        "missing from the header (the first line names the columns: {} are required)",
                        REQUIRED.join(", ")
                    ),
                ));
            }
        }
        if errors.is_empty() {
            Ok(Columns(at_index))
        } else {
            Err(errors)
        }
    }
}

/// Line numbers from byte offsets: the reader skips blank lines without
/// counting them.
struct LineIndex<'a> {
    data: &'a [u8],
    newlines: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(data: &'a [u8]) -> Self {
        let newlines = data
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i)
            .collect();
        LineIndex { data, newlines }
    }

    fn line_at(&self, p: Option<&csv::Position>) -> u64 {
        p.map_or(0, |p| {
            // A record's position is where the reader started, before the
            // blank lines it skipped.
            let start = self
                .data
                .iter()
                .skip(p.byte() as usize)
                .position(|b| !matches!(b, b'\r' | b'\n'))
                .map_or(self.data.len(), |n| p.byte() as usize + n);
            self.newlines.partition_point(|&n| n < start) as u64 + 1
        })
    }
}

/// What a row is checked against.
struct RowChecks<'a> {
    file: &'a str,
    /// The file's name without its folder, for the provenance.
    file_name: String,
    config: &'a Config,
    /// Campaigns a row may name (not deleted).
    campaign_ids: Vec<&'a str>,
    default_source: Source,
    now: i64,
}

/// A row's cells, trimmed; an empty string for a column the file lacks.
struct Cells {
    email: String,
    campaign: String,
    action: String,
    at: String,
    source: String,
    evidence: String,
}

impl RowChecks<'_> {
    /// One record to a row, or every problem it has.
    fn row(
        &self,
        columns: &Columns,
        record: &csv::ByteRecord,
        line: u64,
    ) -> Result<Row, Vec<RowError>> {
        let mut errors = Vec::new();
        let cells = self.cells(columns, record, line, &mut errors);
        let mut bad = |column: &str, message: String| {
            errors.push(row_error(self.file, line, Some(column), message));
        };
        let identity = check_email(&cells.email, &mut bad);
        let action = check_action(&cells.action, &mut bad);
        self.check_campaign(&cells.campaign, action, &mut bad);
        let at_ms = self.check_at(&cells.at, &mut bad);
        let source = self.check_source(&cells.source, &mut bad);
        check_evidence(&cells.evidence, &mut bad);
        if !errors.is_empty() {
            return Err(errors);
        }
        let (Some(identity), Some(action), Some(at_ms), Some(source)) =
            (identity, action, at_ms, source)
        else {
            return Err(errors);
        };
        // The key covers what the row says, not how it was imported: an
        // empty `at` or `source` stays empty in it (no clock, no --source).
        let key = import_key(&[
            &legacy_form(&cells.email),
            &cells.campaign,
            action.as_str(),
            &if cells.at.is_empty() {
                String::new()
            } else {
                at_ms.to_string()
            },
            if cells.source.is_empty() {
                ""
            } else {
                source.as_str()
            },
            &cells.evidence,
        ]);
        let provenance = format!("imported from {} line {line}", self.file_name);
        Ok(Row {
            line,
            address: identity.canonical().to_owned(),
            hash_forms: identity
                .hash_forms()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            campaign: cells.campaign,
            action,
            at: at_ms,
            source,
            evidence: if cells.evidence.is_empty() {
                provenance
            } else {
                format!("{}; {provenance}", cells.evidence)
            },
            key,
        })
    }

    fn cells(
        &self,
        columns: &Columns,
        record: &csv::ByteRecord,
        line: u64,
        errors: &mut Vec<RowError>,
    ) -> Cells {
        let mut cell = |name: &'static str| -> String {
            let Some(&i) = columns.0.get(name) else {
                return String::new();
            };
            match std::str::from_utf8(&record[i]) {
                Ok(s) => s.trim().to_owned(),
                Err(_) => {
                    errors.push(row_error(
                        self.file,
                        line,
                        Some(name),
                        "is not UTF-8 (save the file as UTF-8)".into(),
                    ));
                    String::new()
                }
            }
        };
        Cells {
            email: cell("email"),
            campaign: cell("campaign"),
            action: cell("action"),
            at: cell("at"),
            source: cell("source"),
            evidence: cell("evidence"),
        }
    }

    fn check_campaign(
        &self,
        campaign: &str,
        action: Option<Action>,
        bad: &mut impl FnMut(&str, String),
    ) {
        if campaign.is_empty() {
            bad(
                "campaign",
                format!(
                    "is empty (name a campaign: {}, or '*' to withdraw from all)",
                    self.campaign_ids.join(", ")
                ),
            );
        } else if campaign == ALL_CAMPAIGNS {
            if action == Some(Action::Grant) {
                bad(
                    "campaign",
                    "'*' (every campaign) can only be withdrawn (name one campaign to grant)"
                        .into(),
                );
            }
        } else if !self.campaign_ids.contains(&campaign) {
            bad(
                "campaign",
                format!(
                    "{campaign:?} is not a campaign in {} (use one of: {}, or '*' to withdraw from all)",
                    self.config.path.display(),
                    self.campaign_ids.join(", ")
                ),
            );
        }
    }

    /// The row's time: `now` when empty; never in the future.
    fn check_at(&self, at: &str, bad: &mut impl FnMut(&str, String)) -> Option<i64> {
        if at.is_empty() {
            return Some(self.now);
        }
        match crate::time::parse_rfc3339(at) {
            None => {
                bad(
                    "at",
                    format!(
                        "{at:?} is not an RFC 3339 time (write 2026-11-01T08:00:00Z, 2026-11-01T09:00:00+01:00 or 2026-11-01)"
                    ),
                );
                None
            }
            Some(t) if t > self.now + crate::web::FUTURE_SKEW_MS => {
                bad(
                    "at",
                    format!(
                        "{at:?} is in the future (the time consent was given or withdrawn; leave it empty for now)"
                    ),
                );
                None
            }
            Some(t) => Some(t),
        }
    }

    /// The row's source: `--source` when empty.
    fn check_source(&self, source: &str, bad: &mut impl FnMut(&str, String)) -> Option<Source> {
        if source.is_empty() {
            return Some(self.default_source);
        }
        match Source::given(source) {
            Ok(s) => Some(s),
            Err(e) => {
                bad("source", format!("{e} (or leave it empty for --source)"));
                None
            }
        }
    }
}

/// The person the row's `email` names.
fn check_email(email: &str, bad: &mut impl FnMut(&str, String)) -> Option<Identity> {
    if email.is_empty() {
        bad(
            "email",
            "is empty (every row needs the person's address)".into(),
        );
        return None;
    }
    Identity::of(email)
        .map_err(|reason| {
            bad(
                "email",
                format!("{email:?} is not an email address ({reason})"),
            )
        })
        .ok()
}

fn check_action(action: &str, bad: &mut impl FnMut(&str, String)) -> Option<Action> {
    match action.to_lowercase().as_str() {
        "grant" => Some(Action::Grant),
        "withdraw" => Some(Action::Withdraw),
        "" => {
            bad("action", "is empty (use grant or withdraw)".into());
            None
        }
        _ => {
            bad(
                "action",
                format!("{action:?} is not an action (use grant or withdraw)"),
            );
            None
        }
    }
}

fn check_evidence(evidence: &str, bad: &mut impl FnMut(&str, String)) {
    if evidence.len() > EVIDENCE_MAX {
        bad(
            "evidence",
            format!(
                "is {} bytes, more than {EVIDENCE_MAX} (keep the proof short: a form id, a text version, a ticket)",
                evidence.len()
            ),
        );
    }
}

/// SHA-256 (hex) of the fields, each length-prefixed so no two rows share one.
fn import_key(fields: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(b"consent-relay import v1");
    for f in fields {
        h.update((f.len() as u64).to_be_bytes());
        h.update(f.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Rows whose address was erased: importing them would bring the person
/// back, so each is an error to remove from the file.
async fn erased(
    store: &Store,
    config: &Config,
    file: &str,
    rows: &[Row],
) -> anyhow::Result<Vec<RowError>> {
    let mut by_hash: HashMap<String, &str> = HashMap::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for r in rows {
        if !seen.insert(&r.address) {
            continue;
        }
        for form in &r.hash_forms {
            for h in subject::address_hashes(&config.signing, form) {
                by_hash.insert(h, &r.address);
            }
        }
    }
    let hashes: Vec<String> = by_hash.keys().cloned().collect();
    let found = store.erased_hashes(&hashes).await?;
    let erased: HashSet<&str> = found
        .iter()
        .filter_map(|h| by_hash.get(h).copied())
        .collect();
    Ok(rows
        .iter()
        .filter(|r| erased.contains(r.address.as_str()))
        .map(|r| RowError {
            file: file.to_owned(),
            line: r.line,
            column: Some("email".into()),
            message: format!(
                "{} was erased (right to be forgotten); remove the row (a new consent is recorded with `consent grant`)",
                r.address
            ),
        })
        .collect())
}

/// `import FILE.csv [--source S] [--dry-run]`.
pub async fn run(config: &Config, args: ImportArgs) -> anyhow::Result<()> {
    let file = args.file.display().to_string();
    let data = std::fs::read(&args.file).map_err(|e| Exit {
        code: EXIT_DATA,
        message: format!("{file}: cannot read: {e}"),
    })?;
    let default_source: Source =
        Source::given(&args.source).map_err(|e| anyhow::anyhow!("--source: {e}"))?;
    let now = crate::time::now_ms();
    let parsed = parse(&file, &data, config, default_source, now);
    let store = crate::cli::open(config).await?;
    let result = import(&store, config, &file, parsed, args.dry_run).await;
    store.close().await;
    let (imported, present) = result?;
    if args.dry_run {
        println!(
            "{file}: dry run: {imported} would be imported, {present} already present; nothing written"
        );
    } else {
        println!("{file}: {imported} imported, {present} already present");
    }
    Ok(())
}

/// Checks against the store, then writes (or, for a dry run, counts).
async fn import(
    store: &Store,
    config: &Config,
    file: &str,
    parsed: Result<Vec<Row>, Vec<RowError>>,
    dry_run: bool,
) -> anyhow::Result<(u64, u64)> {
    let rows = match parsed {
        Ok(rows) => {
            let errors = erased(store, config, file, &rows).await?;
            if errors.is_empty() {
                rows
            } else {
                return Err(refuse(file, &errors));
            }
        }
        Err(errors) => return Err(refuse(file, &errors)),
    };
    if dry_run {
        let keys: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
        let stored = store.present_import_keys(&keys).await?;
        let mut seen = HashSet::new();
        let new = rows
            .iter()
            .filter(|r| !stored.contains(&r.key) && seen.insert(&r.key))
            .count() as u64;
        return Ok((new, rows.len() as u64 - new));
    }
    let (mut imported, mut present) = (0, 0);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let batch: Vec<ImportEvent> = rows
            .by_ref()
            .take(BATCH)
            .map(|r| ImportEvent {
                event: NewConsentEvent {
                    new_subject: subject::new_subject(&config.signing, &r.address),
                    address: r.address,
                    campaign: r.campaign,
                    action: r.action,
                    at: r.at,
                    source: r.source,
                    ip: None,
                    user_agent: None,
                    evidence: Some(r.evidence),
                    // One audit row for the run, not one per line.
                    actor: None,
                },
                key: r.key,
            })
            .collect();
        let counts = match store.import_events(batch).await {
            Ok(counts) => counts,
            Err(e) => {
                if let Err(audit) = record_run(store, file, imported, present).await {
                    tracing::error!(cause = %audit, "import: the run's audit row was not written");
                }
                bail!(
                    "{file}: {e}; {imported} rows imported before the failure: run the same import again to add the rest"
                );
            }
        };
        imported += counts.imported;
        present += counts.present;
    }
    record_run(store, file, imported, present).await?;
    Ok((imported, present))
}

/// The run's one audit row (its events carry none: a file of a million
/// lines is one operator's act), when it imported anything; the actor is
/// `$USER` via cli. The file is named unless its name holds an `@` (the
/// trail never names a person).
async fn record_run(store: &Store, file: &str, imported: u64, present: u64) -> anyhow::Result<()> {
    if imported == 0 {
        return Ok(());
    }
    let named = if file.contains('@') { "a file" } else { file };
    store
        .record_audit(AuditEntry {
            actor: super::campaign::operator(),
            action: AuditAction::ConsentImport,
            subject_id: None,
            target: None,
            detail: Some(format!(
                "{imported} events imported from {named} ({present} already present)"
            )),
        })
        .await?;
    Ok(())
}

/// Prints every error to stderr; the error that ends the program.
fn refuse(file: &str, errors: &[RowError]) -> anyhow::Error {
    for e in errors {
        eprintln!("{e}");
    }
    let lines: HashSet<u64> = errors.iter().map(|e| e.line).collect();
    Exit {
        code: EXIT_DATA,
        message: format!(
            "{file}: {} errors on {} lines; nothing imported (fix them and run the import again)",
            errors.len(),
            lines.len()
        ),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let text = r#"
[smtp]
listen = "127.0.0.1:0"
hostname = "relay.test"
[upstream]
url = "smtp://127.0.0.1:2600"
tls = "none"
[http]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"
[signing]
current = "k1"
keys = { k1 = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktMzJieXRlcyE=" }
[store]
url = "sqlite:///tmp/unused.db"
[[campaign]]
id = "newsletter"
label = "Newsletter"
policy = "opt-in"
[[campaign]]
id = "gone"
label = "Gone"
policy = "opt-out"
state = "deleted"
"#;
        Config::parse(Path::new("relay.toml"), text).unwrap()
    }

    const NOW: i64 = 1_790_000_000_000;

    fn run(csv: &str) -> Result<Vec<Row>, Vec<String>> {
        parse(
            "dir/list.csv",
            csv.as_bytes(),
            &config(),
            Source::Import,
            NOW,
        )
        .map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn good_rows_with_defaults_and_provenance() {
        let rows = run("email,campaign,action,at,source,evidence\n\
             Ann@Example.com ,newsletter,grant,2026-01-02T03:04:05Z,form,signup v3\n\
             bob@example.com,*,withdraw,,,\n")
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].address, "ann@example.com");
        assert_eq!(rows[0].source, Source::Form);
        assert_eq!(rows[0].evidence, "signup v3; imported from list.csv line 2");
        assert_eq!(rows[0].at, 1_767_323_045_000);
        assert_eq!(rows[1].at, NOW);
        assert_eq!(rows[1].source, Source::Import);
        assert_eq!(rows[1].evidence, "imported from list.csv line 3");
        assert_ne!(rows[0].key, rows[1].key);
    }

    #[test]
    fn the_key_is_the_normalised_row() {
        let a =
            run("email,campaign,action,at\nANN@example.com,newsletter,grant,2026-01-02\n").unwrap();
        let b = run(
            "action,email,campaign,at\ngrant, ann@example.com,newsletter,2026-01-02T00:00:00Z\n",
        )
        .unwrap();
        assert_eq!(a[0].key, b[0].key);
        let c =
            run("email,campaign,action,at\nann@example.com,newsletter,grant,2026-01-03\n").unwrap();
        assert_ne!(a[0].key, c[0].key);
    }

    #[test]
    fn every_error_is_listed_with_line_and_column() {
        let errors = run("email,campaign,action,at,source\n\
             not-an-address,newsletter,grant,,\n\
             ann@example.com,nope,grant,,\n\
             ann@example.com,gone,subscribe,yesterday,crm\n\
             ann@example.com,*,grant,2099-01-01,\n\
             ann@example.com,newsletter\n")
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "dir/list.csv:2: column email: \"not-an-address\" is not an email address (write it as name@domain)",
                "dir/list.csv:3: column campaign: \"nope\" is not a campaign in relay.toml (use one of: newsletter, or '*' to withdraw from all)",
                "dir/list.csv:4: column action: \"subscribe\" is not an action (use grant or withdraw)",
                "dir/list.csv:4: column campaign: \"gone\" is not a campaign in relay.toml (use one of: newsletter, or '*' to withdraw from all)",
                "dir/list.csv:4: column at: \"yesterday\" is not an RFC 3339 time (write 2026-11-01T08:00:00Z, 2026-11-01T09:00:00+01:00 or 2026-11-01)",
                "dir/list.csv:4: column source: \"crm\" is not one of: api, form, one-click, link, preference-page, import, admin (or leave it empty for --source)",
                "dir/list.csv:5: column campaign: '*' (every campaign) can only be withdrawn (name one campaign to grant)",
                "dir/list.csv:5: column at: \"2099-01-01\" is in the future (the time consent was given or withdrawn; leave it empty for now)",
                "dir/list.csv:6: has 2 fields, the header has 5 (quote cells that contain commas)",
            ]
        );
    }

    #[test]
    fn header_problems() {
        let errors = run("mail,campaign,campaign\nx,y,z\n").unwrap_err();
        assert_eq!(
            errors,
            [
                "dir/list.csv:1: column mail: is not a column (use email, campaign, action, at, source, evidence)",
                "dir/list.csv:1: column campaign: appears twice in the header (keep one)",
                "dir/list.csv:1: column email: missing from the header (the first line names the columns: email, campaign, action are required)",
                "dir/list.csv:1: column action: missing from the header (the first line names the columns: email, campaign, action are required)",
            ]
        );
    }

    #[test]
    fn quoted_cells_blank_lines_and_bad_bytes() {
        let rows = run("email,campaign,action,evidence\n\n\"ann@example.com\",newsletter,grant,\"form 3, page 2\"\n").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].line, 3);
        assert!(rows[0].evidence.starts_with("form 3, page 2; "));
        let errors = parse(
            "l.csv",
            b"email,campaign,action\nann@example.com,newsletter,gr\xffnt\n",
            &config(),
            Source::Import,
            NOW,
        )
        .unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "l.csv:2: column action: is not UTF-8 (save the file as UTF-8)"
        );
    }
}
