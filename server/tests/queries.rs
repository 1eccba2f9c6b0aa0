//! Summary and search over known events: counts, top lists, filters, pagination, and
//! triage rules applied to both.

mod common;

use common::*;
use spoor_core::{EventKind, Severity};

const MIN: i64 = 60_000_000;
const HOUR: i64 = 60 * MIN;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_and_searches_agree_with_the_events() {
    let r = start().await;
    // 300 events over 3 hours (from 00:30 to 03:29): sources 10.0.0.{0..9}, trails
    // t0..t2, every 3rd event high, every 5th a DNS event.
    let mut events = Vec::new();
    for i in 0..300u128 {
        let mut e = event(
            i + 1,
            "s1",
            &format!("10.0.0.{}", i % 10),
            "203.0.113.1",
            &format!("t{}", i % 3),
            if i % 3 == 0 {
                Severity::High
            } else {
                Severity::Low
            },
            DAY0 + 30 * MIN + (i as i64) * 36_000_000,
        );
        if i % 5 == 0 {
            e.kind = EventKind::Dns;
        }
        events.push(e);
    }
    assert_eq!(r.ingest(TOKEN, &batch("s1", events)).await.status(), 200);
    let s = r.admin().await;

    // Unaligned range: 00:45 .. 02:15 (partial hours at both ends).
    let (from, to) = (DAY0 + 45 * MIN, DAY0 + 2 * HOUR + 15 * MIN);
    let sum = s
        .get_json(&format!("/api/v1/summary?from={from}&to={to}&bucket=900"))
        .await;
    // Event i is at 30 min + i*36 s: in range for i*36 s in [15 min, 105 min).
    let inside: Vec<u128> = (0..300u128)
        .filter(|i| (900..6300).contains(&(*i as i64 * 36)))
        .collect();
    assert_eq!(sum["total"], inside.len(), "{sum}");
    let high = inside.iter().filter(|i| *i % 3 == 0).count();
    assert_eq!(sum["severity"]["high"], high);
    assert_eq!(
        sum["kinds"]["dns"],
        inside.iter().filter(|i| *i % 5 == 0).count()
    );
    assert_eq!(sum["buckets"].as_array().unwrap().len(), 6);
    let top_src = &sum["top_sources"][0];
    assert_eq!(top_src["count"], inside.len() / 10, "{sum}");
    let trails_total: i64 = sum["top_trails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["count"].as_i64().unwrap())
        .sum();
    assert_eq!(trails_total, inside.len() as i64);

    // Search: filters and keyset pages cover exactly the same events.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let p = s
            .get_json(&format!(
                "/api/v1/events?from={from}&to={to}&severity=high&src=10.0.0.0/29&limit=7{cursor}"
            ))
            .await;
        for e in p["events"].as_array().unwrap() {
            seen.push(e["event"]["id"].as_str().unwrap().to_string());
        }
        match p["next"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let want: Vec<String> = inside
        .iter()
        .rev()
        .filter(|i| *i % 3 == 0 && *i % 10 < 8)
        .map(|i| format!("{:032x}", i + 1))
        .collect();
    assert_eq!(seen, want);

    // Suppress t0 from 10.0.0.0 and hide t1: gone from summary and search.
    let resp = s
        .post(
            "/api/v1/suppressions",
            serde_json::json!({"trail": "t0", "src": "10.0.0.0", "comment": "lab box"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(
        s.post("/api/v1/hidden-trails", serde_json::json!({"trail": "t1"}))
            .await
            .status(),
        201
    );
    let left: Vec<&u128> = inside
        .iter()
        .filter(|i| *i % 3 == 2 || (*i % 3 == 0 && *i % 10 != 0))
        .collect();
    let sum = s
        .get_json(&format!("/api/v1/summary?from={from}&to={to}"))
        .await;
    assert_eq!(sum["total"], left.len(), "{sum}");
    let p = s
        .get_json(&format!("/api/v1/events?from={from}&to={to}&limit=1000"))
        .await;
    assert_eq!(p["events"].as_array().unwrap().len(), left.len());
    let p = s.get_json(&format!("/api/v1/events?from={from}&to={to}&limit=1000&include_hidden=true&include_suppressed=true")).await;
    assert_eq!(p["events"].as_array().unwrap().len(), inside.len());

    // Triage status and notes on an event, then filter by status.
    let id = format!("{:032x}", inside[0] + 1);
    let resp = s
        .post(
            &format!("/api/v1/events/{id}/triage"),
            serde_json::json!({"status": "investigating", "note": "looking"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let d = s.get_json(&format!("/api/v1/events/{id}")).await;
    assert_eq!(d["triage"]["status"], "investigating");
    assert_eq!(d["triage"]["notes"][0]["text"], "looking");
    let p = s
        .get_json("/api/v1/events?status=investigating&include_hidden=1&include_suppressed=1")
        .await;
    assert_eq!(p["events"].as_array().unwrap().len(), 1);

    // Bad parameters are named.
    let resp = s.get("/api/v1/events?sevrity=high").await;
    assert_eq!(resp.status(), 400);
    let e: serde_json::Value = resp.json().await.unwrap();
    assert!(e["message"].as_str().unwrap().contains("sevrity"));
    assert_eq!(s.get("/api/v1/events?ip=10.0.0.999").await.status(), 400);
}

/// Every sortable column, both directions: the keyset pages cover each matching event
/// exactly once, in the order asked for, with ties broken by time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sorted_pages_cover_every_event_once_in_order() {
    let r = start().await;
    let mut events = Vec::new();
    for i in 0..90u128 {
        // Few distinct values per column, so ties cross page boundaries.
        let src = if i % 4 == 0 {
            format!("2001:db8::{}", i % 3)
        } else {
            format!("10.0.{}.1", i % 5)
        };
        let sev = [Severity::Low, Severity::Medium, Severity::High][(i % 3) as usize];
        let mut e = event(
            i + 1,
            "s1",
            &src,
            &format!("198.51.100.{}", i % 7),
            &format!("trail-{}", i % 4),
            sev,
            DAY0 + (i as i64 % 30) * MIN,
        );
        if i % 2 == 0 {
            e.kind = EventKind::Dns;
        }
        events.push(e);
    }
    assert_eq!(r.ingest(TOKEN, &batch("s1", events)).await.status(), 200);
    let s = r.admin().await;
    let (from, to) = (DAY0, DAY0 + HOUR);
    for sort in ["time", "severity", "sensor", "src", "dst", "kind", "trail"] {
        for dir in ["asc", "desc"] {
            let mut rows: Vec<serde_json::Value> = Vec::new();
            let mut cursor = String::new();
            loop {
                let p = s
                    .get_json(&format!(
                        "/api/v1/events?from={from}&to={to}&sort={sort}&dir={dir}&limit=8{cursor}"
                    ))
                    .await;
                rows.extend(p["events"].as_array().unwrap().iter().cloned());
                match p["next"].as_str() {
                    Some(c) => cursor = format!("&cursor={c}"),
                    None => break,
                }
            }
            let mut ids: Vec<&str> = rows
                .iter()
                .map(|h| h["event"]["id"].as_str().unwrap())
                .collect();
            assert_eq!(ids.len(), 90, "{sort} {dir}");
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), 90, "{sort} {dir}: an event on two pages");
            // The key the server sorts by, comparable here.
            let key = |h: &serde_json::Value| -> (String, i64) {
                let e = &h["event"];
                let t = e["time"].as_i64().unwrap();
                let k = match sort {
                    "time" => String::new(),
                    "severity" => match e["severity"].as_str().unwrap() {
                        "low" => "0".into(),
                        "medium" => "1".into(),
                        _ => "2".into(),
                    },
                    "src" | "dst" => {
                        let ip: std::net::IpAddr = e[sort].as_str().unwrap().parse().unwrap();
                        let v6 = match ip {
                            std::net::IpAddr::V4(a) => a.to_ipv6_mapped(),
                            std::net::IpAddr::V6(a) => a,
                        };
                        format!("{:032x}", u128::from(v6))
                    }
                    other => e[other].as_str().unwrap().to_string(),
                };
                (k, t)
            };
            for w in rows.windows(2) {
                let (a, b) = (key(&w[0]), key(&w[1]));
                if dir == "asc" {
                    assert!(a <= b, "{sort} asc: {a:?} before {b:?}");
                } else {
                    assert!(a >= b, "{sort} desc: {a:?} before {b:?}");
                }
            }
        }
    }
    // A cursor from one order is refused for another, precisely.
    let p = s
        .get_json(&format!(
            "/api/v1/events?from={from}&to={to}&sort=trail&limit=8"
        ))
        .await;
    let c = p["next"].as_str().unwrap();
    let resp = s
        .get(&format!(
            "/api/v1/events?from={from}&to={to}&sort=severity&cursor={c}"
        ))
        .await;
    assert_eq!(resp.status(), 400);
    let resp = s.get("/api/v1/events?sort=info").await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_filters_find_exactly_the_events_in_each_network() {
    // The address indexes are keyed by /24 and /48 networks: every filter, host or CIDR,
    // narrower or wider than those networks, IPv4 or IPv6, must still match exactly.
    let r = start().await;
    let addrs = [
        "10.0.0.1",
        "10.0.0.9",
        "10.0.1.1",
        "10.1.0.1",
        "10.255.255.255",
        "11.0.0.0",
        "192.0.2.7",
        "2001:db8::1",
        "2001:db8::ff",
        "2001:db8:0:1::1",
        "2001:db8:1::1",
        "2001:db9::1",
        "::1",
        "::2:0:0",
        "fe80::1",
    ];
    let mut events = Vec::new();
    let mut pairs = Vec::new();
    for i in 0..(addrs.len() * addrs.len()) as u128 {
        let src = addrs[i as usize % addrs.len()];
        let dst = addrs[(i as usize / addrs.len() + 3 * i as usize) % addrs.len()];
        events.push(event(
            i + 1,
            "s1",
            src,
            dst,
            "t0",
            Severity::Low,
            DAY0 + i as i64 * 1_000_000,
        ));
        pairs.push((
            i + 1,
            src.parse::<std::net::IpAddr>().unwrap(),
            dst.parse::<std::net::IpAddr>().unwrap(),
        ));
    }
    assert_eq!(r.ingest(TOKEN, &batch("s1", events)).await.status(), 200);
    let s = r.admin().await;
    let filters = [
        "10.0.0.1",
        "10.0.0.0/29",
        "10.0.0.0/24",
        "10.0.0.0/23",
        "10.0.0.0/16",
        "10.0.0.0/8",
        "0.0.0.0/0",
        "192.0.2.7/32",
        "2001:db8::1",
        "2001:db8::/64",
        "2001:db8::/48",
        "2001:db8::/32",
        "2001:db8::/31",
        "::/0",
        "::/48",
        "::1",
        "::/96",
        "fe80::/10",
    ];
    for f in filters {
        let net: ipnet::IpNet = f.parse().unwrap_or_else(|_| {
            let ip: std::net::IpAddr = f.parse().unwrap();
            ipnet::IpNet::from(ip)
        });
        for side in ["src", "dst", "ip"] {
            let p = s
                .get_json(&format!(
                    "/api/v1/events?from={DAY0}&to={}&{side}={}&limit=1000",
                    DAY0 + 86_400_000_000,
                    f.replace('/', "%2F")
                ))
                .await;
            let mut got: Vec<String> = p["events"]
                .as_array()
                .unwrap_or_else(|| panic!("{side}={f}: {p}"))
                .iter()
                .map(|e| e["event"]["id"].as_str().unwrap().to_string())
                .collect();
            got.sort();
            // IPv4 is stored mapped into ::ffff:0:0/96, so an IPv6 network covering that
            // (::/0, ::/96) covers IPv4 too.
            let contains = |a: &std::net::IpAddr| match (net, a) {
                (ipnet::IpNet::V6(n), std::net::IpAddr::V4(v4)) => n.contains(&v4.to_ipv6_mapped()),
                _ => net.contains(a),
            };
            let mut want: Vec<String> = pairs
                .iter()
                .filter(|(_, a, b)| match side {
                    "src" => contains(a),
                    "dst" => contains(b),
                    _ => contains(a) || contains(b),
                })
                .map(|(i, _, _)| format!("{i:032x}"))
                .collect();
            want.sort();
            assert_eq!(got, want, "{side}={f}");
        }
    }
}

/// Free text (`q`) looks in the addresses, trail, feed info and protocol context, with
/// the same answer before and after the writer has indexed the text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_text_finds_protocol_context_before_and_after_indexing() {
    use spoor_core::{Context, DnsContext, HttpContext};
    let r = start().await;
    let mut events = Vec::new();
    for i in 0..60u128 {
        let mut e = event(
            i + 1,
            "s1",
            &format!("10.0.2.{i}"),
            "203.0.113.1",
            &format!("t{}.example", i % 4),
            Severity::Low,
            DAY0 + (i as i64) * MIN,
        );
        if i % 3 == 0 {
            e.context = Context {
                http: Some(HttpContext {
                    method: "GET".into(),
                    host: format!("t{}.example", i % 4),
                    uri: format!("/gate.php?bot={i}"),
                    user_agent: Some("Mozilla/5.0 (EvilBot)".into()),
                    xff: None,
                }),
                ..Context::default()
            };
        } else if i % 3 == 1 {
            e.kind = EventKind::Dns;
            e.context = Context {
                dns: Some(DnsContext {
                    qname: format!("c2-{i}.t{}.example", i % 4),
                    qtype: "TXT".into(),
                    rcode: Some("NXDOMAIN".into()),
                }),
                ..Context::default()
            };
        }
        events.push(e);
    }
    assert_eq!(r.ingest(TOKEN, &batch("s1", events)).await.status(), 200);
    let s = r.admin().await;
    // (query, the events i it must find, newest first)
    let cases: Vec<(&str, Vec<u128>)> = vec![
        ("evilbot", (0..60).rev().filter(|i| i % 3 == 0).collect()),
        ("gate.php?bot=3", vec![39, 36, 33, 30, 3]),
        ("nxdomain", (0..60).rev().filter(|i| i % 3 == 1).collect()),
        ("c2-7.t3", vec![7]),
        (
            "10.0.2.5",
            (0..60).rev().filter(|i| *i == 5 || *i / 10 == 5).collect(),
        ),
        ("t2.EXAMPLE", (0..60).rev().filter(|i| i % 4 == 2).collect()),
        ("emotet", vec![]),
    ];
    let ids = |p: serde_json::Value| -> Vec<String> {
        p["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    let check = |state: &'static str| {
        let (s, cases) = (&s, &cases);
        async move {
            for (q, want) in cases {
                let want: Vec<String> = want.iter().map(|i| format!("{:032x}", i + 1)).collect();
                let got = ids(s
                    .get_json(&format!("/api/v1/events?q={}&limit=1000", urlencode(q)))
                    .await);
                assert_eq!(got, want, "q={q} ({state})");
            }
        }
    };
    check("just stored").await;
    // The writer indexes once ingest pauses.
    let store = r.server.store().clone();
    for _ in 0..100 {
        if store.read(spoor_server::store::text::behind).await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        store.read(spoor_server::store::text::behind).await.unwrap(),
        0
    );
    check("indexed").await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
