//! The sensor: packets in, events out.
//!
//! `decode` turns link-layer frames into network/transport facts (never panicking, every
//! bad packet counted by reason), `proto` parses DNS, HTTP and TLS from payloads, `output`
//! renders and ships events, `generator` writes deterministic benchmark captures.

/// Rendering events (Maltrail's event line, EVE-style JSON, CEF over syslog) and shipping
/// them to daily log files, files, TCP and UDP collectors through one [`output::Outputs`]
/// fan-out that counts every sink's failures and never lets one stop the sensor.
pub mod output;
