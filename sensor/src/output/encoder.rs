//! Which text a sink writes for an event: one [`Format`], optionally wrapped in syslog.

use serde::Deserialize;
use spoor_core::Event;

use super::syslog::SyslogConfig;
use super::{cef, json, maltrail};

/// The renderings an event has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Maltrail's event line (byte-compatible).
    Maltrail,
    /// EVE-compatible JSON (see [`json`]).
    #[default]
    Json,
    /// ArcSight CEF (see [`cef`]).
    Cef,
}

/// A format plus an optional syslog header: what one sink writes per event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoder {
    pub format: Format,
    pub syslog: Option<SyslogConfig>,
}

impl Encoder {
    pub fn new(format: Format, syslog: Option<SyslogConfig>) -> Encoder {
        Encoder { format, syslog }
    }

    /// The event as one line of text, without line terminator or transport framing.
    pub fn encode(&self, event: &Event) -> String {
        let message = match self.format {
            Format::Maltrail => maltrail::render_line(event),
            Format::Json => json::render_line(event),
            Format::Cef => cef::render(event),
        };
        match &self.syslog {
            Some(syslog) => syslog.wrap(event, &message),
            None => message,
        }
    }
}
