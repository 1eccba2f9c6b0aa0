//! Interim loader (replaced by the format branch).
use std::path::Path;

use crate::format::{FormatSpec, Sink, parse_text};

#[derive(Debug, Default)]
pub struct LoadStats {
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(String);

pub fn load_source(
    path: &Path,
    format: &FormatSpec,
    sink: &mut Sink<'_>,
) -> Result<LoadStats, SourceError> {
    let mut stats = LoadStats::default();
    let mut files = Vec::new();
    if path.is_dir() {
        let mut stack = vec![path.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).map_err(|e| SourceError(e.to_string()))? {
                let p = e.map_err(|e| SourceError(e.to_string()))?.path();
                if p.is_dir() {
                    stack.push(p)
                } else if p.extension().is_some_and(|x| x == "txt") {
                    files.push(p)
                }
            }
        }
    } else {
        files.push(path.to_path_buf());
    }
    files.sort();
    for f in files {
        let bytes = std::fs::read(&f).map_err(|e| SourceError(format!("{}: {e}", f.display())))?;
        let text = String::from_utf8_lossy(&bytes);
        stats.files += 1;
        stats.bytes += bytes.len() as u64;
        let info: std::sync::Arc<str> = {
            let stem = f.file_stem().unwrap().to_string_lossy().replace('_', " ");
            match f
                .parent()
                .filter(|p| *p != path)
                .and_then(|p| p.file_name())
            {
                Some(cat) => format!("{stem} ({})", cat.to_string_lossy()).into(),
                None => stem.into(),
            }
        };
        let mut report = crate::format::ParseReport::default();
        let mut recs = Vec::new();
        {
            let mut out = |r: crate::format::Record| recs.push(r);
            let mut s = Sink::new(&mut report, &mut out);
            parse_text(format, &text, &f, &mut s);
        }
        sink.report.malformed_count += report.malformed_count;
        for mut r in recs {
            if r.info.is_none() && matches!(format, FormatSpec::Maltrail) {
                r.info = Some(info.clone());
                r.reference = Some("(static)".into());
            }
            sink.push(r)
        }
    }
    Ok(stats)
}
