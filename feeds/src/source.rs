//! Local trail sources: a file in any format, or a Maltrail trail folder.
//!
//! The loader reads bytes, decodes them (lossily: a byte that is not UTF-8 costs at most
//! its line) and hands each file to [`crate::format::parse_text`]. Line problems go to the
//! sink's report; only problems with the path itself (missing, unreadable, wrong kind) are
//! errors.
//!
//! A Maltrail folder is walked in a fixed order that keeps Maltrail's precedence (in
//! Maltrail later files win): folders named like `suspicious`/`malicious` first, then the
//! root and the other folders, folders named like `custom` last; inside a folder `.csv`
//! files before `.txt` files, `*history*` files last, by name otherwise. Only `.txt` and
//! `.csv` files are read; hidden files and folders are skipped.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::format::{FormatSpec, Sink, maltrail, parse_text};

/// A file larger than this is refused rather than read into memory. The largest real
/// feeds are tens of MiB.
pub const MAX_FILE_SIZE: u64 = 512 * 1024 * 1024;
/// Folder levels below a Maltrail root that are walked; also stops symlink loops.
pub const MAX_FOLDER_DEPTH: usize = 8;

/// What a load read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Files parsed.
    pub files: u64,
    /// Bytes read from them.
    pub bytes: u64,
}

/// Why a source could not be loaded at all. Records pushed before the error belong to a
/// partial load and should be dropped by the caller.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The path does not exist.
    #[error("{}: no such file or folder; check the source's `path`", path.display())]
    NotFound { path: PathBuf },
    /// The path exists but could not be read (permissions, I/O error).
    #[error("{}: cannot read: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A folder was given for a format that reads one file.
    #[error(
        "{}: is a folder, but format `{format}` reads a single file; only `maltrail` sources may be folders",
        path.display()
    )]
    FolderForFileFormat { path: PathBuf, format: &'static str },
    /// The path is neither a regular file nor a folder (a socket, a device...).
    #[error("{}: neither a regular file nor a folder", path.display())]
    NotAFile { path: PathBuf },
    /// The file is larger than [`MAX_FILE_SIZE`].
    #[error("{}: {size} bytes is larger than the {MAX_FILE_SIZE}-byte limit for a trail file", path.display())]
    TooLarge { path: PathBuf, size: u64 },
}

/// Load one source into `sink`: a file in `format`, or for `maltrail` also a folder.
pub fn load_source(
    path: &Path,
    format: &FormatSpec,
    sink: &mut Sink<'_>,
) -> Result<LoadStats, SourceError> {
    let meta = metadata(path)?;
    let mut stats = LoadStats::default();
    if meta.is_dir() {
        if !matches!(format, FormatSpec::Maltrail) {
            return Err(SourceError::FolderForFileFormat {
                path: path.to_path_buf(),
                format: format.name(),
            });
        }
        for file in maltrail_files(path)? {
            let text = read_text(&file, &mut stats)?;
            maltrail::parse_file(path, &text, &file, sink);
        }
    } else if meta.is_file() {
        let text = read_text(path, &mut stats)?;
        parse_text(format, &text, path, sink);
    } else {
        return Err(SourceError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    Ok(stats)
}

fn metadata(path: &Path) -> Result<fs::Metadata, SourceError> {
    fs::metadata(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => SourceError::NotFound {
            path: path.to_path_buf(),
        },
        _ => SourceError::Unreadable {
            path: path.to_path_buf(),
            source,
        },
    })
}

fn read_text(path: &Path, stats: &mut LoadStats) -> Result<String, SourceError> {
    let size = metadata(path)?.len();
    if size > MAX_FILE_SIZE {
        return Err(SourceError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let bytes = fs::read(path).map_err(|source| SourceError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    stats.files += 1;
    stats.bytes += bytes.len() as u64;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Every trail file below `root`, in load order.
pub fn maltrail_files(root: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let mut folders = vec![(folder_rank(Path::new("")), PathBuf::new())];
    collect_folders(root, Path::new(""), 1, &mut folders)?;
    // Stable on (rank, relative path): the root (empty path) leads its rank as in Maltrail.
    folders.sort();
    let mut files = Vec::new();
    for (_, relative) in folders {
        let folder = root.join(relative);
        let mut trail_files: Vec<(bool, bool, PathBuf)> = read_folder(&folder)?
            .into_iter()
            .filter(|(_, is_dir)| !is_dir)
            .filter_map(|(path, _)| {
                let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
                let ext = Path::new(&name).extension()?.to_str()?.to_string();
                let is_txt = match ext.as_str() {
                    "csv" => false,
                    "txt" => true,
                    _ => return None,
                };
                Some((is_txt, name.contains("history"), path))
            })
            .collect();
        trail_files.sort();
        files.extend(trail_files.into_iter().map(|(_, _, path)| path));
    }
    Ok(files)
}

/// Maltrail's folder precedence: `suspicious`/`malicious` first, `custom` last.
fn folder_rank(relative: &Path) -> i8 {
    let text = relative.to_string_lossy().to_ascii_lowercase();
    if text.contains("suspicious") || text.contains("malicious") {
        -1
    } else if text.contains("custom") {
        1
    } else {
        0
    }
}

fn collect_folders(
    root: &Path,
    relative: &Path,
    depth: usize,
    out: &mut Vec<(i8, PathBuf)>,
) -> Result<(), SourceError> {
    if depth > MAX_FOLDER_DEPTH {
        return Ok(());
    }
    for (path, is_dir) in read_folder(&root.join(relative))? {
        if !is_dir {
            continue;
        }
        let Some(name) = path.file_name() else {
            continue;
        };
        let child = relative.join(name);
        out.push((folder_rank(&child), child.clone()));
        collect_folders(root, &child, depth + 1, out)?;
    }
    Ok(())
}

/// Visible entries of a folder with whether each is a folder (symlinks followed).
fn read_folder(folder: &Path) -> Result<Vec<(PathBuf, bool)>, SourceError> {
    let unreadable = |source| SourceError::Unreadable {
        path: folder.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(folder).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // A dangling symlink is neither: skipped like any other non-trail entry.
        let is_dir = fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false);
        entries.push((path, is_dir));
    }
    entries.sort();
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use spoor_core::TrailKind;

    use super::*;
    use crate::format::{ParseReport, Record};

    fn load(
        path: &Path,
        format: &FormatSpec,
    ) -> (Result<LoadStats, SourceError>, Vec<Record>, ParseReport) {
        let mut report = ParseReport::default();
        let mut out = Vec::new();
        let mut push = |r| out.push(r);
        let mut sink = Sink::new(&mut report, &mut push);
        let result = load_source(path, format, &mut sink);
        (result, out, report)
    }

    fn write(root: &Path, relative: &str, text: &[u8]) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn folder_order_follows_maltrail_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("static");
        for f in [
            "zeta.txt",
            "alpha.txt",
            "old_history.txt",
            "extra.csv",
            "__init__.py",
            "LICENSE",
            ".hidden.txt",
            "malware/emotet.txt",
            "malicious/phish.txt",
            "suspicious/bad_history.txt",
            "suspicious/another.txt",
            "custom/mine.txt",
            "malware/deep/x.txt",
        ] {
            write(&root, f, b"");
        }
        let got: Vec<String> = maltrail_files(&root)
            .unwrap()
            .iter()
            .map(|p| {
                p.strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            got,
            [
                "malicious/phish.txt",
                "suspicious/another.txt",
                "suspicious/bad_history.txt",
                "extra.csv",
                "alpha.txt",
                "zeta.txt",
                "old_history.txt",
                "malware/emotet.txt",
                "malware/deep/x.txt",
                "custom/mine.txt",
            ]
        );
    }

    #[test]
    fn folder_records_and_stats() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("static");
        write(
            &root,
            "malware/emotet.txt",
            b"evil.example\r\nbad\xff\xfe.example\r\n1.2.3.4\r\n",
        );
        write(&root, "mass_scanner.txt", b"5.6.7.8\n");
        let (result, recs, report) = load(&root, &FormatSpec::Maltrail);
        let stats = result.unwrap();
        assert_eq!(stats.files, 2);
        assert_eq!(stats.bytes, 38 + 8);
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].info.as_deref(), Some("mass scanner"));
        assert_eq!(recs[1].info.as_deref(), Some("emotet (malware)"));
        // The bad bytes cost their line only.
        assert_eq!(report.malformed_count, 1);
        assert_eq!(report.malformed[0].line, 2);
        assert!(report.malformed[0].file.ends_with("malware/emotet.txt"));
    }

    #[test]
    fn path_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.txt");
        let (result, ..) = load(&missing, &FormatSpec::Ip);
        let err = result.unwrap_err();
        assert!(matches!(err, SourceError::NotFound { .. }));
        assert!(err.to_string().contains("nope.txt: no such file or folder"));

        let (result, ..) = load(dir.path(), &FormatSpec::Ipset);
        let err = result.unwrap_err();
        assert!(matches!(
            err,
            SourceError::FolderForFileFormat {
                format: "ipset",
                ..
            }
        ));
        assert!(
            err.to_string()
                .contains("only `maltrail` sources may be folders")
        );
    }

    #[test]
    fn single_files_in_any_format() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "list.txt",
            b"\xef\xbb\xbf1.2.3.4\n\x00\x01\x02\nevil.example\n",
        );
        let path = dir.path().join("list.txt");
        let (result, recs, report) = load(&path, &FormatSpec::Ip);
        assert_eq!(result.unwrap().files, 1);
        assert_eq!(recs.len(), 1);
        assert_eq!(report.malformed_count, 2);

        let (_, recs, _) = load(&path, &FormatSpec::Maltrail);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].info.as_deref(), Some("list"));

        let (_, recs, _) = load(
            &path,
            &FormatSpec::SuricataDataset {
                kind: TrailKind::Domain,
            },
        );
        assert_eq!(recs.len(), 1);
    }
}
