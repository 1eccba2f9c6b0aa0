//! The Blocks pages in a real browser (headless Chromium over WebDriver, as in
//! `dashboard.rs`): a proposed block appears on Approvals, an admin approves it with a
//! reason, it becomes active and shows its time left counting down, a viewer sees no
//! controls and the API refuses them, and every step is in the audit log with its actor.
//! Screenshots go to `target/screenshots/blocks-*.png`.

mod browser;
mod common;

use browser::{Browser, Driver};
use common::Running;
use serde_json::json;
use spoor_core::{EventId, KeyPath};
use spoor_responders::config::RawRespond;
use spoor_responders::ledger;
use spoor_responders::{DecisionState, Ledger, NewDecision, Reason};

const PASSWORD: &str = "blocks-test-pw-1";
const TARGET: &str = "198.51.100.23";

async fn sign_in(b: &Browser, base: &str, user: &str, password: &str) {
    b.goto(&format!("{base}/")).await;
    b.type_into(&b.find("#login-user").await, user).await;
    b.type_into(&b.find("#login-password").await, password)
        .await;
    b.click(&b.find("#login-form button[type=submit]").await)
        .await;
    b.wait_until(
        &format!("{user} to be signed in"),
        &format!("return document.getElementById('who').textContent.startsWith('{user} ')"),
    )
    .await;
}

fn ledger_conn(run: &Running) -> rusqlite::Connection {
    ledger::open(&run._dir.path().join(spoor_server::DB_FILE)).unwrap()
}

/// Elements sticking out on the right of a phone-sized window (what scrolls in its own
/// box does not count).
async fn overflowing(b: &Browser) -> serde_json::Value {
    b.exec(
        "const w = document.documentElement.clientWidth;
         const inScroller = (e) => {
           for (let p = e.parentElement; p && p !== document.body; p = p.parentElement)
             if (getComputedStyle(p).overflowX !== 'visible') return true;
           return false;
         };
         return [...document.querySelectorAll('body *')]
           .filter(e => !inScroller(e) && e.getBoundingClientRect().right > w + 1)
           .map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}px`)
           .concat(document.documentElement.scrollWidth > w ? [`page ${document.documentElement.scrollWidth}px > ${w}px`] : []);",
        json!([]),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposed_block_is_approved_becomes_active_and_is_audited() {
    let run = common::start_with(|c| {
        let dir = c.data_dir.clone();
        c.respond = Some(
            RawRespond::default()
                .validate(&KeyPath::root().key("respond"), &dir, &dir)
                .unwrap(),
        );
    })
    .await;
    let admin = run.admin().await;
    let r = admin
        .post(
            "/api/v1/users",
            json!({"name": "vera", "password": PASSWORD, "role": "viewer"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    // The policy's proposal, written to the server's ledger as an `approve` rule does.
    let id = {
        let conn = ledger_conn(&run);
        Ledger::new(&conn)
            .propose(
                &NewDecision {
                    target: spoor_responders::decision::parse_target(TARGET).unwrap(),
                    reason: Reason {
                        rule: "scanners".into(),
                        events: vec![EventId(0x5ca1ab1e)],
                        note: Some("40 ports in 10 s".into()),
                    },
                    ttl_secs: 6 * 3600,
                    dry_run: false,
                },
                "policy",
                ledger::now(),
            )
            .unwrap()
            .id
    };

    let driver = Driver::start().await;
    let b = driver.browser(1366, 1000).await;
    sign_in(&b, &run.base, "admin", &run.admin_password).await;
    b.click(&b.find("a[data-nav=blocks]").await).await;
    b.find("#approvals-table").await;
    let row = b.text(&b.find("#approvals-table tbody tr").await).await;
    assert!(
        row.contains(TARGET)
            && row.contains("scanners")
            && row.contains("40 ports in 10 s")
            && row.contains("6 h"),
        "{row}"
    );
    b.screenshot("blocks-approvals").await;
    // Select it (keyboard-reachable checkbox), give a reason, approve.
    b.click(&b.find("#approvals-table tbody input.pick").await)
        .await;
    b.type_into(&b.find("#approvals-reason").await, "confirmed by the SOC")
        .await;
    b.click(&b.find("#approvals-approve").await).await;
    b.wait_until(
        "the approval result",
        "return document.querySelector('.bulk-result')?.textContent.includes('1 approved')",
    )
    .await;

    // The agent applies it: approved → active with the agent as actor.
    {
        let conn = ledger_conn(&run);
        Ledger::new(&conn)
            .transition(id, DecisionState::Active, "agent:fw1", ledger::now(), None)
            .unwrap();
    }
    b.click(&b.find("#tab-active").await).await;
    b.find("#active-table").await;
    let row = b.text(&b.find("#active-table tbody tr").await).await;
    assert!(row.contains(TARGET) && row.contains("active"), "{row}");
    // Time left: just under 6 h, and counting down.
    let first = b
        .wait_until(
            "time left",
            "const t = document.querySelector('#active-table .time-left')?.textContent; return /^0[45]:[0-5][0-9]:[0-5][0-9]$/.test(t) && t",
        )
        .await;
    b.wait_until(
        "the countdown to move",
        &format!(
            "return document.querySelector('#active-table .time-left').textContent !== {first}"
        ),
    )
    .await;
    b.screenshot("blocks-active").await;
    b.set_window(390, 844).await;
    b.find("#active-table").await;
    b.screenshot("blocks-active-phone").await;
    assert_eq!(overflowing(&b).await, json!([]), "the page fits a phone");
    b.set_window(1366, 1000).await;

    // History and audit: each step with its actor.
    b.click(&b.find("#tab-history").await).await;
    b.find("#audit-table").await;
    let rows = b.texts("#audit-table tbody tr").await;
    let ours: Vec<&String> = rows
        .iter()
        .filter(|r| r.contains(&format!("#{id}")))
        .collect();
    assert_eq!(ours.len(), 3, "{rows:?}");
    assert!(
        ours[0].contains("approved → active") && ours[0].contains("agent:fw1"),
        "{ours:?}"
    );
    assert!(
        ours[1].contains("proposed → approved")
            && ours[1].contains("admin")
            && ours[1].contains("confirmed by the SOC"),
        "{ours:?}"
    );
    assert!(
        ours[2].contains("proposed") && ours[2].contains("policy"),
        "{ours:?}"
    );
    b.screenshot("blocks-history").await;
    b.click(
        &b.find(&format!("#audit-table a[href='#/blocks/decision/{id}']"))
            .await,
    )
    .await;
    b.find("#decision-audit").await;
    let actors = b.texts("#decision-audit .actor").await;
    assert_eq!(actors, ["policy", "admin", "agent:fw1"]);
    b.screenshot("blocks-decision").await;
    b.click(&b.find("#logout").await).await;
    b.find("#login-form").await;

    // A viewer: the same lists, no controls, and the server refuses the change anyway.
    let second = {
        let conn = ledger_conn(&run);
        Ledger::new(&conn)
            .propose(
                &NewDecision {
                    target: spoor_responders::decision::parse_target("203.0.113.99").unwrap(),
                    reason: Reason {
                        rule: "scanners".into(),
                        events: Vec::new(),
                        note: None,
                    },
                    ttl_secs: 3600,
                    dry_run: false,
                },
                "policy",
                ledger::now(),
            )
            .unwrap()
            .id
    };
    sign_in(&b, &run.base, "vera", PASSWORD).await;
    b.goto(&format!("{}/#/blocks", run.base)).await;
    b.find("#approvals-table").await;
    assert!(
        b.text(&b.find("#approvals-table").await)
            .await
            .contains("203.0.113.99")
    );
    for css in [
        "input.pick",
        "#approvals-approve",
        "#approvals-reject",
        "#approvals-reason",
        "#tab-allowlist",
    ] {
        assert_eq!(b.count(css).await, 0, "a viewer sees no {css}");
    }
    b.goto(&format!("{}/#/blocks/active", run.base)).await;
    b.find("#active-table").await;
    for css in [
        "input.pick",
        "#active-extend",
        "#active-revoke",
        "#block-form",
    ] {
        assert_eq!(b.count(css).await, 0, "a viewer sees no {css}");
    }
    b.exec(
        &format!(
            "fetch('/api/v1/session').then(r => r.json()).then(s =>
               fetch('/api/v1/decisions/approve', {{method: 'POST', headers: {{'content-type': 'application/json', 'x-csrf-token': s.csrf}},
                 body: JSON.stringify({{ids: [{}]}})}})).then(r => {{ window.__status = r.status; }});",
            second.0
        ),
        json!([]),
    )
    .await;
    let code = b
        .wait_until("the API answer", "return window.__status")
        .await;
    assert_eq!(code, json!(403));
    let d = admin
        .get_json(&format!("/api/v1/decisions/{}", second.0))
        .await;
    assert_eq!(d["decision"]["state"], "proposed");
    assert_eq!(d["audit"].as_array().unwrap().len(), 1);
    b.screenshot("blocks-viewer").await;
    b.close().await;
}
