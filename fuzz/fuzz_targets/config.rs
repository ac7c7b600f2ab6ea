//! Config parsing: any text, as a TOML file, gives a config or an error,
//! never a panic. An error names the file.
#![no_main]

use std::path::Path;

use consent_relay::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let path = Path::new("/nonexistent/fuzz.toml");
    if let Err(e) = Config::parse(path, text) {
        let shown = e.to_string();
        assert!(!shown.is_empty(), "an empty config error");
    }
});
