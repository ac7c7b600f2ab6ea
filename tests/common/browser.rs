//! Headless Chromium for the end-to-end tests, driven over the W3C
//! WebDriver protocol (chromedriver, spoken to with plain HTTP): a driver
//! killed with its browsers when the test ends, sessions in a language and
//! at a desktop or a 390 px phone size, and screenshots written under
//! `target/screenshots/` for people to look at.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian packages
//! `chromium` and `chromium-driver`; `.ci/run` installs them). Without them
//! [`Driver::start`] says so loudly and gives `None`, unless
//! CONSENT_RELAY_REQUIRE_BROWSER is set (CI), where it panics.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
pub const TAB: &str = "\u{E004}";

/// The checks of [`Session::accessibility_problems`], run in the page.
const ACCESSIBILITY: &str = r#"
const problems = [];
const show = el => el.outerHTML.slice(0, 160);
const named = el => (el.getAttribute('aria-label') || el.textContent || '').trim() !== ''
    || el.querySelector('img[alt]:not([alt=""])') !== null;
if (!document.documentElement.lang) problems.push('no lang on <html>');
const h1 = document.querySelectorAll('h1').length;
if (h1 !== 1) problems.push(h1 + ' h1 elements, not one');
for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
  if (!(el.labels && el.labels.length) && !el.getAttribute('aria-label')
      && !el.getAttribute('aria-labelledby')) problems.push('no label: ' + show(el));
}
for (const el of document.querySelectorAll('button, a[href]')) {
  if (!named(el)) problems.push('no name: ' + show(el));
}
for (const el of document.querySelectorAll('img:not([alt])')) problems.push('no alt: ' + show(el));
for (const el of document.querySelectorAll('svg')) {
  if (el.closest('[aria-hidden=true]')) continue;
  if (el.getAttribute('role') !== 'img'
      || !(el.querySelector(':scope > title') || el.getAttribute('aria-label')
           || el.getAttribute('aria-labelledby'))) problems.push('svg without role=img and a title: ' + show(el));
}
const rgb = s => {
  const m = s.match(/rgba?\(([^)]*)\)/);
  if (!m) return null;
  const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
  return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
};
const over = (top, under) => ({
  r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
  b: top.b * top.a + under.b * (1 - top.a), a: 1 });
const background = el => {
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
  }
  let c = { r: 255, g: 255, b: 255, a: 1 };
  for (const l of layers.reverse()) c = over(l, c);
  return c;
};
const lum = c => {
  const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
};
const seen = new Set();
const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walk.nextNode()) {
  const text = walk.currentNode.textContent.trim();
  const el = walk.currentNode.parentElement;
  if (!text || !el || seen.has(el) || el.closest('svg')) continue;
  seen.add(el);
  const st = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  if (st.visibility === 'hidden' || box.width === 0 || box.height === 0) continue;
  const bg = background(el);
  const fg = over(rgb(st.color), bg);
  const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
  const ratio = (hi + 0.05) / (lo + 0.05);
  const size = parseFloat(st.fontSize);
  const large = size >= 24 || (parseInt(st.fontWeight, 10) >= 700 && size >= 18.66);
  if (ratio < (large ? 3 : 4.5))
    problems.push('contrast ' + ratio.toFixed(2) + ':1 for "' + text.slice(0, 40) + '" ('
      + st.color + ' on ' + JSON.stringify(bg) + ')');
}
return problems;
"#;

/// chromedriver, killed with its browsers when the test ends, panics included.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    /// Chromium profiles, removed on drop.
    profiles: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver leads its own process group (see `start`), and the
        // browsers it launched are in it: end that group, which this test made.
        let pgid = self.child.id() as i32;
        // SAFETY: kill(2) with a process group id we created; no memory involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    /// `None` (after saying why) when the browser is not installed here.
    pub async fn start() -> Option<Driver> {
        let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
        if !missing.is_empty() {
            if std::env::var_os("CONSENT_RELAY_REQUIRE_BROWSER").is_some() {
                panic!(
                    "CONSENT_RELAY_REQUIRE_BROWSER is set but {} is missing: \
                     install the Debian packages chromium and chromium-driver",
                    missing.join(" and ")
                );
            }
            eprintln!(
                "\n*** web::browser skipped: chromium not installed (CI installs it): \
                 missing {} ***\n",
                missing.join(", ")
            );
            return None;
        }
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let child = {
            use std::os::unix::process::CommandExt as _;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("start chromedriver")
        };
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            profiles: tempfile::tempdir().expect("temp dir"),
        };
        for _ in 0..100 {
            if let Ok(res) = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                && let Ok(v) = res.json::<Value>().await
                && v["value"]["ready"] == json!(true)
            {
                return Some(driver);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not become ready on port {port}");
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = res.status();
        let v: Value = res.json().await.expect("json answer");
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v["value"].clone()
    }

    /// A new browser session. `lang` sets the UI language and Accept-Language;
    /// `mobile` emulates a 390 px wide phone screen.
    pub async fn session(&self, name: &str, lang: &str, mobile: bool) -> Session<'_> {
        let profile = self.profiles.path().join(name);
        let mut options = json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-breakpad",
                "--disable-crash-reporter",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                "--window-size=1024,900",
                format!("--lang={lang}"),
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": { "intl.accept_languages": lang },
        });
        if mobile {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 2.0 },
                "userAgent": "Mozilla/5.0 (Linux; Android 14) Mobile consent-relay-test"
            });
        }
        let v = self
            .call(
                reqwest::Method::POST,
                "/session",
                Some(json!({
                    "capabilities": { "alwaysMatch": {
                        "browserName": "chrome",
                        "goog:chromeOptions": options,
                    }}
                })),
            )
            .await;
        let id = v["sessionId"].as_str().expect("session id").to_owned();
        Session { driver: self, id }
    }
}

pub struct Session<'d> {
    driver: &'d Driver,
    id: String,
}

impl Session<'_> {
    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.driver
            .call(
                reqwest::Method::POST,
                &format!("/session/{}{path}", self.id),
                Some(body),
            )
            .await
    }

    pub async fn get(&self, path: &str) -> Value {
        self.driver
            .call(
                reqwest::Method::GET,
                &format!("/session/{}{path}", self.id),
                None,
            )
            .await
    }

    pub async fn open(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// The element matching `css`, waiting up to 5 s for it to appear.
    pub async fn find(&self, css: &str) -> String {
        for _ in 0..50 {
            let res = self
                .driver
                .http
                .post(format!("{}/session/{}/element", self.driver.base, self.id))
                .json(&json!({ "using": "css selector", "value": css }))
                .send()
                .await
                .expect("find element");
            if res.status().is_success() {
                let v: Value = res.json().await.expect("json");
                return v["value"][ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("element id in {v}"))
                    .to_owned();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no element matches {css:?}");
    }

    /// Types `text` into the element (as keystrokes, after what it holds).
    pub async fn type_text(&self, element: &str, text: &str) {
        self.post(
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// Sizes the viewport so the whole document fits in one screenshot,
    /// `width` wide (a phone's when `mobile`), up to 6000 px high.
    pub async fn fit_page(&self, width: u32, mobile: bool) {
        let height = self
            .script("return Math.ceil(document.documentElement.scrollHeight)")
            .await
            .as_u64()
            .unwrap_or(900)
            .clamp(400, 6000);
        self.post(
            "/goog/cdp/execute",
            json!({ "cmd": "Emulation.setDeviceMetricsOverride", "params": {
                "width": width, "height": height,
                "deviceScaleFactor": if mobile { 2 } else { 1 }, "mobile": mobile,
            }}),
        )
        .await;
    }

    pub async fn click(&self, element: &str) {
        self.post(&format!("/element/{element}/click"), json!({}))
            .await;
    }

    pub async fn selected(&self, element: &str) -> bool {
        self.get(&format!("/element/{element}/selected"))
            .await
            .as_bool()
            .expect("bool")
    }

    /// What the page in the browser gets wrong for people who use a
    /// keyboard, a screen reader or weak eyes, as the DOM and the computed
    /// styles say it (empty when nothing): a form control without a label,
    /// a link or button without a name, an image without `alt`, an SVG
    /// without `role="img"` and a title, not one `h1`, no `lang`, text
    /// below WCAG's contrast (4.5:1, 3:1 for large text) against the
    /// background it is drawn on. Text inside an SVG is not checked (its
    /// figures are in the table beside it).
    pub async fn accessibility_problems(&self) -> Vec<String> {
        let found = self.script(ACCESSIBILITY).await;
        found
            .as_array()
            .expect("a list of problems")
            .iter()
            .map(|p| p.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Panics with [`Session::accessibility_problems`] unless there are none.
    pub async fn assert_accessible(&self, what: &str) {
        let problems = self.accessibility_problems().await;
        assert!(problems.is_empty(), "{what}: {problems:#?}");
    }

    pub async fn source(&self) -> String {
        self.get("/source")
            .await
            .as_str()
            .expect("source")
            .to_owned()
    }

    /// Asserts that the page needs no horizontal scrolling (on a phone).
    pub async fn assert_fits_the_width(&self, px: i64) {
        let width = self
            .script("return document.documentElement.scrollWidth;")
            .await;
        assert!(
            width.as_i64().is_some_and(|w| w <= px),
            "no horizontal scrolling on a phone: {width}"
        );
    }

    pub async fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    pub async fn press(&self, key: &str) {
        self.post(
            "/actions",
            json!({ "actions": [{
                "type": "key", "id": "keyboard",
                "actions": [{ "type": "keyDown", "value": key }, { "type": "keyUp", "value": key }],
            }]}),
        )
        .await;
        self.driver
            .call(
                reqwest::Method::DELETE,
                &format!("/session/{}/actions", self.id),
                None,
            )
            .await;
    }

    /// Writes a PNG of the viewport to `target/screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64"))
            .expect("png");
        assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }

    pub async fn quit(self) {
        self.driver
            .call(
                reqwest::Method::DELETE,
                &format!("/session/{}", self.id),
                None,
            )
            .await;
    }
}
