//! One datagram per event: syslog/CEF to a syslog server (RFC 5426), or JSON to a UDP
//! input (Logstash `udp` with `codec => json`).
//!
//! Sending a datagram does not wait on the receiver, so this sink writes from the caller's
//! thread. An event larger than [`UdpConfig::max_datagram`] is dropped and counted rather
//! than truncated (a truncated JSON or CEF line would mislead the receiver). The address
//! is resolved once, when the sink is made; a receiver that is down shows up as counted
//! send errors (ICMP port unreachable) and needs no reconnect.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};

use serde::Deserialize;
use spoor_core::Event;

use super::encoder::{Encoder, Format};
use super::syslog::SyslogConfig;
use super::{EventSink, OutputError};

/// Default largest datagram: fits common syslog receivers and avoids most IP fragmentation
/// trouble on paths with a 9000-byte MTU while holding any normal event.
pub const DEFAULT_MAX_DATAGRAM: usize = 8192;
/// The largest UDP payload over IPv4.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

fn default_max_datagram() -> usize {
    DEFAULT_MAX_DATAGRAM
}

/// `[[output.udp]]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpConfig {
    /// `host:port` of the receiver.
    pub address: String,
    /// `json` (default), `cef` or `maltrail`.
    #[serde(default)]
    pub format: Format,
    /// Write a syslog header in front of each event (for syslog/CEF receivers).
    #[serde(default)]
    pub syslog: Option<SyslogConfig>,
    /// Largest datagram in bytes (default 8192, at most 65507); larger events are dropped.
    #[serde(default = "default_max_datagram")]
    pub max_datagram: usize,
}

impl UdpConfig {
    pub fn new(address: impl Into<String>, format: Format) -> UdpConfig {
        UdpConfig {
            address: address.into(),
            format,
            syslog: None,
            max_datagram: DEFAULT_MAX_DATAGRAM,
        }
    }
}

/// Sends each event as one datagram.
#[derive(Debug)]
pub struct UdpSink {
    name: String,
    encoder: Encoder,
    socket: UdpSocket,
    target: SocketAddr,
    max_datagram: usize,
}

impl UdpSink {
    pub fn new(config: UdpConfig) -> Result<UdpSink, OutputError> {
        let what = format!("resolving {}", config.address);
        let target = config
            .address
            .to_socket_addrs()
            .map_err(|e| OutputError::io(what.clone(), e))?
            .next()
            .ok_or_else(|| OutputError::io(what, std::io::ErrorKind::NotFound.into()))?;
        let local: SocketAddr = if target.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)
            .and_then(|s| s.connect(target).map(|()| s))
            .map_err(|e| OutputError::io(format!("UDP socket to {target}"), e))?;
        Ok(UdpSink {
            name: format!("{:?}-udp", config.format).to_lowercase(),
            encoder: Encoder::new(config.format, config.syslog),
            socket,
            target,
            max_datagram: config.max_datagram.clamp(1, MAX_UDP_PAYLOAD),
        })
    }
}

impl EventSink for UdpSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn emit(&mut self, event: &Event) -> Result<(), OutputError> {
        let message = self.encoder.encode(event);
        if message.len() > self.max_datagram {
            return Err(OutputError::Oversize {
                len: message.len(),
                max: self.max_datagram,
            });
        }
        self.socket
            .send(message.as_bytes())
            .map(|_| ())
            .map_err(|e| OutputError::io(format!("sending to {}", self.target), e))
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::test_support::dns_event;
    use crate::output::{Outputs, SyslogRfc};
    use std::time::Duration;

    fn receiver() -> (UdpSocket, String) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let address = socket.local_addr().unwrap().to_string();
        (socket, address)
    }

    #[test]
    fn one_datagram_per_event() {
        let (rx, address) = receiver();
        let mut config = UdpConfig::new(address, Format::Cef);
        config.syslog = Some(SyslogConfig {
            rfc: SyslogRfc::Rfc3164,
            ..SyslogConfig::default()
        });
        let mut sink = UdpSink::new(config).unwrap();
        assert_eq!(sink.name(), "cef-udp");
        sink.emit(&dns_event()).unwrap();
        let mut buf = [0u8; 65_536];
        let n = rx.recv(&mut buf).unwrap();
        let datagram = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(
            datagram.starts_with("<130>Nov 14 22:13:20 sensor1 spoor: CEF:0|Spoor|"),
            "{datagram}"
        );
        assert!(!datagram.ends_with('\n'));
    }

    #[test]
    fn oversize_events_are_dropped_and_counted() {
        let (rx, address) = receiver();
        let mut config = UdpConfig::new(address, Format::Json);
        config.max_datagram = 100;
        let mut outputs = Outputs::new();
        outputs.add(Box::new(UdpSink::new(config).unwrap()));
        outputs.emit(&dns_event());
        let report = &outputs.reports()[0];
        assert_eq!((report.stats.emitted, report.stats.failed), (0, 1));
        rx.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        assert!(rx.recv(&mut [0u8; 1024]).is_err(), "nothing was sent");
    }

    #[test]
    fn a_closed_receiver_is_a_counted_failure() {
        let (rx, address) = receiver();
        drop(rx);
        let mut outputs = Outputs::new();
        outputs.add(Box::new(
            UdpSink::new(UdpConfig::new(address, Format::Json)).unwrap(),
        ));
        // The first send may succeed; the port-unreachable reply fails a later one.
        for _ in 0..5 {
            outputs.emit(&dns_event());
            std::thread::sleep(Duration::from_millis(20));
        }
        let report = &outputs.reports()[0];
        assert_eq!(report.stats.emitted + report.stats.failed, 5);
        assert!(report.stats.failed >= 1, "{report}");
    }
}
