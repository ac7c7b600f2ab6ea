//! Tests of the whole file: the example, the defaults of every section,
//! and errors of several sections reported together.

use super::*;
use crate::config::testing::*;
use crate::texts::Language;

#[test]
fn the_example_parses() {
    let text = include_str!("../../config/consent-relay.toml");
    let config =
        Config::parse(Path::new("config/consent-relay.toml"), text).expect("the example is valid");
    assert_eq!(config.smtp.listen, "127.0.0.1:2525".parse().expect("addr"));
    assert_eq!(config.smtp.hostname, "relay.example.com");
    assert_eq!(config.smtp.missing_campaign, MissingCampaign::Reject);
    assert_eq!(
        config.upstream.target,
        UpstreamTarget::Outbox(PathBuf::from("./outbox"))
    );
    assert_eq!(config.upstream.tls, UpstreamTls::None);
    assert_eq!(
        config.store.url,
        StoreUrl::Sqlite(PathBuf::from("consent-relay.db"))
    );
    assert_eq!(config.http.public_url.as_str(), "http://127.0.0.1:8080/");
    assert_eq!(config.queue.retry_after.len(), 7);
    assert_eq!(config.queue.max_age, Duration::from_secs(5 * 86_400));
    assert!(config.dkim.is_none() && config.webhook.is_none());
    assert_eq!(config.signing.keys["k1"].0.len(), 32);

    let ids: Vec<&str> = config.campaigns.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["newsletter", "prospecting", "invoices"]);
    let newsletter = config.campaign("newsletter").expect("newsletter");
    assert_eq!(newsletter.policy, Policy::OptIn);
    assert!(newsletter.double_opt_in);
    assert_eq!(newsletter.consent_max_age_days, Some(395));
    assert_eq!(
        newsletter.list_id.as_deref(),
        Some("newsletter.example.com")
    );
    assert_eq!(
        newsletter.label_in(Language::Fr, Language::En),
        "la Lettre d'information"
    );
    assert_eq!(
        newsletter.label_in(Language::En, Language::En),
        "Newsletter"
    );
    let who = &config.http.controller;
    assert_eq!(who.organisation.as_deref(), Some("Example Ltd"));
    assert_eq!(who.contact.as_deref(), Some("dpo@example.com"));
    assert!(who.privacy_url.is_some() && who.logo.is_none());
    let prospecting = config.campaign("prospecting").expect("prospecting");
    assert_eq!((prospecting.policy, prospecting.order), (Policy::OptOut, 2));
    let invoices = config.campaign("invoices").expect("invoices");
    assert_eq!(
        (invoices.policy, invoices.order, invoices.state),
        (Policy::Mandatory, 3, CampaignState::Active)
    );

    assert_eq!(
        config.warnings,
        vec![
            "config/consent-relay.toml: http.public_url: http://127.0.0.1:8080/ is not https: Gmail \
             and other mail providers only offer RFC 8058 one-click unsubscribe over https (put a \
             reverse proxy with HTTPS in front and set public_url to its https:// address)"
                .to_owned(),
            "config/consent-relay.toml: signing.keys.k1 is the example key published in the repository: \
             generate your own with `openssl rand -base64 32`"
                .to_owned()
        ]
    );
}

#[test]
fn defaults_are_applied() {
    let config = parse(&minimal()).expect("valid");
    let smtp = &config.smtp;
    assert_eq!(smtp.listen_tls, None);
    let nets: Vec<String> = smtp
        .allowed_networks
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(nets, ["127.0.0.0/8", "::1/128"]);
    assert_eq!(smtp.max_message_size, 26_214_400);
    assert_eq!(smtp.max_recipients, 1000);
    assert_eq!(smtp.max_header_size, 102_400);
    assert_eq!(smtp.max_connections, 1000);
    assert_eq!(smtp.max_connections_per_ip, 100);
    assert_eq!(smtp.campaign_header, "X-Campaign");
    assert_eq!(smtp.missing_campaign, MissingCampaign::Reject);
    assert!(smtp.users.is_empty() && smtp.tls_cert.is_none() && !smtp.allow_plain_auth_on_loopback);
    assert_eq!(smtp.command_timeout, Duration::from_secs(300));
    assert_eq!(smtp.data_timeout, Duration::from_secs(180));
    assert_eq!(smtp.error_limit, 10);
    assert_eq!(smtp.guard.tls_handshake_timeout, Duration::from_secs(10));
    assert_eq!(smtp.guard.min_data_rate, 1024);
    assert_eq!(smtp.guard.auth_max_failures_per_ip, 10);
    assert_eq!(smtp.guard.auth_max_failures_per_user, 5);
    assert_eq!(smtp.guard.auth_failure_window, Duration::from_secs(900));

    let upstream = &config.upstream;
    assert_eq!(
        upstream.target,
        UpstreamTarget::Smtp {
            host: "mail.test".into(),
            port: 25
        }
    );
    assert_eq!(upstream.tls, UpstreamTls::Opportunistic);
    assert_eq!(upstream.connections, 4);
    assert!(
        upstream.username.is_none() && upstream.password.is_none() && upstream.ca_file.is_none()
    );
    assert_eq!(upstream.timeout, Duration::from_secs(60));

    assert_eq!(config.http.listen, "127.0.0.1:8080".parse().expect("addr"));
    assert!(config.http.operators.is_empty());
    assert_eq!(config.http.unsubscribe_mailto_domain, None);
    assert_eq!(
        config.store.url,
        StoreUrl::Sqlite(PathBuf::from("consent-relay.db"))
    );
    assert_eq!(config.store.pool_size, 8);

    let minutes = |m: u64| Duration::from_secs(m * 60);
    assert_eq!(
        config.queue.retry_after,
        [
            Duration::from_secs(30),
            minutes(2),
            minutes(10),
            minutes(30),
            minutes(60),
            minutes(120),
            minutes(240)
        ]
    );
    assert_eq!(config.queue.max_age, Duration::from_secs(5 * 86_400));
    assert_eq!(config.queue.lease, minutes(5));
    assert_eq!(config.queue.batch, 200);
    assert_eq!(
        config.retention.message_bodies,
        Duration::from_secs(30 * 86_400)
    );
    assert_eq!(
        config.retention.decisions,
        Duration::from_secs(3 * 31_557_600)
    );
    assert!(!config.erasure.notify);

    let news = &config.campaigns[0];
    assert_eq!(
        (news.state, news.order, news.double_opt_in),
        (CampaignState::Active, 1, false)
    );
    assert_eq!(
        (news.consent_max_age_days, news.list_id.as_deref()),
        (None, None)
    );
    assert!(config.warnings.is_empty());
}

#[test]
fn optional_sections_are_checked() {
    let dir = TempDir::new("dkim");
    std::fs::write(dir.0.join("dkim.pem"), "not a key\n").expect("write key");
    std::fs::write(dir.0.join("short.secret"), "tiny\n").expect("write secret");
    let text = format!(
        "{}\n[dkim]\ndomain = \"example\"\nselector = \"re lay\"\nprivate_key = \"dkim.pem\"\nexpire = \"0s\"\n\
         [webhook]\nurl = \"ftp://crm.test\"\nsecret_file = \"short.secret\"\n",
        minimal()
    );
    let path = dir.0.join("relay.toml");
    let Err(ConfigError::Invalid(lines)) = Config::parse(&path, &text) else {
        panic!("expected Invalid")
    };
    let (file, dir) = (path.display(), dir.0.display());
    assert_eq!(
        lines,
        [
            format!("{file}: dkim.domain: \"example\" is not a domain name (use e.g. example.com)"),
            format!(
                "{file}: dkim.selector: \"re lay\" is not a selector (use letters, digits and '-', e.g. relay)"
            ),
            format!(
                "{file}: dkim.private_key: {dir}/dkim.pem is not PEM (use a key file starting with -----BEGIN)"
            ),
            format!("{file}: dkim.expire: \"0s\" must be more than zero (use e.g. 7d)"),
            format!(
                "{file}: webhook.url: \"ftp://crm.test\" is not a usable URL (use an http:// or https:// URL)"
            ),
            format!(
                "{file}: webhook.secret_file: {dir}/short.secret holds 4 bytes, at least 16 are needed \
                 (write the secret in it, e.g. from openssl rand -base64 32)"
            ),
        ]
    );
}

#[test]
fn several_errors_are_reported_together() {
    let text = r#"
[smtp]
listen = "localhost:25"
hostname = "relay test"
max_recipients = 0

[upstream]
url = "smtp://mail.test"
connections = 1000

[http]
public_url = "ftp://relay.test"

[signing]
current = "k1"
keys = { k1 = "c2hvcnQ=" }

[[campaign]]
id = "news"
label = ""
policy = "optin"
"#;
    assert_eq!(
        errors(text),
        [
            "consent-relay.toml: campaign[0].label: is empty (give the name recipients see, e.g. \"Newsletter\")",
            "consent-relay.toml: campaign[0].policy: \"optin\" is not a policy (use opt-in, opt-out or mandatory)",
            "consent-relay.toml: smtp.listen: \"localhost:25\" is not an address and port (use IP:PORT, e.g. 127.0.0.1:2525 or [::1]:2525)",
            "consent-relay.toml: smtp.hostname: \"relay test\" is not a host name (use e.g. relay.example.com)",
            "consent-relay.toml: smtp.max_recipients: 0 is too small (use at least 1)",
            "consent-relay.toml: upstream.connections: 1000 is out of range (use 1 to 256)",
            "consent-relay.toml: http.public_url: \"ftp://relay.test\" is not a usable URL (use http(s)://host[:port][/path], without ?query or #fragment)",
            "consent-relay.toml: signing.keys.k1: decodes to 5 bytes, at least 32 are needed (generate one with `openssl rand -base64 32`)",
        ]
    );
}

#[test]
fn unreadable_config_file() {
    let dir = TempDir::new("nofile");
    let path = dir.0.join("absent.toml");
    let err = Config::load(&path).expect_err("missing file");
    assert!(matches!(err, ConfigError::Unreadable { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read the file: ", path.display())),
        "{err}"
    );
}
