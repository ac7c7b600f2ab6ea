//! `/admin/suppressions`: the suppressions in force, made through the
//! relay (a bounce report, the upstream's own 5xx), newest first and
//! paged by 50; a DPO or an admin removes one with a reason (in the audit
//! trail and as `removed_by` with their name); a viewer is refused; a
//! forged form changes nothing; an erased person's row shows the hash
//! that is left and offers no removal.

use consent_relay::consent::policy::Reason;
use consent_relay::store::{AuditAction, Via};
use reqwest::{Method, StatusCode};

use crate::both_stores;
use crate::bounces::{BOUNCES, hard_dsn, return_path, sent, take};
use crate::common::admin::call;
use crate::common::console::{self, ADMIN, DPO, Operator, VIEWER, audit_of};
use crate::common::relay::{TestRelay, eventually, message};
use crate::common::sink::{Fault, Sink};

const PATH: &str = "/admin/suppressions";

async fn start(sink: &Sink) -> TestRelay {
    console::start_edited(sink, |t| format!("{t}\n{BOUNCES}")).await
}

/// Whether `email` has a suppression in force.
async fn suppressed(relay: &TestRelay, email: &str) -> bool {
    let list = relay.store().suppressions_of(email).await.expect("store");
    list.iter().any(|s| s.active)
}

/// The rows of the page's table.
fn rows(body: &str) -> Vec<&str> {
    let start = body.find("<tbody>").expect("a table") + "<tbody>".len();
    let end = body[start..].find("</tbody>").expect("end of table") + start;
    body[start..end]
        .split("<tr>")
        .filter(|r| r.contains("</td>") && !r.contains("colspan"))
        .collect()
}

async fn a_dpo_removes_a_suppression_with_a_reason_and_a_viewer_cannot() {
    let sink = Sink::start().await;
    let mut relay = start(&sink).await;
    // Ann's bounce comes back as a report; Ivy's upstream refuses at once.
    let ann = "ann@example.net";
    let d = sent(&relay, &sink, ann, "prospecting").await;
    take(&relay, Some(return_path(&relay, d)), hard_dsn(ann)).await;
    sink.script([Fault::Rcpt(550, "5.1.1 <ivy@example.net>: no such user")]);
    relay
        .send(&["ivy@example.net"], &message("prospecting", "x"))
        .await;
    eventually("ivy is suppressed", || async {
        suppressed(&relay, "ivy@example.net").await
    })
    .await;
    assert!(suppressed(&relay, ann).await);

    let mut viewer = Operator::signed_in(&relay, VIEWER.1).await;
    let page = viewer.get(PATH).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let listed = rows(&page.body);
    assert_eq!(listed.len(), 2, "{}", page.body);
    // Newest first: Ivy's, from the upstream's reply.
    assert!(
        listed[0].contains("href=\"/admin/person?address=ivy%40example.net\""),
        "{}",
        listed[0]
    );
    assert!(listed[0].contains("upstream reply"), "{}", listed[0]);
    assert!(listed[1].contains("ann@example.net") && listed[1].contains("bounce report"));
    for r in &listed {
        assert!(
            r.contains("hard bounce") && r.contains("<code>5.1.1</code>"),
            "{r}"
        );
        assert!(
            r.contains(&format!("<code>{}</code>", Reason::Bounced)),
            "{r}"
        );
        assert!(r.contains("<code>prospecting</code>"), "{r}");
    }
    assert!(
        !page.body.contains("/admin/suppressions/remove"),
        "a viewer has no forms"
    );
    let remove = [("address", "ivy@example.net"), ("reason", "new mailbox")];
    let res = viewer
        .submit(PATH, "/admin/suppressions/remove", &remove)
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(suppressed(&relay, "ivy@example.net").await);

    // A DPO: a reason is required, then the suppression is lifted.
    let mut dpo = Operator::signed_in(&relay, DPO.1).await;
    let page = dpo.get(PATH).await;
    assert_eq!(page.body.matches("/admin/suppressions/remove").count(), 2);
    let res = dpo
        .submit(
            PATH,
            "/admin/suppressions/remove",
            &[("address", "ivy@example.net"), ("reason", " ")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    assert!(suppressed(&relay, "ivy@example.net").await);
    // Without this session's token: refused.
    let res = dpo.post("/admin/suppressions/remove", &remove).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(suppressed(&relay, "ivy@example.net").await);
    assert!(
        audit_of(&relay, AuditAction::SuppressionRemove)
            .await
            .is_empty()
    );
    let res = dpo
        .submit(PATH, "/admin/suppressions/remove", &remove)
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let shown = dpo.get(res.location()).await;
    assert!(
        shown.body.contains("1 suppression(s) removed"),
        "{}",
        shown.body
    );
    assert_eq!(rows(&shown.body).len(), 1);
    assert!(!suppressed(&relay, "ivy@example.net").await);
    let all = relay
        .store()
        .suppressions_of("ivy@example.net")
        .await
        .unwrap();
    assert_eq!(all[0].removed_by.as_deref(), Some("dora"));
    assert_eq!(all[0].removed_reason.as_deref(), Some("new mailbox"));
    let audit = audit_of(&relay, AuditAction::SuppressionRemove).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].actor.as_str(), audit[0].via),
        ("dora", Via::Console)
    );
    assert_eq!(
        audit[0].subject_id.as_deref(),
        Some(relay.subject_id("ivy@example.net").await.as_str())
    );
    // Nothing left in force for her: said so, nothing recorded.
    let res = dpo
        .submit(PATH, "/admin/suppressions/remove", &remove)
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(
        audit_of(&relay, AuditAction::SuppressionRemove).await.len(),
        1
    );
    // An admin may too (the address as the person wrote it).
    let mut admin = Operator::signed_in(&relay, ADMIN.1).await.french();
    let res = admin
        .submit(
            PATH,
            "/admin/suppressions/remove",
            &[("address", "Ann@Example.net"), ("reason", "elle a écrit")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let shown = admin.get(res.location()).await;
    assert!(
        shown.body.contains("1 suppression(s) retirée(s)"),
        "{}",
        shown.body
    );
    assert!(!suppressed(&relay, ann).await);
    assert!(rows(&shown.body).is_empty());
    relay.stop().await;
}
both_stores!(a_dpo_removes_a_suppression_with_a_reason_and_a_viewer_cannot);

async fn an_erased_persons_suppression_shows_its_hash_and_pages_by_fifty() {
    let sink = Sink::start().await;
    let mut relay = start(&sink).await;
    // 55 copies the upstream refuses: 55 people suppressed.
    let rcpts: Vec<String> = (0..55).map(|i| format!("p{i:02}@example.org")).collect();
    let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    sink.script((0..55).map(|_| Fault::Rcpt(550, "5.1.1 no such user")));
    let reply = relay.send(&rcpts, &message("prospecting", "x")).await;
    assert!(reply.starts_with("250"), "{reply}");
    eventually("the refusals are suppressions", || async {
        sink.faults_pending() == 0
            && relay
                .store()
                .active_suppressions(1000, None)
                .await
                .unwrap()
                .len()
                >= 51
    })
    .await;
    let total = relay.store().active_suppressions(1000, None).await.unwrap();
    // The oldest, erased: only its keyed hash is left.
    let oldest = total.last().unwrap();
    let email = oldest.address.clone().unwrap();
    let erased = call(
        &relay,
        Method::DELETE,
        &format!("/api/v1/subjects/{email}"),
        Some(ADMIN.1),
        None,
    )
    .await;
    assert_eq!(erased.status, StatusCode::NO_CONTENT, "{}", erased.body);

    let mut dpo = Operator::signed_in(&relay, DPO.1).await;
    let page = dpo.get(PATH).await;
    let first = rows(&page.body);
    assert_eq!(first.len(), 50);
    assert!(first[0].contains(total[0].address.as_deref().unwrap()));
    let at = page.body.find("rel=\"next\"").expect("a next page");
    let href_at = page.body[..at].rfind("href=\"").expect("its link") + "href=\"".len();
    let href = page.body[href_at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert_eq!(
        href,
        format!("/admin/suppressions?before={}", total[49].suppression.id)
    );
    let page = dpo.get(&href).await;
    let second = rows(&page.body);
    assert_eq!(second.len(), total.len() - 50, "{}", page.body);
    assert!(!page.body.contains("rel=\"next\""));
    let last = second.last().unwrap();
    assert!(
        !last.contains(&email),
        "the erased address is shown: {last}"
    );
    assert!(
        last.contains("erased <code") && last.contains(&oldest.address_hash),
        "{last}"
    );
    assert!(!last.contains("/admin/suppressions/remove"), "{last}");
    assert!(second[0].contains("/admin/suppressions/remove"));
    assert_eq!(
        dpo.get("/admin/suppressions?before=x").await.status,
        StatusCode::BAD_REQUEST
    );
    relay.stop().await;
}
both_stores!(an_erased_persons_suppression_shows_its_hash_and_pages_by_fifty);
