//! The sensor: packets in, events out.
//!
//! `capture` reads frames (live or from files), `decode` turns link-layer frames into
//! network/transport facts (never panicking, every bad packet counted by reason), `flow`
//! remembers which conversations were checked, `reassembly` joins the first bytes of a
//! direction when a message spans segments, `proto` parses DNS, HTTP, TLS and QUIC Initials
//! from payloads, `condense` folds repeats into counts, `output` renders and ships events,
//! `generator` writes deterministic benchmark captures.

pub mod capture;
pub mod condense;
pub mod config;
pub mod decode;
pub mod detect;
pub mod flow;
/// Deterministic benchmark captures: DNS, HTTP, TLS, UDP and ICMP conversations from a seed,
/// with a known share of listed indicators.
pub mod generator;
/// Heuristics: scans, DNS exhaustion, NXDOMAIN floods, DGA and long names (over bounded
/// state shared by the workers); suspicious requests, user agents, responses and DNS answers.
pub mod heuristics;
pub mod metrics;
/// Rendering events (Maltrail's event line, EVE-style JSON, CEF over syslog) and shipping
/// them to daily log files, files, TCP and UDP collectors through one [`output::Outputs`]
/// fan-out that counts every sink's failures and never lets one stop the sensor.
pub mod output;
pub mod pipeline;
pub mod privilege;
/// DNS, HTTP/1.x and TLS parsed from transport payloads: pure functions, no I/O.
pub mod proto;
/// Stream reassembly of the first bytes of a direction (HTTP request heads, TLS handshakes,
/// QUIC CRYPTO frames), bounded per stream and in total.
pub mod reassembly;
pub mod workers;
