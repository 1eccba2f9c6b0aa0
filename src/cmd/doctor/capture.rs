//! Capture interfaces: present, up, running, promiscuous, and opened with libpcap the
//! way the sensor opens them (permission, link type, filter).

use std::collections::BTreeMap;
use std::ffi::CStr;

use spoor_sensor::config::SensorConfig;
use spoor_sensor::decode::LinkType;

use super::*;

/// Interface flags as `getifaddrs` reports them, by name.
fn interface_flags() -> std::io::Result<BTreeMap<String, u32>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; on success it is freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut flags = BTreeMap::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed; its
        // name is a NUL-terminated string that lives as long as the list.
        let (name, f, next) = unsafe {
            let node = &*cur;
            (
                CStr::from_ptr(node.ifa_name).to_string_lossy().into_owned(),
                node.ifa_flags,
                node.ifa_next,
            )
        };
        *flags.entry(name).or_insert(0) |= f;
        cur = next;
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(flags)
}

/// Bits of [`interface_flags`], as the platform defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IfState {
    pub(crate) up: bool,
    pub(crate) running: bool,
    pub(crate) promiscuous: bool,
}

impl IfState {
    fn from_flags(f: u32) -> IfState {
        let has = |bit: libc::c_int| f & (bit as u32) != 0;
        IfState {
            up: has(libc::IFF_UP),
            running: has(libc::IFF_RUNNING),
            promiscuous: has(libc::IFF_PROMISC),
        }
    }
}

fn up_command(iface: &str) -> String {
    if cfg!(target_os = "freebsd") {
        format!("ifconfig {iface} up (and ifconfig_{iface}=\"up\" in /etc/rc.conf)")
    } else {
        format!("ip link set dev {iface} up")
    }
}

fn promisc_command(iface: &str) -> String {
    if cfg!(target_os = "freebsd") {
        format!("ifconfig {iface} promisc")
    } else {
        format!("ip link set dev {iface} promisc on")
    }
}

fn capture_permission_fix() -> &'static str {
    if cfg!(target_os = "freebsd") {
        "start the sensor as root (it opens /dev/bpf, then switches to [sensor] user), or give its user read access to /dev/bpf through a devfs rule"
    } else {
        "start the sensor as root (dist/systemd/spoor-sensor.service does, with CAP_NET_RAW, and it switches to [sensor] user after opening), or give the binary the capabilities: `setcap cap_net_raw,cap_net_admin=eip /usr/local/bin/spoor`; run `spoor doctor` the same way the sensor runs"
    }
}

/// The findings about the interface state alone (separate from the capture so that the
/// logic is testable without interfaces).
pub(crate) fn state_findings(
    iface: &str,
    state: Option<IfState>,
    known: &[String],
    sensor_sets_promisc: bool,
) -> Vec<Finding> {
    let subject = iface.to_string();
    let Some(s) = state else {
        let list_cmd = if cfg!(target_os = "freebsd") {
            "ifconfig -l"
        } else {
            "ip -br link"
        };
        return vec![
            Finding::new(Level::Fail, "capture", subject, "interface exists")
                .detail(format!(
                    "no interface `{iface}` on this host (found: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
                .fix(format!(
                    "set [sensor] interfaces to existing interfaces (`{list_cmd}` lists them)"
                )),
        ];
    };
    let mut out = Vec::new();
    if s.up {
        out.push(
            Finding::new(Level::Ok, "capture", subject.clone(), "interface is up").detail("up"),
        );
        if s.running {
            out.push(
                Finding::new(Level::Ok, "capture", subject.clone(), "link is running")
                    .detail("running"),
            );
        } else {
            out.push(
                Finding::new(Level::Warn, "capture", subject.clone(), "link is running")
                    .detail("up but not running (no carrier): nothing arrives to capture")
                    .fix(format!(
                        "check the cable, switch port or peer of {iface} (`{}`)",
                        if cfg!(target_os = "freebsd") {
                            format!("ifconfig {iface}")
                        } else {
                            format!("ip link show {iface}")
                        }
                    )),
            );
        }
    } else {
        out.push(
            Finding::new(Level::Fail, "capture", subject.clone(), "interface is up")
                .detail("the interface is down: the sensor sees no traffic on it")
                .fix(up_command(iface)),
        );
    }
    if s.promiscuous {
        out.push(Finding::new(Level::Ok, "capture", subject, "promiscuous mode").detail("on"));
    } else if sensor_sets_promisc {
        out.push(
            Finding::new(Level::Ok, "capture", subject, "promiscuous mode")
                .detail("off now; the sensor turns it on when it opens the capture ([sensor] promiscuous = true)"),
        );
    } else {
        out.push(
            Finding::new(Level::Warn, "capture", subject, "promiscuous mode")
                .detail("off, and [sensor] promiscuous = false: only traffic to, from or routed through this host is seen")
                .fix(format!(
                    "set [sensor] promiscuous = true, or `{}`",
                    promisc_command(iface)
                )),
        );
    }
    out
}

pub(super) fn check_interface(iface: &str, sensor: &SensorConfig, out: &mut Vec<Finding>) {
    let flags = match interface_flags() {
        Ok(f) => f,
        Err(e) => {
            out.push(
                Finding::new(Level::Warn, "capture", iface, "interface exists")
                    .detail(format!("cannot list the interfaces (getifaddrs): {e}"))
                    .fix("check the system: getifaddrs(3) should not fail"),
            );
            BTreeMap::new()
        }
    };
    let state = flags.get(iface).map(|f| IfState::from_flags(*f));
    let known: Vec<String> = flags.keys().cloned().collect();
    out.extend(state_findings(
        iface,
        state,
        &known,
        sensor.live.promiscuous,
    ));
    if let Some(state) = state {
        out.extend(open_capture(iface, sensor, state.up));
    }
}

/// Open the interface with libpcap exactly as the sensor does (same options and filter),
/// and report the link type.
fn open_capture(iface: &str, sensor: &SensorConfig, up: bool) -> Vec<Finding> {
    let o = &sensor.live;
    let opened = pcap::Capture::from_device(iface).and_then(|c| {
        c.promisc(o.promiscuous)
            .snaplen(o.snaplen)
            .buffer_size(o.buffer_size)
            .immediate_mode(o.immediate)
            .timeout(o.read_timeout_ms)
            .open()
    });
    let mut cap = match opened {
        Ok(c) => c,
        Err(e) => {
            let text = e.to_string();
            let f = Finding::new(Level::Fail, "capture", iface, "capture permission");
            return vec![if is_permission_error(&text) {
                f.detail(format!("libpcap cannot open it: {text}"))
                    .fix(capture_permission_fix())
            } else if !up {
                // Already a failure of its own above; permission and link type are
                // known once it is up.
                f.with_level(Level::Warn)
                    .detail(format!(
                        "not checked while the interface is down (libpcap: {text})"
                    ))
                    .fix("bring the interface up, then run `spoor doctor` again")
            } else {
                f.detail(format!("libpcap cannot open it: {text}")).fix(
                    "fix what libpcap reports (an interface that is down or gone cannot be opened); then `spoor doctor` again",
                )
            }];
        }
    };
    let mut out = vec![
        Finding::new(Level::Ok, "capture", iface, "capture permission")
            .detail("opened with libpcap as the sensor opens it"),
    ];
    let lt = cap.get_datalink();
    let name = lt.get_name().unwrap_or_else(|_| "unknown".to_string());
    out.push(link_type_finding(iface, lt.0, &name));
    if !o.filter.trim().is_empty() {
        match cap.filter(&o.filter, true) {
            Ok(()) => out.push(
                Finding::new(Level::Ok, "capture", iface, "BPF filter")
                    .detail(format!("`{}` compiles", o.filter)),
            ),
            Err(e) => out.push(
                Finding::new(Level::Fail, "capture", iface, "BPF filter")
                    .detail(format!("`{}` is refused: {e}", o.filter))
                    .fix("correct [sensor] filter (pcap-filter(7) syntax; `tcpdump -d 'EXPR'` checks it)"),
            ),
        }
    }
    out
}

fn is_permission_error(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("permission") || t.contains("not permitted")
}

pub(crate) fn link_type_finding(iface: &str, linktype: i32, name: &str) -> Finding {
    let f = Finding::new(Level::Ok, "capture", iface, "link type decoded");
    if LinkType::SUPPORTED.contains(&LinkType(linktype)) {
        f.detail(format!("link type {linktype} ({name}) is decoded"))
    } else {
        f.with_level(Level::Fail)
            .detail(format!(
                "link type {linktype} ({name}) is not decoded: every frame from it is dropped"
            ))
            .fix("capture on an interface with a supported link type (Ethernet, raw IP, Linux cooked, loopback, PPP, pflog), e.g. the parent of this tunnel")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_interface_names_the_ones_that_exist() {
        let f = state_findings("eth9", None, &["lo".into(), "eth0".into()], true);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].level, Level::Fail);
        assert!(f[0].detail.contains("lo, eth0"), "{}", f[0].detail);
        assert!(f[0].fix.as_deref().unwrap().contains("[sensor] interfaces"));
    }

    #[test]
    fn a_down_interface_fails_with_the_command_that_brings_it_up() {
        let down = IfState {
            up: false,
            running: false,
            promiscuous: false,
        };
        let f = state_findings("eth1", Some(down), &[], true);
        let up = f.iter().find(|f| f.check == "interface is up").unwrap();
        assert_eq!(up.level, Level::Fail);
        assert!(up.fix.as_deref().unwrap().contains("eth1 up"));
        // The sensor sets promiscuous mode itself: not a problem.
        let p = f.iter().find(|f| f.check == "promiscuous mode").unwrap();
        assert_eq!(p.level, Level::Ok);
    }

    #[test]
    fn no_carrier_and_no_promiscuous_mode_are_warnings() {
        let s = IfState {
            up: true,
            running: false,
            promiscuous: false,
        };
        let f = state_findings("eth1", Some(s), &[], false);
        let levels: Vec<(&str, Level)> = f.iter().map(|f| (f.check, f.level)).collect();
        assert_eq!(
            levels,
            vec![
                ("interface is up", Level::Ok),
                ("link is running", Level::Warn),
                ("promiscuous mode", Level::Warn),
            ]
        );
        assert!(f[2].fix.as_deref().unwrap().contains("promiscuous = true"));
    }

    #[test]
    fn link_types_the_decoder_lacks_fail() {
        assert_eq!(link_type_finding("eth0", 1, "EN10MB").level, Level::Ok);
        assert_eq!(link_type_finding("any", 276, "LINUX_SLL2").level, Level::Ok);
        let f = link_type_finding("wlan0mon", 127, "IEEE802_11_RADIO");
        assert_eq!(f.level, Level::Fail);
        assert!(f.detail.contains("127"));
    }

    #[test]
    fn permission_errors_are_recognised() {
        assert!(is_permission_error("socket: Operation not permitted"));
        assert!(is_permission_error(
            "You don't have permission to perform this capture on that device"
        ));
        assert!(!is_permission_error("eth0: No such device exists"));
    }
}
