//! `[sensor] user`: what the sensor opens after switching users must be reachable by
//! that user.

use std::path::Path;

use super::*;

/// Whether `uid`/`gid` (one group: the sensor keeps only its primary group after the
/// switch) may read or write `path`, by the mode bits of the path and of every folder
/// above it (which must be searchable). A path that does not exist yet is judged by the
/// nearest existing folder, which must be writable for the sensor to create it. ACLs
/// are not read.
pub(crate) fn may_access(path: &Path, uid: u32, gid: u32, write: bool) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt as _;
    let allowed = |m: &std::fs::Metadata, bits: u32| {
        let shift = if m.uid() == uid {
            6
        } else if m.gid() == gid {
            3
        } else {
            0
        };
        (m.mode() >> shift) & bits == bits
    };
    let mut target = path.to_path_buf();
    let mut need = if write { 0o2 } else { 0o4 };
    while !target.exists() {
        // Created by the sensor: the folder above must take new entries.
        need = 0o3;
        match target.parent() {
            Some(p) => target = p.to_path_buf(),
            None => return Ok(false),
        }
    }
    if uid == 0 {
        return Ok(true);
    }
    let meta = std::fs::metadata(&target)?;
    if meta.is_dir() && need == 0o2 {
        need = 0o3;
    }
    if !allowed(&meta, need) {
        return Ok(false);
    }
    for dir in target.ancestors().skip(1) {
        if !allowed(&std::fs::metadata(dir)?, 0o1) {
            return Ok(false);
        }
    }
    Ok(true)
}

pub(super) fn check_sensor_user(config: &Config, out: &mut Vec<Finding>) {
    let sensor = &config.sensor;
    let Some(user) = &sensor.user else {
        return;
    };
    let id = match spoor_sensor::privilege::lookup(user, sensor.group.as_deref()) {
        Ok(id) => id,
        Err(e) => {
            out.push(
                Finding::new(Level::Fail, "privileges", user.as_str(), "[sensor] user exists")
                    .detail(e.to_string())
                    .fix("create the user and group (freebsd/README.md, dist/systemd), or correct [sensor] user / group"),
            );
            return;
        }
    };
    out.push(
        Finding::new(
            Level::Ok,
            "privileges",
            user.as_str(),
            "[sensor] user exists",
        )
        .detail(id.to_string()),
    );
    let group = sensor.group.clone().unwrap_or_else(|| id.gid.to_string());
    let mut paths: Vec<(&'static str, std::path::PathBuf, bool)> = Vec::new();
    if config.trails.snapshot.exists() {
        paths.push(("snapshot readable", config.trails.snapshot.clone(), false));
    }
    if let Some(log) = &sensor.log {
        paths.push(("log folder writable", log.dir.clone(), true));
    }
    for o in &sensor.outputs {
        if let RawOutput::Server(s) = o {
            paths.push(("token readable", s.token_file.clone(), false));
            if let Some(spool) = &s.spool_dir {
                paths.push(("spool writable", spool.clone(), true));
            }
        }
    }
    for (check, path, write) in paths {
        let subject = format!("{user}: {}", path.display());
        let f = Finding::new(Level::Ok, "privileges", subject, check);
        out.push(match may_access(&path, id.uid, id.gid, write) {
            Ok(true) => f.detail(format!("{check} by {id}")),
            Ok(false) if !write => {
                // The snapshot is opened before the switch, but reloads happen after it.
                let level = if check == "snapshot readable" { Level::Warn } else { Level::Fail };
                f.with_level(level)
                    .detail(format!(
                        "{} is not readable by {id} (mode bits of the file and its folders)",
                        path.display()
                    ))
                    .fix(if check == "snapshot readable" {
                        format!(
                            "chmod 0644 {p} and make its folders searchable; `spoor trails compile` writes a new file with the umask's mode: run it with umask 022 or as {user}",
                            p = path.display()
                        )
                    } else {
                        format!(
                            "chgrp {group} {p} && chmod 0640 {p}, and make its folders searchable",
                            p = path.display()
                        )
                    })
            }
            Ok(false) => f
                .with_level(Level::Fail)
                .detail(format!(
                    "{} is not writable by {id}: the sensor opens it after switching users",
                    path.display()
                ))
                .fix(format!(
                    "install -d -o {user} -g {group} -m 0750 {}",
                    path.display()
                )),
            Err(e) => f
                .with_level(Level::Warn)
                .detail(format!("cannot read the mode of {}: {e}", path.display()))
                .fix("check the path and its folders"),
        });
    }
}
