//! Signing in and out: every console route answers the sign-in form
//! without a session; a token of `[[http.operator]]` opens one (a cookie
//! with the right attributes); a wrong token, a forged form and too many
//! attempts are refused; sign-out ends the session for good.

use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;

use crate::both_stores;
use crate::common::console::{self, ADMIN, Operator, VIEWER};
use crate::common::sink::Sink;
use consent_relay::store::{AuditAction, AuditFilter, Via};

/// Every view of the console (each view's helper adds its route here).
const ROUTES: &[&str] = &[
    "/admin",
    "/admin/register",
    "/admin/message?id=01J0000000000000000000000",
    "/admin/person?address=ann%40example.net",
    "/admin/campaigns",
    "/admin/queue",
    "/admin/suppressions",
    "/admin/audit",
];

async fn every_route_asks_for_sign_in_then_shows_itself() {
    let sink = Sink::start().await;
    let mut relay = console::start(&sink).await;
    let mut anon = Operator::new(&relay);
    for route in ROUTES.iter().copied() {
        let page = anon.get(route).await;
        assert_eq!(page.status, StatusCode::OK, "{route}");
        assert!(page.is_sign_in(), "{route}: {}", page.body);
        // After signing in, back to the page asked for.
        let escaped = route.replace('&', "&amp;");
        assert!(
            page.body.contains(&format!("value=\"{escaped}\"")),
            "{route}"
        );
    }
    let mut admin = Operator::signed_in(&relay, ADMIN.1).await;
    for route in ROUTES.iter().copied() {
        let page = admin.get(route).await;
        assert_eq!(page.status, StatusCode::OK, "{route}: {}", page.body);
        assert!(!page.is_sign_in(), "{route}");
        assert!(
            page.body.contains(ADMIN.0),
            "{route}: the operator is named"
        );
        assert!(page.body.contains("aria-current=\"page\""), "{route}");
    }
    // French when the browser asks for it.
    let mut fr = Operator::signed_in(&relay, ADMIN.1).await.french();
    let page = fr.get("/admin/register").await;
    assert!(page.body.contains("<html lang=\"fr\">"), "{}", page.body);
    assert!(page.body.contains("Registre des traitements"));
    relay.stop().await;
}
both_stores!(every_route_asks_for_sign_in_then_shows_itself);

async fn the_session_cookie_is_strict_and_http_only() {
    let sink = Sink::start().await;
    let mut relay = console::start(&sink).await;
    let mut op = Operator::new(&relay);
    let res = op.sign_in(ADMIN.1).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/admin");
    let set = res
        .headers
        .get(SET_COOKIE)
        .expect("a cookie")
        .to_str()
        .unwrap();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(set.contains("Path=/admin"), "{set}");
    // public_url is http here: no Secure flag (the browser would drop it).
    assert!(!set.contains("Secure"), "{set}");
    // The store keeps only the id's hash.
    let id = op.cookie().unwrap().split_once('=').unwrap().1.to_owned();
    let mut c = crate::common::backend::connect(relay.dir.path()).await;
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id_hash, csrf FROM operator_sessions")
        .fetch_all(&mut c)
        .await
        .expect("sessions");
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0].0, id, "the session id is stored in clear");
    assert_eq!(rows[0].0.len(), 64);
    assert_ne!(rows[0].1, id);
    relay.stop().await;
}
both_stores!(the_session_cookie_is_strict_and_http_only);

async fn wrong_tokens_forged_forms_and_floods_are_refused() {
    let sink = Sink::start().await;
    let mut relay = console::start(&sink).await;
    let mut op = Operator::new(&relay);
    let res = op.sign_in("not-a-token").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(res.is_sign_in());
    assert!(op.cookie().is_none());
    // A forged cookie is no session.
    op.set_cookie(Some("consent-relay-console=forged".into()));
    assert!(op.get("/admin").await.is_sign_in());
    // Five attempts a minute, then 429 even with the right token.
    let mut flood = Operator::new(&relay);
    let mut refused = 0;
    for _ in 0..6 {
        if flood.sign_in("wrong").await.status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert!(refused >= 1, "no rate limit on sign-in");
    let res = flood.sign_in(ADMIN.1).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers.contains_key("retry-after"));
    // The refusals are in the audit trail, with where they came from.
    let refused = relay
        .store()
        .audit(&AuditFilter {
            action: Some(AuditAction::SignInRefused),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(refused.len() >= 2, "{refused:?}");
    assert_eq!(refused[0].detail.as_deref(), Some("from 127.0.0.1"));
    relay.stop().await;
}
both_stores!(wrong_tokens_forged_forms_and_floods_are_refused);

async fn sign_out_ends_the_session_and_needs_the_csrf_token() {
    let sink = Sink::start().await;
    let mut relay = console::start(&sink).await;
    let mut op = Operator::signed_in(&relay, VIEWER.1).await;
    let kept = op.cookie().map(str::to_owned);
    // Without the token: refused, still signed in.
    let res = op.post("/admin/sign-out", &[]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    assert!(!op.get("/admin").await.is_sign_in());
    let res = op.post("/admin/sign-out", &[("csrf", "wrong")]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = op.submit("/admin", "/admin/sign-out", &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert!(op.cookie().is_none());
    // The old cookie is dead, not only forgotten by this client.
    op.set_cookie(kept);
    assert!(op.get("/admin").await.is_sign_in());
    // Both ends are in the audit trail, under the operator's name.
    let rows = relay
        .store()
        .audit(&AuditFilter {
            actor: Some(VIEWER.0.into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<AuditAction> = rows.iter().map(|r| r.action).collect();
    assert_eq!(actions, [AuditAction::SignOut, AuditAction::SignIn]);
    assert_eq!(rows[0].via, Via::Console);
    relay.stop().await;
}
both_stores!(sign_out_ends_the_session_and_needs_the_csrf_token);
