//! The decisions API (`/api/v1/decisions...`, `/api/v1/responders/...`) against a server
//! with responders: roles, CSRF, illegal transitions, per-id bulk results, extension caps,
//! the manual block's allowlist and prefix checks, and a server without responders.
//! Proposed decisions are written straight into the server's database through the
//! ledger, as the policy would.

mod common;

use common::{Running, Session};
use serde_json::{Value, json};
use spoor_core::{EventId, KeyPath, Micros};
use spoor_responders::config::RawRespond;
use spoor_responders::ledger;
use spoor_responders::{DecisionId, Ledger, NewDecision, Reason};

const PASSWORD: &str = "decisions-test-pw-1";
/// `[respond] max_ttl` of these tests: 2 days.
const MAX_TTL_SECS: u64 = 2 * 86_400;

async fn start() -> (Running, Session, Session, Session) {
    let run = common::start_with(|c| {
        let raw = RawRespond {
            allow: vec!["203.0.113.64/26".into()],
            max_ttl: spoor_core::Duration::from_secs(MAX_TTL_SECS),
            ..RawRespond::default()
        };
        let dir = c.data_dir.clone();
        c.respond = Some(
            raw.validate(&KeyPath::root().key("respond"), &dir, &dir)
                .unwrap(),
        );
    })
    .await;
    let admin = run.admin().await;
    for (name, role) in [("ana", "analyst"), ("vera", "viewer")] {
        let r = admin
            .post(
                "/api/v1/users",
                json!({"name": name, "password": PASSWORD, "role": role}),
            )
            .await;
        assert_eq!(r.status(), 201);
    }
    let ana = run.login("ana", PASSWORD).await;
    let vera = run.login("vera", PASSWORD).await;
    (run, admin, ana, vera)
}

/// Propose decisions on `targets` in the server's own database, as the policy does.
fn propose(run: &Running, targets: &[&str]) -> Vec<i64> {
    let conn = ledger::open(&run._dir.path().join(spoor_server::DB_FILE)).unwrap();
    let l = Ledger::new(&conn);
    targets
        .iter()
        .map(|t| {
            l.propose(
                &NewDecision {
                    target: spoor_responders::decision::parse_target(t).unwrap(),
                    reason: Reason {
                        rule: "scanners".into(),
                        events: vec![EventId(0xabc)],
                        note: Some(format!("{t} scanned 40 ports")),
                    },
                    ttl_secs: 3600,
                    dry_run: false,
                },
                "policy",
                ledger::now(),
            )
            .unwrap()
            .id
            .0
        })
        .collect()
}

/// What the agent does once its backend holds the target.
fn activate(run: &Running, id: i64) {
    let conn = ledger::open(&run._dir.path().join(spoor_server::DB_FILE)).unwrap();
    Ledger::new(&conn)
        .transition(
            DecisionId(id),
            spoor_responders::DecisionState::Active,
            "agent:fw1",
            ledger::now(),
            None,
        )
        .unwrap();
}

fn results(v: &Value) -> Vec<(i64, bool, String)> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["ok"].as_bool().unwrap(),
                r["error"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_approve_in_bulk_with_a_result_per_id() {
    let (run, admin, _ana, vera) = start().await;
    let ids = propose(&run, &["198.51.100.7", "198.51.100.8", "2001:db8::/64"]);
    // Everyone reads; newest first.
    let page = vera
        .get_json("/api/v1/decisions?state=proposed&limit=2")
        .await;
    let got: Vec<i64> = page["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, [ids[2], ids[1]]);
    assert_eq!(page["next"], ids[1]);
    assert!(page["now"].as_i64().unwrap() > 0);
    let rest = vera
        .get_json(&format!(
            "/api/v1/decisions?state=proposed&limit=2&before={}",
            ids[1]
        ))
        .await;
    assert_eq!(rest["decisions"][0]["id"], ids[0]);
    assert!(rest.get("next").is_none());

    // One approval request: two proposed ids, one unknown, one repeated.
    let r = admin
        .post(
            "/api/v1/decisions/approve",
            json!({"ids": [ids[0], ids[1], 999, ids[0]], "reason": "confirmed scanners"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        results(&v),
        [
            (ids[0], true, String::new()),
            (ids[1], true, String::new()),
            (999, false, "not_found".into())
        ]
    );
    assert_eq!(v["results"][0]["decision"]["state"], "approved");
    assert!(v["results"][0]["decision"]["expires"].as_i64().is_some());
    // Approving again is an illegal transition, said precisely; rejecting the third works.
    let v: Value = admin
        .post("/api/v1/decisions/approve", json!({"ids": [ids[0]]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(results(&v), [(ids[0], false, "illegal_transition".into())]);
    assert!(
        v["results"][0]["message"]
            .as_str()
            .unwrap()
            .contains("is approved; it cannot become approved"),
        "{v}"
    );
    let v: Value = admin
        .post(
            "/api/v1/decisions/reject",
            json!({"ids": [ids[2]], "reason": "our partner's range"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(results(&v), [(ids[2], true, String::new())]);
    // A rejected decision is final: revoking it is refused, the approved one is revoked.
    let v: Value = admin
        .post("/api/v1/decisions/revoke", json!({"ids": [ids[2], ids[1]]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        results(&v),
        [
            (ids[2], false, "illegal_transition".into()),
            (ids[1], true, String::new())
        ]
    );

    // One decision with its audit trail: every step with its actor and reason.
    let d = vera
        .get_json(&format!("/api/v1/decisions/{}", ids[1]))
        .await;
    assert_eq!(d["decision"]["state"], "revoked");
    let steps: Vec<(String, String)> = d["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["to"].as_str().unwrap().to_string(),
                a["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("proposed".into(), "policy".into()),
            ("approved".into(), "admin".into()),
            ("revoked".into(), "admin".into())
        ]
    );
    assert_eq!(d["audit"][1]["note"], "confirmed scanners");
    // The audit log: newest first, then followed with `since`.
    let log = vera.get_json("/api/v1/decisions/audit?limit=3").await;
    let seqs: Vec<i64> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 3);
    assert_eq!(log["targets"][ids[1].to_string()], "198.51.100.8");
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    let after = vera
        .get_json(&format!("/api/v1/decisions/audit?since={}", seqs[1]))
        .await;
    assert_eq!(after["entries"].as_array().unwrap().len(), 1);
    assert_eq!(after["cursor"], seqs[0]);
    assert_eq!(
        vera.get_json(&format!("/api/v1/decisions/audit?since={}", seqs[0]))
            .await["entries"],
        json!([])
    );
    // Final states list.
    let ended = vera
        .get_json("/api/v1/decisions?state=rejected,revoked")
        .await;
    assert_eq!(ended["decisions"].as_array().unwrap().len(), 2);
    let r = vera.get("/api/v1/decisions?state=gone").await;
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_admin_only_and_need_the_csrf_token() {
    let (run, admin, ana, vera) = start().await;
    let ids = propose(&run, &["198.51.100.20"]);
    for who in [&ana, &vera] {
        for path in [
            "/api/v1/decisions/approve",
            "/api/v1/decisions/reject",
            "/api/v1/decisions/revoke",
        ] {
            let r = who.post(path, json!({"ids": ids})).await;
            assert_eq!(r.status(), 403, "{path}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"], "role");
        }
        let r = who
            .post("/api/v1/decisions", json!({"target": "198.51.100.99"}))
            .await;
        assert_eq!(r.status(), 403);
        // Reading is everyone's, the allowlist only the admin's.
        assert_eq!(who.get("/api/v1/decisions").await.status(), 200);
        assert_eq!(who.get("/api/v1/responders/status").await.status(), 200);
        assert_eq!(who.get("/api/v1/responders/allowlist").await.status(), 403);
    }
    // The admin without the CSRF header: refused, nothing changed.
    let r = admin
        .http
        .post(format!("{}/api/v1/decisions/approve", admin.base))
        .header("cookie", &admin.cookie)
        .json(&json!({"ids": ids}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "csrf");
    let d = admin
        .get_json(&format!("/api/v1/decisions/{}", ids[0]))
        .await;
    assert_eq!(d["decision"]["state"], "proposed");
    assert_eq!(d["audit"].as_array().unwrap().len(), 1);
    // Not signed in at all.
    let r = run
        .http
        .get(run.url("/api/v1/decisions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Bad bodies are precise.
    for (body, status, code) in [
        (json!({"ids": []}), 400, "bad_body"),
        (json!({"ids": ids, "ttl_secs": 60}), 400, "bad_body"),
        (json!({"ids": ids, "colour": "red"}), 422, "invalid_body"),
        (
            json!({"ids": ids, "reason": "x".repeat(501)}),
            422,
            "reason_too_long",
        ),
    ] {
        let r = admin.post("/api/v1/decisions/approve", body.clone()).await;
        assert_eq!(r.status(), status, "{body}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], code, "{body}");
    }
    assert_eq!(
        admin
            .post("/api/v1/decisions/destroy", json!({"ids": ids}))
            .await
            .status(),
        404
    );
    // The allowlist names each entry's source.
    let list = admin.get_json("/api/v1/responders/allowlist").await;
    let rows = list.as_array().unwrap();
    assert!(
        rows.iter()
            .any(|e| e["net"] == "203.0.113.64/26" && e["source"] == "[respond] allow")
    );
    assert!(
        rows.iter().any(
            |e| e["net"] == "127.0.0.0/8" && e["source"].as_str().unwrap().contains("loopback")
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extend_and_manual_blocks_are_checked() {
    let (run, admin, _ana, _vera) = start().await;
    let ids = propose(&run, &["198.51.100.30", "198.51.100.31"]);
    let v: Value = admin
        .post("/api/v1/decisions/approve", json!({"ids": ids}))
        .await
        .json()
        .await
        .unwrap();
    let exp0 = v["results"][0]["decision"]["expires"].as_i64().unwrap();
    activate(&run, ids[0]);
    // + 1 h for both; the active one stays active.
    let v: Value = admin
        .post(
            "/api/v1/decisions/extend",
            json!({"ids": ids, "ttl_secs": 3600, "reason": "still scanning"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        results(&v),
        [(ids[0], true, String::new()), (ids[1], true, String::new())]
    );
    assert_eq!(v["results"][0]["decision"]["state"], "active");
    assert_eq!(
        v["results"][0]["decision"]["expires"].as_i64().unwrap(),
        exp0 + 3_600_000_000
    );
    // Beyond max_ttl, or not later: refused per id with the limit in the message.
    let v: Value = admin
        .post(
            "/api/v1/decisions/extend",
            json!({"ids": [ids[0]], "ttl_secs": MAX_TTL_SECS}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(results(&v), [(ids[0], false, "beyond_max_ttl".into())]);
    assert!(
        v["results"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("max_ttl is {MAX_TTL_SECS} s")),
        "{v}"
    );
    let v: Value = admin
        .post(
            "/api/v1/decisions/extend",
            json!({"ids": [ids[0]], "until": 1_000_000}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(results(&v), [(ids[0], false, "not_later".into())]);
    let r = admin
        .post("/api/v1/decisions/extend", json!({"ids": [ids[0]]}))
        .await;
    assert_eq!(r.status(), 400);
    let audit = admin
        .get_json(&format!("/api/v1/decisions/{}", ids[0]))
        .await["audit"]
        .clone();
    let last = audit.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            last["from"].clone(),
            last["to"].clone(),
            last["actor"].clone()
        ),
        (json!("active"), json!("active"), json!("admin"))
    );
    assert_eq!(last["note"], "still scanning");
    assert_eq!(last["expires"].as_i64().unwrap(), exp0 + 3_600_000_000);

    // Manual blocks: approved at once by the admin, two audit entries.
    let r = admin
        .post(
            "/api/v1/decisions",
            json!({"target": "198.18.5.0/24", "ttl_secs": 600, "reason": "phishing host"}),
        )
        .await;
    let status = r.status();
    let d: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{d}");
    assert_eq!(
        (d["state"].clone(), d["reason"]["rule"].clone()),
        (json!("approved"), json!("manual"))
    );
    let now = Micros(ledger::now().0);
    let exp = d["expires"].as_i64().unwrap();
    assert!(exp > now.0 && exp <= now.0 + 600_000_000);
    let trail = admin
        .get_json(&format!("/api/v1/decisions/{}", d["id"]))
        .await;
    assert_eq!(trail["audit"].as_array().unwrap().len(), 2);
    // Each refusal is a precise 422/409 and leaves nothing behind.
    for (body, status, code, says) in [
        (
            json!({"target": "198.18.5.0/24"}),
            409,
            "already_open",
            "already has decision",
        ),
        (
            json!({"target": "203.0.113.70"}),
            422,
            "refused",
            "[respond] allow",
        ),
        (json!({"target": "127.0.0.1"}), 422, "refused", "loopback"),
        (
            json!({"target": "10.1.2.3"}),
            422,
            "refused",
            "private range",
        ),
        (
            json!({"target": "198.51.0.0/16"}),
            422,
            "refused",
            "shortest allowed (/24)",
        ),
        (
            json!({"target": "2001:db8::/32"}),
            422,
            "refused",
            "shortest allowed (/48)",
        ),
        (
            json!({"target": "10.1.2.3/8"}),
            422,
            "bad_target",
            "did you mean `10.0.0.0/8`",
        ),
        (
            json!({"target": "evil.example"}),
            422,
            "bad_target",
            "not an IP address",
        ),
        (
            json!({"target": "198.51.100.50", "ttl_secs": MAX_TTL_SECS + 1}),
            422,
            "bad_ttl",
            "max_ttl",
        ),
    ] {
        let r = admin.post("/api/v1/decisions", body.clone()).await;
        assert_eq!(r.status(), status, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], code, "{body}");
        assert!(v["message"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    let all = admin.get_json("/api/v1/decisions").await;
    assert_eq!(all["decisions"].as_array().unwrap().len(), 3);
    // A proposal on an allowlisted address (the allowlist changed since, say) is refused
    // at approval, with the entry that protects it, and stays proposed.
    let allowed = propose(&run, &["203.0.113.70"]);
    let v: Value = admin
        .post("/api/v1/decisions/approve", json!({"ids": allowed}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(results(&v), [(allowed[0], false, "refused".into())]);
    assert!(
        v["results"][0]["message"]
            .as_str()
            .unwrap()
            .contains("203.0.113.64/26 ([respond] allow)"),
        "{v}"
    );
    let d = admin
        .get_json(&format!("/api/v1/decisions/{}", allowed[0]))
        .await;
    assert_eq!(d["decision"]["state"], "proposed");
    // A sensor's address learned from its ingest is never blocked either.
    run.server
        .responders()
        .unwrap()
        .note_sensor("s9", "198.51.100.77".parse().unwrap());
    let r = admin
        .post("/api/v1/decisions", json!({"target": "198.51.100.64/26"}))
        .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("198.51.100.77 (Spoor sensor `s9`, learned from its ingest)"),
        "{v}"
    );
    let list = admin.get_json("/api/v1/responders/allowlist").await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|e| e["net"] == "198.51.100.77/32"
                && e["source"].as_str().unwrap().contains("`s9`")),
        "{list}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_responders_the_endpoints_say_so() {
    let run = common::start().await;
    let admin = run.admin().await;
    for path in [
        "/api/v1/decisions",
        "/api/v1/decisions/1",
        "/api/v1/decisions/audit",
        "/api/v1/responders/status",
        "/api/v1/responders/allowlist",
    ] {
        let r = admin.get(path).await;
        assert_eq!(r.status(), 404, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "no_responders", "{path}");
        assert!(v["message"].as_str().unwrap().contains("[respond]"));
    }
    let r = admin
        .post("/api/v1/decisions/approve", json!({"ids": [1]}))
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "no_responders");
}
