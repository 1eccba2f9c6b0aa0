//! The server a `[[sensor.output]] type = "server"` ships to: reachable with the
//! shipper's TLS settings, the token accepted, the clocks agreeing.

use spoor_core::{
    Context as EventContext, Event, EventBatch, EventId, EventKind, Micros, Proto, SensorStatus,
    Severity,
};

use super::*;

/// The probe: a batch under this sensor's name holding one event with `count = 0`. The
/// server checks, in this order (server/src/api/ingest.rs): the token (401), the batch's
/// sensor name against the token (403 `sensor_mismatch`), then each event; `count = 0` is
/// refused (422) before anything is stored. So 422 means "token accepted, name right",
/// and the server's data and the sensor's status on the dashboard stay untouched.
pub(crate) fn probe_batch(sensor: &str, now: Micros) -> EventBatch {
    let unspecified = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
    EventBatch {
        status: SensorStatus {
            name: sensor.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..SensorStatus::default()
        },
        events: vec![Event {
            id: EventId(0),
            time: now,
            sensor: sensor.to_string(),
            src: unspecified,
            src_port: None,
            dst: unspecified,
            dst_port: None,
            proto: Proto::TCP,
            kind: EventKind::Ip,
            trail: "spoor-doctor-probe".to_string(),
            info: "spoor doctor probe (never stored: count 0)".to_string(),
            reference: "(doctor)".to_string(),
            severity: Severity::Low,
            offender: None,
            answers: Vec::new(),
            count: 0,
            first_seen: now,
            last_seen: now,
            context: EventContext::default(),
        }],
    }
}

/// What the probe's answer means.
pub(crate) fn token_finding(url: &str, status: u16, body: &str, sensor: &str) -> Finding {
    let f = Finding::new(Level::Ok, "server", url, "sensor token accepted");
    let quote: String = body.chars().take(ANSWER_QUOTE).collect();
    match status {
        422 => f.detail(format!(
            "token accepted for sensor `{sensor}` (the probe event was refused as intended, nothing stored)"
        )),
        401 => f
            .with_level(Level::Fail)
            .detail(format!("the server does not know this token (401): {quote}"))
            .fix(format!(
                "on the server, register it: [[server.sensor]] name = \"{sensor}\" with token_file (or token_sha256 = the output of `printf %s TOKEN | sha256sum`), restart the server; check the sensor's token_file holds that token"
            )),
        403 => f
            .with_level(Level::Fail)
            .detail(format!(
                "the token belongs to another sensor (403): {quote}"
            ))
            .fix(format!(
                "set [sensor] name to the name the server gives this token, or register a token for `{sensor}` in [[server.sensor]]"
            )),
        200..=299 => f
            .with_level(Level::Warn)
            .detail(format!(
                "token accepted, but the server stored a probe event with count 0 ({status}): it does not check events as this version expects"
            ))
            .fix("run the same Spoor version on sensor and server"),
        404 => f
            .with_level(Level::Fail)
            .detail(format!("no ingest endpoint there (404): {quote}"))
            .fix("point url at the Spoor server's base URL (events go to <url>/api/v1/events)"),
        _ => f
            .with_level(Level::Fail)
            .detail(format!("unexpected answer {status}: {quote}"))
            .fix("check the server's log (spoor server) for this request"),
    }
}

/// Clock difference to the server from its `Date` header.
pub(crate) fn skew_finding(url: &str, server: SystemTime, local: SystemTime) -> Finding {
    let (skew, word) = match local.duration_since(server) {
        Ok(d) => (d, "ahead of"),
        Err(e) => (e.duration(), "behind"),
    };
    let f = Finding::new(Level::Ok, "clock", url, "clock agrees with the server");
    if skew > MAX_CLOCK_SKEW {
        f.with_level(Level::Warn)
            .detail(format!(
                "this host's clock is {} {word} the server's (more than {}s)",
                age_text(skew),
                MAX_CLOCK_SKEW.as_secs()
            ))
            .fix(format!("{} (on both hosts)", clock_fix()))
    } else {
        f.detail(format!("within {}s", MAX_CLOCK_SKEW.as_secs()))
    }
}

fn http_client(s: &ShipperConfig) -> Result<reqwest::blocking::Client, (String, String)> {
    let timeout = s.timeout.as_std().min(PROBE_TIMEOUT);
    let mut builder = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("spoor-doctor/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pin) = &s.pin_sha256 {
        let pin = spoor_sensor::output::pin::parse_fingerprint(pin)
            .map_err(|e| (format!("pin_sha256: {e}"), "correct pin_sha256".to_string()))?;
        let tls = spoor_sensor::output::pin::pinned_client_config(pin).map_err(|e| {
            (
                format!("TLS setup: {e}"),
                "report this as a bug".to_string(),
            )
        })?;
        builder = builder.tls_backend_preconfigured(tls);
    } else if let Some(ca) = &s.ca_file {
        let fix =
            "ca_file must be a readable PEM file with the CA that signed the server's certificate"
                .to_string();
        let pem = std::fs::read(ca).map_err(|e| {
            (
                format!("reading ca_file {}: {e}", ca.display()),
                fix.clone(),
            )
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| (format!("ca_file {}: {e}", ca.display()), fix.clone()))?;
        if certs.is_empty() {
            return Err((
                format!("ca_file {} holds no PEM certificate", ca.display()),
                fix,
            ));
        }
        builder = builder.tls_certs_only(certs);
    }
    builder
        .build()
        .map_err(|e| (describe(&e), "report this as a bug".to_string()))
}

fn server_start_fix() -> &'static str {
    if cfg!(target_os = "freebsd") {
        "start the server (`service spoor_server start`), check [server] listen on it and this url, and that pf passes the port"
    } else {
        "start the server (`systemctl start spoor-server`), check [server] listen on it and this url, and that the firewall passes the port"
    }
}

pub(super) fn check_server(
    s: &ShipperConfig,
    sensor: &str,
    now: SystemTime,
    out: &mut Vec<Finding>,
) {
    let Ok(endpoint) = spoor_sensor::output::shipper::endpoint(&s.url) else {
        // The config check refuses such a URL; nothing to probe.
        return;
    };
    let subject = s.url.clone();
    let token = match std::fs::read_to_string(&s.token_file) {
        Ok(t) if !t.trim().is_empty() && !t.trim().contains(char::is_whitespace) => {
            t.trim().to_string()
        }
        Ok(_) => {
            out.push(
                Finding::new(Level::Fail, "server", subject, "sensor token readable")
                    .detail(format!(
                        "{} must hold one token on one line",
                        s.token_file.display()
                    ))
                    .fix("write the token the server made for this sensor into token_file"),
            );
            return;
        }
        Err(e) => {
            out.push(
                Finding::new(Level::Fail, "server", subject, "sensor token readable")
                    .detail(format!("reading {}: {e}", s.token_file.display()))
                    .fix("create token_file with the sensor's token (readable by [sensor] user), or correct [[sensor.output]] token_file"),
            );
            return;
        }
    };
    let client = match http_client(s) {
        Ok(c) => c,
        Err((detail, fix)) => {
            out.push(
                Finding::new(Level::Fail, "server", subject, "server reachable")
                    .detail(detail)
                    .fix(fix),
            );
            return;
        }
    };
    let now_micros = Micros(
        i64::try_from(
            now.duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_micros(),
        )
        .unwrap_or(i64::MAX),
    );
    let body = serde_json::to_vec(&probe_batch(sensor, now_micros)).unwrap_or_default();
    let answer = client
        .post(&endpoint)
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(body)
        .send();
    let response = match answer {
        Ok(r) => r,
        Err(e) => {
            let text = describe(&e);
            let lower = text.to_ascii_lowercase();
            let f = Finding::new(Level::Fail, "server", subject, "server reachable");
            out.push(if lower.contains("certificate") || lower.contains("fingerprint") {
                f.detail(format!("TLS: the server's certificate is not trusted: {text}"))
                    .fix(if s.pin_sha256.is_some() {
                        "set pin_sha256 to the fingerprint `spoor server` logs at start (its self-signed certificate's SHA-256)"
                    } else {
                        "set ca_file to the CA that signed the server's certificate, or pin_sha256 to its fingerprint"
                    })
            } else {
                f.detail(format!("{endpoint}: {text}")).fix(server_start_fix())
            });
            return;
        }
    };
    out.push(
        Finding::new(Level::Ok, "server", subject.clone(), "server reachable").detail(format!(
            "{endpoint} answered{}",
            if s.url.starts_with("https://") {
                " over TLS (certificate trusted)"
            } else {
                ""
            }
        )),
    );
    let date = response
        .headers()
        .get("date")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    out.push(token_finding(&subject, status, &text, sensor));
    match date {
        Some(d) => out.push(skew_finding(&subject, d, SystemTime::now())),
        None => out.push(
            Finding::new(
                Level::Warn,
                "clock",
                subject,
                "clock agrees with the server",
            )
            .detail("the answer has no Date header; clocks not compared")
            .fix("check that url points at a Spoor server, not a proxy that strips headers"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3600;

    #[test]
    fn the_probe_is_refused_by_the_servers_event_check() {
        let b = probe_batch("fw1", Micros(1_800_000_000_000_000));
        assert_eq!(b.status.name, "fw1");
        assert_eq!(b.events.len(), 1);
        assert_eq!(b.events[0].count, 0);
        assert_eq!(b.events[0].sensor, "fw1");
        // It is a valid wire batch (the server must parse it to reach the name check).
        let json = serde_json::to_string(&b).unwrap();
        let back: EventBatch = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn probe_answers_map_to_findings() {
        assert_eq!(token_finding("u", 422, "", "fw1").level, Level::Ok);
        let unknown = token_finding("u", 401, "unknown sensor token", "fw1");
        assert_eq!(unknown.level, Level::Fail);
        assert!(
            unknown
                .fix
                .unwrap()
                .contains("[[server.sensor]] name = \"fw1\"")
        );
        let other = token_finding("u", 403, "sensor_mismatch", "fw1");
        assert_eq!(other.level, Level::Fail);
        assert!(other.fix.unwrap().contains("[sensor] name"));
        assert_eq!(token_finding("u", 200, "", "fw1").level, Level::Warn);
        assert_eq!(token_finding("u", 404, "", "fw1").level, Level::Fail);
        assert_eq!(token_finding("u", 500, "", "fw1").level, Level::Fail);
    }

    #[test]
    fn clock_skew_warns_past_the_constant_either_way() {
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(skew_finding("u", t, t + MAX_CLOCK_SKEW).level, Level::Ok);
        let ahead = skew_finding("u", t, t + MAX_CLOCK_SKEW + Duration::from_secs(1));
        assert_eq!(ahead.level, Level::Warn);
        assert!(ahead.detail.contains("ahead of"));
        let behind = skew_finding("u", t + Duration::from_secs(3 * HOUR), t);
        assert_eq!(behind.level, Level::Warn);
        assert!(behind.detail.contains("3h 0m behind"), "{}", behind.detail);
    }
}
