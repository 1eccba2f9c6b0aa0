//! Config primitives shared by every section: the validation error that names the key it
//! is about. The binary turns the key path into a line number of the file the admin wrote,
//! so every crate can validate its own section without knowing about TOML spans.

use std::fmt;

/// A dotted key path as it appears in the TOML file: `trails.source[2].format`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<KeySegment>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySegment {
    Key(String),
    Index(usize),
}

impl KeyPath {
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }
    /// `path.key("source").index(2).key("format")`
    pub fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(KeySegment::Key(k.to_string()));
        KeyPath(v)
    }
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(KeySegment::Index(i));
        KeyPath(v)
    }
    pub fn segments(&self) -> &[KeySegment] {
        &self.0
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                KeySegment::Key(k) if i == 0 => write!(f, "{k}")?,
                KeySegment::Key(k) => write!(f, ".{k}")?,
                KeySegment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A value in the config that parsed as TOML but makes no sense to Spoor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: KeyPath,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: KeyPath, message: impl Into<String>) -> Self {
        ConfigError {
            key,
            message: message.into(),
        }
    }
}
