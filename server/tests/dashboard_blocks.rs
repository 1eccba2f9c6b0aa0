//! The Blocks pages in a real browser (headless Chromium over WebDriver, as in
//! `dashboard.rs`): a proposed block appears on Approvals, an admin approves it with a
//! reason, it becomes active and shows its time left counting down, a viewer sees no
//! controls and the API refuses them, and every step is in the audit log with its actor.
//! The proposals come from an `approve` rule on ingested events; the server's own dry-run
//! backend (`server_applies = true`) makes the approved decision active.
//! Screenshots go to `target/screenshots/blocks-*.png`.

mod browser;
mod common;

use browser::{Browser, Driver};
use common::{Running, Session};
use serde_json::json;
use spoor_core::{EventKind, KeyPath, Severity};
use spoor_responders::config::{RawRespond, RawRule};
use spoor_responders::ledger;
use spoor_responders::policy::{Action, Mode};
use spoor_server::respond::BackendStatus;

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

/// Ingest a high-severity event whose offender is `target` and wait for the policy's
/// proposal; returns its id.
async fn proposed_by_policy(run: &Running, admin: &Session, n: u128, target: &str) -> i64 {
    let now = ledger::now().0;
    let e = common::event(
        n,
        "s1",
        "10.0.0.7",
        target,
        target,
        Severity::High,
        now - 1_000_000,
    );
    assert_eq!(
        run.ingest(common::TOKEN, &common::batch("s1", vec![e]))
            .await
            .status(),
        200
    );
    let start = std::time::Instant::now();
    loop {
        let page = admin.get_json("/api/v1/decisions?state=proposed").await;
        if let Some(d) = page["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["target"] == format!("{target}/32"))
        {
            assert_eq!(d["reason"]["rule"], "scanners");
            assert_eq!(d["actor"], "policy");
            return d["id"].as_i64().unwrap();
        }
        assert!(
            start.elapsed() < browser::WAIT,
            "no proposal for {target} within {:?}: {page}",
            browser::WAIT
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// One browser at a time: the machine is small.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposed_block_is_approved_becomes_active_and_is_audited() {
    let _one = ONE_BROWSER.lock().await;
    let run = common::start_with(|c| {
        let dir = c.data_dir.clone();
        let raw = RawRespond {
            mode: Mode::Approve,
            server_applies: true,
            rule: vec![RawRule {
                name: Some("scanners".into()),
                kinds: vec![EventKind::Ip],
                min_severity: Some(Severity::High),
                references: Vec::new(),
                heuristics: Vec::new(),
                min_count: 1,
                window: spoor_core::Duration::from_secs(600),
                action: Action::Approve,
                ttl: Some(vec![spoor_core::Duration::from_secs(6 * 3600)]),
                quarantine_internal: false,
                enabled: true,
            }],
            ..RawRespond::default()
        };
        c.respond = Some(
            raw.validate(&KeyPath::root().key("respond"), &dir, &dir)
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
    // A high-severity hit on a listed address: the `approve` rule proposes a block of it.
    let id = proposed_by_policy(&run, &admin, 1, TARGET).await;

    let driver = Driver::start().await;
    let b = driver.browser(1366, 1000).await;
    sign_in(&b, &run.base, "admin", &run.admin_password).await;
    b.click(&b.find("a[data-nav=blocks]").await).await;
    b.find("#approvals-table").await;
    let row = b.text(&b.find("#approvals-table tbody tr").await).await;
    assert!(
        row.contains(TARGET)
            && row.contains("scanners")
            && row.contains(&format!("`{TARGET}`"))
            && row.contains("policy")
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

    // The server's own dry-run backend applies it: approved → active, actor `agent`.
    let start = std::time::Instant::now();
    while admin.get_json(&format!("/api/v1/decisions/{id}")).await["decision"]["state"] != "active"
    {
        assert!(
            start.elapsed() < browser::WAIT,
            "the in-process backend did not apply decision {id}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
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
    // Extend it by an hour (the first choice) with a reason.
    b.click(&b.find("#active-table tbody input.pick").await)
        .await;
    b.type_into(&b.find("#active-reason").await, "still scanning")
        .await;
    b.click(&b.find("#active-extend").await).await;
    b.wait_until(
        "the extension result",
        "return document.querySelector('.bulk-result')?.textContent.includes('1 extended')",
    )
    .await;

    // A block by hand: the allowlist refuses loopback with its reason; a listed address
    // becomes a second active-page row.
    b.click(&b.find("#active-manual summary").await).await;
    b.type_into(&b.find("#block-target").await, "127.0.0.9")
        .await;
    b.click(&b.find("#block-form button[type=submit]").await)
        .await;
    let err = b
        .wait_until(
            "the refusal",
            "return document.getElementById('block-error')?.textContent",
        )
        .await;
    assert!(
        err.as_str().unwrap().contains("built-in: loopback"),
        "{err}"
    );
    b.clear(&b.find("#block-target").await).await;
    b.type_into(&b.find("#block-target").await, "198.18.5.0/24")
        .await;
    b.type_into(&b.find("#block-reason").await, "phishing kit")
        .await;
    b.click(&b.find("#block-form button[type=submit]").await)
        .await;
    b.wait_until(
        "the manual block",
        "return document.querySelectorAll('#active-table tbody tr').length === 2",
    )
    .await;
    assert!(
        b.text(&b.find("#active-table").await)
            .await
            .contains("phishing kit")
    );

    // History and audit: each step with its actor.
    b.click(&b.find("#tab-history").await).await;
    b.find("#audit-table").await;
    let rows = b.texts("#audit-table tbody tr").await;
    let ours: Vec<&String> = rows
        .iter()
        .filter(|r| r.contains(&format!("#{id}")))
        .collect();
    assert_eq!(ours.len(), 4, "{rows:?}");
    assert!(
        ours[0].contains("extended to")
            && ours[0].contains("admin")
            && ours[0].contains("still scanning"),
        "{ours:?}"
    );
    assert!(
        ours[1].contains("approved → active") && ours[1].contains("agent"),
        "{ours:?}"
    );
    assert!(
        ours[2].contains("proposed → approved")
            && ours[2].contains("admin")
            && ours[2].contains("confirmed by the SOC"),
        "{ours:?}"
    );
    assert!(
        ours[3].contains("proposed") && ours[3].contains("policy"),
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
    assert_eq!(actors, ["policy", "admin", "agent", "admin"]);
    // 6 h from the approval plus the hour: more than 6 h left.
    let time_left = b.text(&b.find("#decision-fields .time-left").await).await;
    assert!(time_left.starts_with("06:"), "{time_left}");
    b.screenshot("blocks-decision").await;
    // Revoked from its own page: final, the trail says who and why.
    b.type_into(&b.find("#decision-reason").await, "scan ended")
        .await;
    b.click(&b.find("#decision-revoke").await).await;
    b.wait_until(
        "the revocation",
        "return document.querySelector('.bulk-result')?.textContent.includes('1 revoked') && document.querySelector('#decision-fields .state-revoked')",
    )
    .await;
    let last = b.texts("#decision-audit li").await;
    assert!(
        last.len() == 5
            && last[4].contains("active → revoked")
            && last[4].contains("admin")
            && last[4].contains("scan ended"),
        "{last:?}"
    );
    assert_eq!(
        b.count("#decision-revoke, #decision-extend").await,
        0,
        "nothing left to do"
    );

    // The allowlist (admin only) with each entry's source, and the backends' reports.
    b.click(&b.find("#tab-allowlist").await).await;
    b.find("#allowlist-table").await;
    let allow = b.text(&b.find("#allowlist-table").await).await;
    assert!(
        allow.contains("127.0.0.0/8")
            && allow.contains("built-in: loopback")
            && allow.contains("RFC 1918"),
        "{allow}"
    );
    b.click(&b.find("#tab-status").await).await;
    b.wait_until(
        "the backends page",
        "return [...document.querySelectorAll('#backends-table tbody tr')].some(r => r.textContent.startsWith('serverdry-run'))",
    )
    .await;
    run.server
        .responders()
        .unwrap()
        .report_status(BackendStatus {
            reporter: "fw1".into(),
            backend: "nftables".into(),
            object: "inet spoor / spoor_block4".into(),
            entries: 1,
            capacity: 1_000_000,
            last_sync: ledger::now(),
            last_error: Some("nft: Could not process rule: No such file or directory".into()),
        });
    b.click(&b.find("#tab-approvals").await).await;
    b.find("#tab-approvals[aria-current=page]").await;
    b.click(&b.find("#tab-status").await).await;
    let row = b.text(&b.find("#backends-table tbody tr").await).await;
    assert!(
        row.contains("fw1")
            && row.contains("nftables")
            && row.contains("spoor_block4")
            && row.contains("1,000,000")
            && row.contains("No such file"),
        "{row}"
    );
    b.screenshot("blocks-backends").await;
    b.click(&b.find("#logout").await).await;
    b.find("#login-form").await;

    // A viewer: the same lists, no controls, and the server refuses the change anyway.
    let second = proposed_by_policy(&run, &admin, 2, "203.0.113.99").await;
    sign_in(&b, &run.base, "vera", PASSWORD).await;
    b.goto(&format!("{}/#/blocks", run.base)).await;
    b.find("#approvals-table").await;
    assert!(
        b.text(&b.find("#approvals-table").await)
            .await
            .contains("203.0.113.99")
    );
    b.goto(&format!("{}/#/blocks/decision/{second}", run.base))
        .await;
    b.find("#decision-audit").await;
    for css in ["#decision-approve", "#decision-reject", "#decision-reason"] {
        assert_eq!(b.count(css).await, 0, "a viewer sees no {css}");
    }
    b.goto(&format!("{}/#/blocks/allowlist", run.base)).await;
    b.wait_until(
        "the allowlist refusal",
        "return document.querySelector('main .notice')?.textContent.includes('admins only')",
    )
    .await;
    assert_eq!(b.count("#allowlist-table").await, 0);
    b.goto(&format!("{}/#/blocks", run.base)).await;
    b.find("#approvals-table").await;
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
            second
        ),
        json!([]),
    )
    .await;
    let code = b
        .wait_until("the API answer", "return window.__status")
        .await;
    assert_eq!(code, json!(403));
    let d = admin
        .get_json(&format!("/api/v1/decisions/{}", second))
        .await;
    assert_eq!(d["decision"]["state"], "proposed");
    assert_eq!(d["audit"].as_array().unwrap().len(), 1);
    b.screenshot("blocks-viewer").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_responders_the_pages_say_so() {
    let _one = ONE_BROWSER.lock().await;
    let run = common::start().await;
    let driver = Driver::start().await;
    let b = driver.browser(1366, 1000).await;
    sign_in(&b, &run.base, "admin", &run.admin_password).await;
    for (page, tab) in [
        ("blocks", "approvals"),
        ("blocks/active", "active"),
        ("blocks/history", "history"),
        ("blocks/allowlist", "allowlist"),
        ("blocks/status", "status"),
    ] {
        b.goto(&format!("{}/#/{page}", run.base)).await;
        b.wait_until(
            &format!("the notice on {page}"),
            &format!("return document.querySelector('#tab-{tab}[aria-current=page]') && document.querySelector('main .notice-info')?.textContent.includes('responders are not configured on this server')"),
        )
        .await;
        assert_eq!(b.count("main table").await, 0, "{page}");
    }
    b.close().await;
}
