//! The house rules, checked: which top-level module may use which. Reads
//! the crate's own sources (every `crate::NAME` path, grouped imports
//! included) and fails when a module reaches a layer it must not know, or
//! when the modules' imports form a cycle. Test only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The pure core: values in, values out. Besides each other they may use
/// `config`'s types, nothing with IO.
const PURE: &[&str] = &[
    "consent", "mail", "net", "rewrite", "texts", "time", "token",
];

/// Pure parts of modules that are not pure as a whole, as paths under
/// `src/` (a folder or a file): `feedback` reads and classifies reports
/// purely, while its rules (suppressions, withdrawals, the reputation
/// guard) use the store. They are held to the pure core's rules: no
/// runtime layer, no IO crate, and of their own module only other pure
/// parts.
const PURE_PARTS: &[&str] = &["feedback/report", "feedback/classify.rs"];

/// What each module must never use (ARCHITECTURE.md, "knows nothing of").
/// A module not listed may use anything below it; the cycle check keeps it
/// honest.
fn forbidden(module: &str) -> &'static [&'static str] {
    const RUNTIME: &[&str] = &[
        "cli", "delivery", "metrics", "rights", "server", "smtp", "store", "web", "webhook",
    ];
    match module {
        m if PURE.contains(&m) => RUNTIME,
        "config" => RUNTIME,
        "metrics" => &[
            "cli", "config", "delivery", "rights", "server", "smtp", "store", "web", "webhook",
        ],
        "store" => &[
            "cli", "delivery", "rewrite", "rights", "server", "smtp", "web", "webhook",
        ],
        "smtp" => &["cli", "delivery", "rights", "server", "web", "webhook"],
        "delivery" => &["cli", "rights", "server", "smtp", "web", "webhook"],
        "web" => &["cli", "delivery", "server", "smtp"],
        "webhook" => &["cli", "delivery", "server", "smtp", "web"],
        "rights" => &["cli", "delivery", "server", "smtp", "web", "webhook"],
        // Where reports come from (the SMTP door, the CLI, the API) is not
        // its business; the doors call in.
        "feedback" => &[
            "cli", "delivery", "rights", "server", "smtp", "web", "webhook",
        ],
        "server" => &["cli"],
        _ => &[],
    }
}

/// Crates whose use means IO, forbidden in the pure core.
const IO_CRATES: &[&str] = &[
    "sqlx::",
    "tokio::",
    "axum::",
    "mail_send::",
    "reqwest::",
    "std::net::Tcp",
    "std::fs::",
];

/// The top-level modules a source text names through `crate::`.
fn crate_paths(source: &str) -> BTreeSet<String> {
    let code = strip_comments(source);
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::`, `my_crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = matching_brace(group);
            for item in split_top_level(&group[..end]) {
                if let Some(name) = leading_ident(item.trim()) {
                    found.insert(name);
                }
            }
        } else if let Some(name) = leading_ident(rest) {
            found.insert(name);
        }
    }
    found
}

fn leading_ident(s: &str) -> Option<String> {
    let name: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty() && name != "self").then_some(name)
}

fn matching_brace(s: &str) -> usize {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    s.len()
}

fn split_top_level(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The source without `//` comments (doc comments name other layers on
/// purpose) and without the `#[cfg(test)]` module at the end of a file,
/// where tests may use anything.
fn strip_comments(source: &str) -> String {
    let code = match source.find("#[cfg(test)]\nmod tests") {
        Some(at) => &source[..at],
        None => source,
    };
    code.lines()
        .map(|l| match l.find("//") {
            Some(at) if !l[..at].contains('"') => &l[..at],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Each top-level module of `src/` and the sources that make it up.
fn modules() -> BTreeMap<String, Vec<(PathBuf, String)>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules: BTreeMap<String, Vec<(PathBuf, String)>> = BTreeMap::new();
    for path in files {
        let rel = path.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a component");
        let name = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if matches!(name.as_str(), "lib" | "main" | "layers") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read a source file");
        modules.entry(name).or_default().push((path, text));
    }
    modules
}

/// The import graph of the top-level modules.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let names: BTreeSet<&String> = modules.keys().collect();
    modules
        .iter()
        .map(|(name, files)| {
            let uses = files
                .iter()
                .flat_map(|(_, text)| crate_paths(text))
                .filter(|used| used != name && names.contains(used))
                .collect();
            (name.clone(), uses)
        })
        .collect()
}

/// A cycle in `graph`, as the path that closes it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

/// Whether `rel` (a path under `src/`, `/`-separated) is in a pure part.
fn in_pure_part(rel: &str) -> bool {
    PURE_PARTS
        .iter()
        .any(|part| rel == *part || rel.starts_with(&format!("{part}/")))
}

/// The path of `path` under `src/`, `/`-separated.
fn relative(path: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    path.strip_prefix(&src)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// How many `super::` a file in a pure part may climb and stay inside it:
/// the part's own file (or its `mod.rs`) none, a file in its folder one,
/// and so on.
fn levels_inside_part(rel: &str) -> usize {
    let Some(part) = PURE_PARTS
        .iter()
        .find(|p| rel == **p || rel.starts_with(&format!("{p}/")))
    else {
        return 0;
    };
    let below: Vec<&str> = rel[part.len()..]
        .split('/')
        .filter(|c| !c.is_empty())
        .collect();
    match below.last() {
        Some(&"mod.rs") => below.len() - 1,
        _ => below.len(),
    }
}

/// The longest run of `super::` in a source text.
fn super_depth(code: &str) -> usize {
    let mut deepest = 0;
    let mut rest = code;
    while let Some(at) = rest.find("super::") {
        let mut n = 0;
        let mut tail = &rest[at..];
        while let Some(t) = tail.strip_prefix("super::") {
            n += 1;
            tail = t;
        }
        deepest = deepest.max(n);
        rest = tail;
    }
    deepest
}

/// The `crate::MODULE::NAME` paths a source text names, as `MODULE/NAME`
/// (the first level below a top-level module).
fn crate_subpaths(source: &str, module: &str) -> BTreeSet<String> {
    let code = strip_comments(source);
    let prefix = format!("crate::{module}::");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find(&prefix) {
        rest = &rest[at + prefix.len()..];
        let items = match rest.strip_prefix('{') {
            Some(group) => split_top_level(&group[..matching_brace(group)])
                .into_iter()
                .filter_map(|item| leading_ident(item.trim()))
                .collect(),
            None => leading_ident(rest).into_iter().collect::<Vec<_>>(),
        };
        found.extend(items.into_iter().map(|name| format!("{module}/{name}")));
    }
    found
}

#[test]
fn no_module_uses_a_layer_it_must_not_know() {
    let mut wrong = Vec::new();
    for (module, uses) in graph() {
        for used in uses.intersection(&forbidden(&module).iter().map(|s| s.to_string()).collect()) {
            wrong.push(format!("{module} uses {used}"));
        }
    }
    assert!(wrong.is_empty(), "layer rules broken: {wrong:?}");
}

#[test]
fn the_module_imports_have_no_cycle() {
    let graph = graph();
    assert_eq!(find_cycle(&graph), None, "import graph: {graph:#?}");
}

#[test]
fn the_pure_core_does_no_io() {
    let mut wrong = Vec::new();
    for (module, files) in modules() {
        if !PURE.contains(&module.as_str()) {
            continue;
        }
        for (path, text) in files {
            let code = strip_comments(&text);
            for krate in IO_CRATES {
                if code.contains(krate) {
                    wrong.push(format!("{}: {krate}", path.display()));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "IO in the pure core: {wrong:?}");
}

#[test]
fn the_pure_parts_stay_pure() {
    let mut wrong = Vec::new();
    let mut seen = BTreeSet::new();
    for (module, files) in modules() {
        for (path, text) in files {
            let rel = relative(&path);
            if !in_pure_part(&rel) {
                continue;
            }
            seen.insert(PURE_PARTS.iter().find(|p| rel.starts_with(**p)).copied());
            let code = strip_comments(&text);
            for krate in IO_CRATES {
                if code.contains(krate) {
                    wrong.push(format!("{rel}: {krate}"));
                }
            }
            for used in crate_paths(&text) {
                let allowed = used == module || PURE.contains(&used.as_str()) || used == "config";
                if !allowed {
                    wrong.push(format!("{rel} uses {used}"));
                }
            }
            for sub in crate_subpaths(&text, &module) {
                if !in_pure_part(&sub) && !in_pure_part(&format!("{sub}.rs")) {
                    wrong.push(format!("{rel} uses {sub}, which is not pure"));
                }
            }
            if super_depth(&code) > levels_inside_part(&rel) {
                wrong.push(format!(
                    "{rel}: `super::` leaves the pure part (name it by crate::)"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "the pure parts are not pure: {wrong:?}");
    // Every listed part exists: a rename must update the list.
    assert_eq!(seen.len(), PURE_PARTS.len(), "pure parts found: {seen:?}");
}

#[test]
fn the_checker_sees_plain_grouped_and_nested_paths() {
    let src = "use crate::store::Store;\nuse crate::{config::{self, Config}, token};\n\
               // use crate::web;\nfn f() { crate::smtp::x(); $crate::ignored; }\n\
               #[cfg(test)]\nmod tests { use crate::cli; }";
    let found: Vec<String> = crate_paths(src).into_iter().collect();
    assert_eq!(found, ["config", "smtp", "store", "token"]);
    let mut g = BTreeMap::new();
    g.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    g.insert("b".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(
        find_cycle(&g),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );
    g.insert("b".to_owned(), BTreeSet::new());
    assert_eq!(find_cycle(&g), None);
    let sub =
        "use crate::feedback::{report::Report, classify};\nfn f() { crate::feedback::rules::x(); }";
    let found: Vec<String> = crate_subpaths(sub, "feedback").into_iter().collect();
    assert_eq!(
        found,
        ["feedback/classify", "feedback/report", "feedback/rules"]
    );
    assert!(in_pure_part("feedback/report/dsn.rs"));
    assert!(in_pure_part("feedback/classify.rs"));
    assert!(!in_pure_part("feedback/rules.rs"));
    assert!(!in_pure_part("feedback/reporting.rs"));
    assert_eq!(levels_inside_part("feedback/classify.rs"), 0);
    assert_eq!(levels_inside_part("feedback/report/mod.rs"), 0);
    assert_eq!(levels_inside_part("feedback/report/dsn.rs"), 1);
    assert_eq!(super_depth("use super::x; use super::super::y;"), 2);
}
