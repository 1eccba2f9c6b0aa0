//! Heuristics: what blacklists miss.
//!
//! The stateless content heuristics are pure functions of one message: `http`
//! (suspicious requests), `ua` (user agents), `response` (suspicious HTTP responses) and
//! `answers` (sinkholed and parked DNS answers), named and switched in `content`, with
//! `unquote` decoding URLs before they are matched.

pub mod answers;
pub mod content;
pub mod http;
pub mod response;
pub mod ua;
pub mod unquote;
