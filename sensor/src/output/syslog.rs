//! Syslog headers around a rendered message (normally CEF): RFC 5424 by default, the older
//! BSD format of RFC 3164 by option. Transport framing (octet counting or newlines over
//! TCP, one datagram over UDP) belongs to the sink, not here.
//!
//! ```text
//! RFC 5424: <130>1 2023-11-14T22:13:20.123456Z sensor1 spoor - - - CEF:0|...
//! RFC 3164: <130>Nov 14 22:13:20 sensor1 spoor: CEF:0|...
//! ```
//!
//! The timestamp is the event's packet time in UTC; the host name is the event's sensor
//! name unless the config names one. Syslog severity follows the event's: high → 2
//! (critical), medium → 4 (warning), low → 5 (notice).

use serde::Deserialize;
use spoor_core::{Event, Severity};

use super::time::UtcTime;

/// Which syslog header to write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogRfc {
    /// `<PRI>1 TIMESTAMP HOST APP - - - MSG` (structured, with a year and microseconds).
    #[default]
    Rfc5424,
    /// `<PRI>Mmm dd hh:mm:ss HOST APP: MSG` (what older collectors expect).
    Rfc3164,
}

/// The syslog facility used when the config names none: `local0`.
pub const DEFAULT_FACILITY: u8 = 16;
/// The APP-NAME / TAG used when the config names none.
pub const DEFAULT_APP_NAME: &str = "spoor";

fn default_facility() -> u8 {
    DEFAULT_FACILITY
}

fn default_app_name() -> String {
    DEFAULT_APP_NAME.to_owned()
}

/// How events are wrapped in syslog.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// Header format: `rfc5424` (default) or `rfc3164`.
    #[serde(default)]
    pub rfc: SyslogRfc,
    /// Facility number 0–23 (default 16, `local0`); larger values are clamped to 23.
    #[serde(default = "default_facility")]
    pub facility: u8,
    /// APP-NAME (RFC 5424) or TAG (RFC 3164); default `spoor`.
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// HOSTNAME; default: the event's sensor name.
    #[serde(default)]
    pub hostname: Option<String>,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig {
            rfc: SyslogRfc::default(),
            facility: DEFAULT_FACILITY,
            app_name: default_app_name(),
            hostname: None,
        }
    }
}

fn syslog_severity(severity: Severity) -> u8 {
    match severity {
        Severity::High => 2,
        Severity::Medium => 4,
        Severity::Low => 5,
    }
}

/// Syslog header fields may not contain spaces or control characters; `-` means "none".
fn header_token(s: &str, max: usize) -> String {
    let token: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if token.is_empty() { "-".into() } else { token }
}

impl SyslogConfig {
    /// `message` with this config's syslog header in front.
    pub fn wrap(&self, event: &Event, message: &str) -> String {
        let pri = u16::from(self.facility.min(23)) * 8 + u16::from(syslog_severity(event.severity));
        let time = UtcTime::from_micros(event.time);
        // RFC 5424 limits: HOSTNAME 255, APP-NAME 48 printable ASCII characters.
        let host = header_token(self.hostname.as_deref().unwrap_or(&event.sensor), 255);
        let app = header_token(&self.app_name, 48);
        match self.rfc {
            SyslogRfc::Rfc5424 => {
                format!("<{pri}>1 {} {host} {app} - - - {message}", time.rfc3339())
            }
            SyslogRfc::Rfc3164 => {
                format!("<{pri}>{} {host} {app}: {message}", time.bsd_syslog())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::test_support::dns_event;

    #[test]
    fn both_headers() {
        let e = dns_event();
        let rfc5424 = SyslogConfig::default();
        assert_eq!(
            rfc5424.wrap(&e, "CEF:0|x"),
            "<130>1 2023-11-14T22:13:20.123456Z sensor1 spoor - - - CEF:0|x"
        );
        let rfc3164 = SyslogConfig {
            rfc: SyslogRfc::Rfc3164,
            facility: 4,
            app_name: "my app".into(),
            hostname: Some("fw1".into()),
        };
        assert_eq!(
            rfc3164.wrap(&e, "CEF:0|x"),
            "<34>Nov 14 22:13:20 fw1 myapp: CEF:0|x"
        );
    }
}
