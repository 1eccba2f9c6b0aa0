//! Query strings: percent-decoding, and the event filter every read endpoint shares.
//! Unknown parameters are refused (a typo must not silently widen a search).

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use spoor_core::{EventKind, Severity};

use super::ApiError;
use crate::store::search::EventFilter;
use crate::store::triage::TriageStatus;

/// `a=1&b=x%20y` → pairs, `+` as space.
pub fn parse(q: &str) -> Result<Vec<(String, String)>, ApiError> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

fn decode(s: &str) -> Result<String, ApiError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        ApiError::bad_request("bad_query", format!("bad percent-escape in `{s}`"))
                    })?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::bad_request("bad_query", "the query string is not UTF-8"))
}

/// The parameters of `m` as a map of lists; each value may also be a comma-separated
/// list. Keys not in `known` are an error.
pub fn params(
    pairs: Vec<(String, String)>,
    known: &[&str],
) -> Result<HashMap<String, Vec<String>>, ApiError> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in pairs {
        if !known.contains(&k.as_str()) {
            return Err(ApiError::bad_request(
                "unknown_parameter",
                format!("unknown parameter `{k}` (known: {})", known.join(", ")),
            ));
        }
        m.entry(k).or_default().push(v);
    }
    Ok(m)
}

fn list<'a>(m: &'a HashMap<String, Vec<String>>, k: &str) -> Vec<&'a str> {
    m.get(k)
        .into_iter()
        .flatten()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

pub fn one<'a>(m: &'a HashMap<String, Vec<String>>, k: &str) -> Result<Option<&'a str>, ApiError> {
    match m.get(k).map(Vec::as_slice) {
        None | Some([]) => Ok(None),
        Some([v]) => Ok(Some(v.as_str())),
        Some(_) => Err(ApiError::bad_request(
            "bad_parameter",
            format!("`{k}` given more than once"),
        )),
    }
}

pub fn number(m: &HashMap<String, Vec<String>>, k: &str) -> Result<Option<i64>, ApiError> {
    one(m, k)?
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                ApiError::bad_request("bad_parameter", format!("`{k}={v}` is not a whole number"))
            })
        })
        .transpose()
}

fn boolean(m: &HashMap<String, Vec<String>>, k: &str) -> Result<bool, ApiError> {
    match one(m, k)? {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(v) => Err(ApiError::bad_request(
            "bad_parameter",
            format!("`{k}={v}`: use true or false"),
        )),
    }
}

/// An address or a CIDR.
pub fn net(k: &str, v: &str) -> Result<IpNet, ApiError> {
    if let Ok(n) = v.parse::<IpNet>() {
        return Ok(n.trunc());
    }
    v.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        ApiError::bad_request(
            "bad_parameter",
            format!("`{k}={v}` is not an IP address or CIDR"),
        )
    })
}

/// Parameters of the event filter.
pub const FILTER_KEYS: &[&str] = &[
    "from",
    "to",
    "sensor",
    "severity",
    "kind",
    "ip",
    "src",
    "dst",
    "trail",
    "q",
    "status",
    "include_suppressed",
    "include_hidden",
];

pub fn filter(m: &HashMap<String, Vec<String>>) -> Result<EventFilter, ApiError> {
    let bad = |k: &str, v: &str, what: &str| {
        ApiError::bad_request("bad_parameter", format!("`{k}={v}`: {what}"))
    };
    let mut f = EventFilter {
        from: number(m, "from")?,
        to: number(m, "to")?,
        ..EventFilter::default()
    };
    if let (Some(a), Some(b)) = (f.from, f.to)
        && b <= a
    {
        return Err(ApiError::bad_request(
            "bad_parameter",
            "`to` must be after `from` (both in µs since the Unix epoch)",
        ));
    }
    f.sensors = list(m, "sensor").into_iter().map(String::from).collect();
    for v in list(m, "severity") {
        f.severities.push(match v {
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            _ => return Err(bad("severity", v, "use low, medium or high")),
        });
    }
    for v in list(m, "kind") {
        let k: EventKind = serde_json::from_value(serde_json::Value::String(v.to_string()))
            .map_err(|_| bad("kind", v, "not an event kind (ip, ip_port, cidr, dns, url, host, path, ua, sni, ja4, cert, heuristic)"))?;
        f.kinds.push(k);
    }
    for (k, out) in [("ip", &mut f.ip), ("src", &mut f.src), ("dst", &mut f.dst)] {
        for v in list(m, k) {
            out.push(net(k, v)?);
        }
    }
    f.trail = one(m, "trail")?.filter(|s| !s.is_empty()).map(String::from);
    f.text = one(m, "q")?.filter(|s| !s.is_empty()).map(String::from);
    f.status = one(m, "status")?
        .map(|v| {
            TriageStatus::parse(v)
                .ok_or_else(|| bad("status", v, "use new, investigating or resolved"))
        })
        .transpose()?;
    f.include_suppressed = boolean(m, "include_suppressed")?;
    f.include_hidden = boolean(m, "include_hidden")?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_refuse_what_they_do_not_know() {
        let pairs = parse("severity=high,medium&ip=10.0.0.0%2F8&q=a+b&kind=dns").unwrap();
        let m = params(pairs, FILTER_KEYS).unwrap();
        let f = filter(&m).unwrap();
        assert_eq!(f.severities, vec![Severity::High, Severity::Medium]);
        assert_eq!(f.ip, vec!["10.0.0.0/8".parse::<IpNet>().unwrap()]);
        assert_eq!(f.text.as_deref(), Some("a b"));
        assert_eq!(f.kinds, vec![EventKind::Dns]);
        assert!(params(parse("sevrity=high").unwrap(), FILTER_KEYS).is_err());
        let m = params(parse("ip=10.0.0.300").unwrap(), FILTER_KEYS).unwrap();
        assert!(filter(&m).is_err());
    }
}
