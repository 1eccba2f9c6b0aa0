//! Dropping root once the capture devices are open.
//!
//! Capturing needs privileges only to open the device (a packet socket on Linux, `/dev/bpf`
//! on FreeBSD); the open handles keep working afterwards. So the sensor opens every
//! capture, then switches the whole process to an unprivileged user and group: supplementary
//! groups first (`setgroups`), then the group (`setgid`), then the user (`setuid`), the
//! only order in which each step is still allowed. It then checks that the switch is
//! complete and cannot be undone: real and effective ids are the new ones and `setuid(0)`
//! fails. On Linux, `setuid` away from root also clears every capability, and glibc and
//! musl apply the change to every thread of the process; on FreeBSD credentials belong to
//! the process.

use std::ffi::{CStr, CString};
use std::fmt;

/// Buffer for one passwd/group entry (names, home, shell, member lists); grown on ERANGE
/// up to [`MAX_ENTRY_BUFFER`].
const ENTRY_BUFFER: usize = 4096;
/// Largest entry buffer tried: a group with thousands of members still fits.
const MAX_ENTRY_BUFFER: usize = 1 << 20;

/// Why the switch failed. Every variant says what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivilegeError {
    #[error(
        "user `{0}` does not exist on this system (sensor.user); create it (e.g. `pw useradd spoor -d /nonexistent -s /usr/sbin/nologin` on FreeBSD, `useradd --system spoor` on Linux) or name another"
    )]
    NoSuchUser(String),
    #[error("group `{0}` does not exist on this system (sensor.group)")]
    NoSuchGroup(String),
    #[error("looking up `{name}`: {source}")]
    Lookup {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing to run as root: sensor.user names uid 0; name an unprivileged user")]
    TargetIsRoot,
    #[error("{call} failed: {source} (switching users needs the sensor to start as root)")]
    Call {
        call: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("after the switch the process could still regain root; stopping to be safe")]
    NotPermanent,
}

/// Who to become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (uid {}, gid {})", self.user, self.uid, self.gid)
    }
}

/// Resolve `user` (a name or a number) and `group` (default: the user's primary group).
pub fn lookup(user: &str, group: Option<&str>) -> Result<Identity, PrivilegeError> {
    let (uid, primary) = match user_entry(user)? {
        Some(found) => found,
        None => match user.parse::<libc::uid_t>() {
            // A numeric id without a passwd entry: its group must be given.
            Ok(uid) if group.is_some() => (uid, 0),
            _ => return Err(PrivilegeError::NoSuchUser(user.to_string())),
        },
    };
    let gid = match group {
        None => primary,
        Some(g) => match group_entry(g)? {
            Some(gid) => gid,
            None => g
                .parse::<libc::gid_t>()
                .map_err(|_| PrivilegeError::NoSuchGroup(g.to_string()))?,
        },
    };
    if uid == 0 {
        return Err(PrivilegeError::TargetIsRoot);
    }
    Ok(Identity {
        user: user.to_string(),
        uid,
        gid,
    })
}

fn c_name(name: &str) -> Result<CString, PrivilegeError> {
    CString::new(name).map_err(|_| PrivilegeError::Lookup {
        name: name.to_string(),
        source: std::io::ErrorKind::InvalidInput.into(),
    })
}

/// `getpwnam_r`: (uid, primary gid) of a user, or None.
fn user_entry(name: &str) -> Result<Option<(libc::uid_t, libc::gid_t)>, PrivilegeError> {
    let cname = c_name(name)?;
    let mut size = ENTRY_BUFFER;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: an all-zero passwd is a valid value of this plain C struct.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf` outlives the use of `pwd`'s
        // string fields (we read only the numeric ones).
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                size,
                &mut result,
            )
        };
        if rc == libc::ERANGE && size < MAX_ENTRY_BUFFER {
            size *= 2;
            continue;
        }
        if rc != 0 {
            return Err(PrivilegeError::Lookup {
                name: name.to_string(),
                source: std::io::Error::from_raw_os_error(rc),
            });
        }
        return Ok((!result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid)));
    }
}

/// `getgrnam_r`: the gid of a group, or None.
fn group_entry(name: &str) -> Result<Option<libc::gid_t>, PrivilegeError> {
    let cname = c_name(name)?;
    let mut size = ENTRY_BUFFER;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: an all-zero group is a valid value of this plain C struct.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: as in `user_entry`.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                size,
                &mut result,
            )
        };
        if rc == libc::ERANGE && size < MAX_ENTRY_BUFFER {
            size *= 2;
            continue;
        }
        if rc != 0 {
            return Err(PrivilegeError::Lookup {
                name: name.to_string(),
                source: std::io::Error::from_raw_os_error(rc),
            });
        }
        return Ok((!result.is_null()).then_some(grp.gr_gid));
    }
}

fn check(call: &'static str, rc: libc::c_int) -> Result<(), PrivilegeError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(PrivilegeError::Call {
            call,
            source: std::io::Error::last_os_error(),
        })
    }
}

/// Switch the whole process to `id` for good, and verify it.
pub fn drop_to(id: &Identity) -> Result<(), PrivilegeError> {
    let groups = [id.gid];
    // SAFETY: plain system calls with a valid one-element array.
    unsafe {
        check("setgroups", libc::setgroups(1, groups.as_ptr()))?;
        check("setgid", libc::setgid(id.gid))?;
        check("setuid", libc::setuid(id.uid))?;
    }
    verify(id)
}

/// The switch is complete and permanent.
fn verify(id: &Identity) -> Result<(), PrivilegeError> {
    // SAFETY: these calls have no preconditions. setuid(0) is expected to fail; should it
    // succeed we stop at once (the caller exits).
    unsafe {
        if libc::getuid() != id.uid
            || libc::geteuid() != id.uid
            || libc::getgid() != id.gid
            || libc::getegid() != id.gid
        {
            return Err(PrivilegeError::NotPermanent);
        }
        if libc::setuid(0) == 0 || libc::seteuid(0) == 0 {
            return Err(PrivilegeError::NotPermanent);
        }
    }
    Ok(())
}

/// The user name of the running process's effective uid, for logs.
pub fn current_user() -> String {
    // SAFETY: geteuid cannot fail; getpwuid's result is read at once, on this thread.
    unsafe {
        let uid = libc::geteuid();
        let pw = libc::getpwuid(uid);
        if pw.is_null() || (*pw).pw_name.is_null() {
            return uid.to_string();
        }
        CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_missing_users_are_refused_by_lookup() {
        assert!(matches!(
            lookup("root", None),
            Err(PrivilegeError::TargetIsRoot)
        ));
        let err = lookup("no-such-user-spoor-test", None).unwrap_err();
        assert!(matches!(err, PrivilegeError::NoSuchUser(_)), "{err}");
        assert!(err.to_string().contains("does not exist"));
        let err = lookup("root", Some("no-such-group-spoor-test")).unwrap_err();
        assert!(matches!(err, PrivilegeError::NoSuchGroup(_)), "{err}");
        // A number without a passwd entry needs its group.
        assert!(lookup("4000000", None).is_err());
        assert_eq!(
            lookup("4000000", Some("4000001")).unwrap(),
            Identity {
                user: "4000000".into(),
                uid: 4_000_000,
                gid: 4_000_001
            }
        );
    }

    #[test]
    fn nobody_resolves_with_its_primary_group() {
        // Every Linux and FreeBSD system has `nobody`.
        let id = lookup("nobody", None).unwrap();
        assert_ne!(id.uid, 0);
        assert_eq!(id.user, "nobody");
    }
}
