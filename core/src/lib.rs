//! Spoor's shared vocabulary.
//!
//! Every other crate speaks in these types: what an indicator is ([`Indicator`],
//! [`TrailKind`]), how bad a hit is ([`Severity`]), how addresses and domain names are
//! normalised before they are compared, the [`Event`] every stage passes on, and the small
//! config primitives (durations, byte sizes) that every config section uses. Nothing here
//! does I/O. With the `tls-pin` feature, [`pin`]: the certificate pinning the server's
//! HTTPS clients (sensor shipper, agent) share.

pub mod config;
pub mod event;
pub mod indicator;
#[cfg(feature = "tls-pin")]
pub mod pin;
pub mod severity;
pub mod units;
pub mod wire;

pub use config::{ConfigError, KeyPath};
pub use event::{
    Context, DnsContext, Event, EventId, EventKind, HeuristicContext, HttpContext, Micros, Proto,
    TlsContext,
};
pub use indicator::{Indicator, IndicatorError, TrailKind, normalize_domain};
pub use severity::Severity;
pub use units::{ByteSize, Duration, UnitError};
pub use wire::{BatchAck, EventBatch, SensorStatus};
