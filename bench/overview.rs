//! The console overview's store read at scale (issue 15: under 200 ms with
//! 10 million decision rows and a million people, on SQLite, on this
//! machine): `bench/run.sh overview` seeds the store, then runs
//!
//! `cargo bench --bench overview -- STORE.db [READS] [DAYS]`
//!
//! which opens the SQLite file as `serve` does (its migrations run; no
//! lock taken, so nothing else may write it meanwhile), and times READS
//! (default 50) calls of `Store::overview` over the last DAYS days (default
//! 30, what the console's overview shows), one after another on one
//! connection pool. Prints the repository's figure lines
//! (`FIGURE<TAB>name<TAB>value<TAB>unit<TAB>conditions`): the first read
//! (cold caches), then the median, 95th percentile and maximum of the rest.
//! Measures, never asserts a threshold.

use std::path::PathBuf;
use std::time::Instant;

use consent_relay::config::{StoreConfig, StoreUrl};
use consent_relay::store::Store;
use consent_relay::time::{day_of, now_ms};

fn usage() -> ! {
    eprintln!("usage: cargo bench --bench overview -- STORE.db [READS] [DAYS]");
    std::process::exit(2)
}

fn number(arg: Option<&String>, default: usize) -> usize {
    match arg {
        None => default,
        Some(a) => a.parse().ok().filter(|n| *n > 0).unwrap_or_else(|| usage()),
    }
}

fn fig(name: &str, ms: f64, cond: &str) {
    println!("FIGURE\t{name}\t{ms:.2}\tms\t{cond}");
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench` to a harness-less target: not ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(path) = args.first().map(PathBuf::from) else {
        usage()
    };
    if !path.is_file() {
        eprintln!("{}: no such file", path.display());
        std::process::exit(2)
    }
    let reads = number(args.get(1), 50);
    let days = number(args.get(2), 30) as i64;
    let config = StoreConfig {
        url: StoreUrl::Sqlite(path.clone()),
        pool_size: 4,
        webhook_outbox: false,
    };
    let store = match Store::open(&config, false).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            std::process::exit(1)
        }
    };
    let today = day_of(now_ms());
    let mut times = Vec::with_capacity(reads);
    let mut last = None;
    for _ in 0..reads {
        let t = Instant::now();
        match store.overview(today - days + 1, today).await {
            Ok(o) => last = Some(o),
            Err(e) => {
                eprintln!("overview: {e}");
                std::process::exit(1)
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    store.close().await;
    let Some(o) = last else { usage() };
    let total = o.total(o.from_day);
    let cond = format!(
        "Store::overview over {days} days, {reads} reads one after another, {}; \
         the range counted {} messages accepted, {} copies delivered, {} suppressed, \
         {} unsubscribes, {} campaigns; queue {} deferred",
        path.display(),
        total.accepted,
        total.delivered,
        total.suppressed_total(),
        total.unsubscribes_total(),
        o.campaign_totals(o.from_day).len(),
        o.queue.deferred,
    );
    fig("overview_read_first_ms", times[0], &cond);
    let mut rest: Vec<f64> = if times.len() > 1 {
        times[1..].to_vec()
    } else {
        times.clone()
    };
    rest.sort_by(f64::total_cmp);
    let at = |q: f64| rest[((rest.len() - 1) as f64 * q).round() as usize];
    fig("overview_read_p50_ms", at(0.5), &cond);
    fig("overview_read_p95_ms", at(0.95), &cond);
    fig("overview_read_max_ms", at(1.0), &cond);
}
