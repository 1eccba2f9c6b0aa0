//! Events as JSON lines that tools reading Suricata's EVE log accept.
//!
//! Names follow EVE's `alert` records where EVE has a name for the fact; everything EVE has
//! no place for sits under `spoor`, so nothing is lost and nothing is renamed later.
//!
//! | JSON | from the event | note |
//! |---|---|---|
//! | `timestamp` | `time` | packet time, UTC, `2023-11-14T22:13:20.123456+0000` |
//! | `event_type` | — | always `"alert"` |
//! | `src_ip`, `src_port` | `src`, `src_port` | port left out when unknown; IPv6 in RFC 5952 form |
//! | `dest_ip`, `dest_port` | `dst`, `dst_port` | |
//! | `proto` | `proto` | `TCP`, `UDP`, `ICMP`, `IPV6-ICMP`, ... |
//! | `app_proto` | context | `dns`, `http` or `tls` when the event has that context |
//! | `host` | `sensor` | EVE's sensor name |
//! | `alert.action` | — | always `"allowed"`: the sensor only watches |
//! | `alert.signature` | `info` | `emotet (malware)` |
//! | `alert.category` | `kind` | `dns`, `ip_port`, `heuristic`, ... |
//! | `alert.severity` | `severity` | 1 high, 2 medium, 3 low (Suricata's scale) |
//! | `alert.metadata` | | EVE's `{key: [values]}`: `trail`, `reference`, `kind`, `severity` |
//! | `dns.query[]` | `context.dns` | `{rrname, rrtype}` |
//! | `dns.answers[]` | `answers` | `{rrname, rrtype: A/AAAA, rdata}` |
//! | `dns.rcode` | `context.dns.rcode` | |
//! | `http.hostname`, `http.url`, `http.http_method`, `http.http_user_agent`, `http.xff` | `context.http` | |
//! | `tls.sni`, `tls.ja4`, `tls.ja3.hash`, `tls.fingerprint` | `context.tls` | fingerprint: the certificate SHA-1 |
//! | `spoor.heuristic.{name, reason}` | `context.heuristic` | which heuristic fired and its evidence; also `alert.metadata.heuristic` |
//! | `spoor.{id, kind, trail, info, reference, severity, offender, answers, count, first_seen, last_seen, sensor}` | the event | times as EVE timestamps |

use std::net::IpAddr;

use serde_json::{Map, Value, json};
use spoor_core::{Event, Micros, Severity};

use super::time::UtcTime;

/// Suricata's alert severity: 1 is the most severe.
pub fn eve_severity(severity: Severity) -> u8 {
    match severity {
        Severity::High => 1,
        Severity::Medium => 2,
        Severity::Low => 3,
    }
}

fn timestamp(t: Micros) -> String {
    UtcTime::from_micros(t).eve()
}

/// The EVE-style JSON object for `event`.
pub fn to_value(event: &Event) -> Value {
    let mut root = Map::new();
    root.insert("timestamp".into(), timestamp(event.time).into());
    root.insert("event_type".into(), "alert".into());
    root.insert("src_ip".into(), event.src.to_string().into());
    if let Some(p) = event.src_port {
        root.insert("src_port".into(), p.into());
    }
    root.insert("dest_ip".into(), event.dst.to_string().into());
    if let Some(p) = event.dst_port {
        root.insert("dest_port".into(), p.into());
    }
    root.insert("proto".into(), event.proto.name().into());
    let ctx = &event.context;
    let app_proto = if ctx.http.is_some() {
        Some("http")
    } else if ctx.tls.is_some() {
        Some("tls")
    } else if ctx.dns.is_some() {
        Some("dns")
    } else {
        None
    };
    if let Some(app) = app_proto {
        root.insert("app_proto".into(), app.into());
    }
    root.insert("host".into(), event.sensor.clone().into());
    root.insert(
        "alert".into(),
        json!({
            "action": "allowed",
            "signature": event.info,
            "category": event.kind.as_str(),
            "severity": eve_severity(event.severity),
            "metadata": {
                "trail": [event.trail],
                "reference": [event.reference],
                "kind": [event.kind.as_str()],
                "severity": [event.severity.as_str()],
            },
        }),
    );

    if ctx.dns.is_some() || !event.answers.is_empty() {
        let mut dns = Map::new();
        let rrname = ctx.dns.as_ref().map(|d| d.qname.as_str());
        if let Some(d) = &ctx.dns {
            dns.insert(
                "query".into(),
                json!([{ "rrname": d.qname, "rrtype": d.qtype }]),
            );
            if let Some(rcode) = &d.rcode {
                dns.insert("rcode".into(), rcode.clone().into());
            }
        }
        if !event.answers.is_empty() {
            let answers: Vec<Value> = event
                .answers
                .iter()
                .map(|a| {
                    let rrtype = if matches!(a, IpAddr::V4(_)) {
                        "A"
                    } else {
                        "AAAA"
                    };
                    let mut answer = json!({ "rrtype": rrtype, "rdata": a.to_string() });
                    if let Some(name) = rrname {
                        answer["rrname"] = name.into();
                    }
                    answer
                })
                .collect();
            dns.insert("answers".into(), answers.into());
        }
        root.insert("dns".into(), dns.into());
    }
    if let Some(h) = &ctx.http {
        let mut http = json!({
            "hostname": h.host,
            "url": h.uri,
            "http_method": h.method,
        });
        if let Some(ua) = &h.user_agent {
            http["http_user_agent"] = ua.clone().into();
        }
        if let Some(xff) = &h.xff {
            http["xff"] = xff.clone().into();
        }
        root.insert("http".into(), http);
    }
    if let Some(t) = &ctx.tls {
        let mut tls = Map::new();
        if let Some(sni) = &t.sni {
            tls.insert("sni".into(), sni.clone().into());
        }
        if let Some(ja4) = &t.ja4 {
            tls.insert("ja4".into(), ja4.clone().into());
        }
        if let Some(ja3) = &t.ja3 {
            tls.insert("ja3".into(), json!({ "hash": ja3 }));
        }
        if let Some(sha1) = &t.cert_sha1 {
            tls.insert("fingerprint".into(), sha1.clone().into());
        }
        root.insert("tls".into(), tls.into());
    }

    let mut spoor = json!({
        "id": event.id.to_string(),
        "kind": event.kind.as_str(),
        "trail": event.trail,
        "info": event.info,
        "reference": event.reference,
        "severity": event.severity.as_str(),
        "count": event.count,
        "first_seen": timestamp(event.first_seen),
        "last_seen": timestamp(event.last_seen),
        "sensor": event.sensor,
    });
    if let Some(offender) = event.offender {
        spoor["offender"] = offender.to_string().into();
    }
    if let Some(h) = &ctx.heuristic {
        spoor["heuristic"] = json!({ "name": h.name, "reason": h.reason });
    }
    if !event.answers.is_empty() {
        spoor["answers"] = event
            .answers
            .iter()
            .map(|a| Value::from(a.to_string()))
            .collect::<Vec<_>>()
            .into();
    }
    let mut root = Value::Object(root);
    if let Some(h) = &ctx.heuristic {
        root["alert"]["metadata"]["heuristic"] = json!([h.name]);
    }
    root["spoor"] = spoor;
    root
}

/// One JSON line (without the newline).
pub fn render_line(event: &Event) -> String {
    to_value(event).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::test_support::dns_event;
    use spoor_core::{Context, HttpContext, TlsContext};

    #[test]
    fn heuristic_events_carry_their_name_and_reason() {
        let mut e = dns_event();
        e.kind = spoor_core::EventKind::Heuristic;
        e.context.heuristic = Some(spoor_core::HeuristicContext {
            name: "nxdomain".into(),
            reason: "21 distinct names answered NXDOMAIN".into(),
        });
        let v: Value = serde_json::from_str(&render_line(&e)).unwrap();
        assert_eq!(v["spoor"]["heuristic"]["name"], "nxdomain");
        assert_eq!(
            v["spoor"]["heuristic"]["reason"],
            "21 distinct names answered NXDOMAIN"
        );
        assert_eq!(v["alert"]["metadata"]["heuristic"][0], "nxdomain");
        assert_eq!(v["alert"]["category"], "heuristic");
    }

    #[test]
    fn dns_event_has_eve_names() {
        let line = render_line(&dns_event());
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20.123456+0000");
        assert_eq!(v["event_type"], "alert");
        assert_eq!(v["src_ip"], "10.0.0.5");
        assert_eq!(v["src_port"], 50000);
        assert_eq!(v["dest_ip"], "8.8.8.8");
        assert_eq!(v["dest_port"], 53);
        assert_eq!(v["proto"], "UDP");
        assert_eq!(v["app_proto"], "dns");
        assert_eq!(v["alert"]["signature"], "malware (test)");
        assert_eq!(v["alert"]["category"], "dns");
        assert_eq!(v["alert"]["severity"], 1);
        assert_eq!(v["alert"]["metadata"]["trail"][0], "evil.com");
        assert_eq!(v["alert"]["metadata"]["reference"][0], "(static)");
        assert_eq!(v["dns"]["query"][0]["rrname"], "www.evil.com");
        assert_eq!(v["dns"]["query"][0]["rrtype"], "A");
        assert_eq!(v["dns"]["answers"][0]["rdata"], "203.0.113.9");
        assert_eq!(v["dns"]["answers"][0]["rrtype"], "A");
        assert_eq!(v["dns"]["rcode"], "NOERROR");
        let s = &v["spoor"];
        assert_eq!(s["id"], "0123456789abcdef0011223344556677");
        assert_eq!(s["kind"], "dns");
        assert_eq!(s["trail"], "evil.com");
        assert_eq!(s["offender"], "10.0.0.5");
        assert_eq!(s["answers"][0], "203.0.113.9");
        assert_eq!(s["count"], 3);
        assert_eq!(s["first_seen"], "2023-11-14T22:13:20.123456+0000");
        assert_eq!(s["last_seen"], "2023-11-14T22:14:20.000000+0000");
        assert_eq!(s["sensor"], "sensor1");
        assert!(v.get("http").is_none() && v.get("tls").is_none());
    }

    #[test]
    fn http_and_tls_context() {
        let mut e = dns_event();
        e.src_port = None;
        e.answers.clear();
        e.offender = None;
        e.severity = Severity::Low;
        e.context = Context {
            http: Some(HttpContext {
                method: "GET".into(),
                host: "host.example".into(),
                uri: "/a?b=\"c\"".into(),
                user_agent: Some("curl/8".into()),
                xff: None,
            }),
            tls: Some(TlsContext {
                sni: Some("sni.example".into()),
                ja4: Some("t13d1516h2_8daaf6152771_b186095e22b6".into()),
                ja3: Some("e7d705a3286e19ea42f587b344ee6865".into()),
                cert_sha1: None,
            }),
            dns: None,
            heuristic: None,
        };
        let v: Value = serde_json::from_str(&render_line(&e)).unwrap();
        assert!(v.get("src_port").is_none());
        assert!(v.get("dns").is_none());
        assert_eq!(v["app_proto"], "http");
        assert_eq!(v["alert"]["severity"], 3);
        assert_eq!(v["http"]["hostname"], "host.example");
        assert_eq!(v["http"]["url"], "/a?b=\"c\"");
        assert_eq!(v["http"]["http_method"], "GET");
        assert_eq!(v["http"]["http_user_agent"], "curl/8");
        assert_eq!(v["tls"]["sni"], "sni.example");
        assert_eq!(v["tls"]["ja4"], "t13d1516h2_8daaf6152771_b186095e22b6");
        assert_eq!(v["tls"]["ja3"]["hash"], "e7d705a3286e19ea42f587b344ee6865");
        assert!(v["spoor"].get("offender").is_none());
        assert!(v["spoor"].get("answers").is_none());
    }
}
