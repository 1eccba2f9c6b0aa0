//! Dashboard users and their sessions. Passwords arrive here already hashed
//! ([`crate::auth::password`]); session tokens as their SHA-256.

use ipnet::IpNet;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{StoreError, now_micros};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything in scope.
    Viewer,
    /// Viewer, plus triage and exports.
    Analyst,
    /// Analyst, plus users, audit log.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "analyst" => Some(Role::Analyst),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// Networks the user sees; empty: everything.
    pub scope: Vec<IpNet>,
    pub created_at: i64,
}

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(User, String)> {
    let role: String = r.get(1)?;
    let scope: String = r.get(2)?;
    Ok((
        User {
            name: r.get(0)?,
            role: Role::parse(&role).unwrap_or(Role::Viewer),
            scope: serde_json::from_str(&scope).unwrap_or_default(),
            created_at: r.get(3)?,
        },
        r.get(4)?,
    ))
}

/// A user and their password hash.
pub fn user_with_hash(conn: &Connection, name: &str) -> Result<Option<(User, String)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT name, role, scope, created_at, password_hash FROM users WHERE name = ?1",
            [name],
            user_from_row,
        )
        .optional()?)
}

pub fn list_users(conn: &Connection) -> Result<Vec<User>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT name, role, scope, created_at, password_hash FROM users ORDER BY name")?;
    let rows = stmt.query_map([], user_from_row)?;
    Ok(rows.map(|r| r.map(|(u, _)| u)).collect::<Result<_, _>>()?)
}

pub fn count_users(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

/// Names of users: letters, digits, `.`, `_`, `-`, `@`; 1..=64 characters.
pub fn check_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "user name `{name}`: use 1 to 64 letters, digits, `.`, `_`, `-` or `@`"
        )))
    }
}

/// Create or replace a user's password, role and scope (`None` keeps what is there, or
/// viewer / everything for a new user). Existing sessions of a user whose password
/// changes are ended.
pub fn upsert_user(
    conn: &Connection,
    name: &str,
    password_hash: Option<&str>,
    role: Option<Role>,
    scope: Option<&[IpNet]>,
) -> Result<(), StoreError> {
    check_name(name)?;
    let existing = user_with_hash(conn, name)?;
    match existing {
        None => {
            let hash = password_hash.ok_or_else(|| {
                StoreError::Invalid(format!("new user `{name}` needs a password"))
            })?;
            conn.execute(
                "INSERT INTO users (name, password_hash, role, scope, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    name,
                    hash,
                    role.unwrap_or(Role::Viewer).as_str(),
                    serde_json::to_string(scope.unwrap_or(&[])).unwrap_or_else(|_| "[]".into()),
                    now_micros()
                ],
            )?;
        }
        Some((user, old_hash)) => {
            conn.execute(
                "UPDATE users SET password_hash = ?2, role = ?3, scope = ?4 WHERE name = ?1",
                params![
                    name,
                    password_hash.unwrap_or(&old_hash),
                    role.unwrap_or(user.role).as_str(),
                    serde_json::to_string(scope.unwrap_or(&user.scope))
                        .unwrap_or_else(|_| "[]".into()),
                ],
            )?;
            if password_hash.is_some() {
                conn.execute("DELETE FROM sessions WHERE user = ?1", [name])?;
            }
        }
    }
    Ok(())
}

pub fn delete_user(conn: &Connection, name: &str) -> Result<(), StoreError> {
    match conn.execute("DELETE FROM users WHERE name = ?1", [name])? {
        0 => Err(StoreError::NotFound(format!("user `{name}`"))),
        _ => Ok(()),
    }
}

pub fn admins(conn: &Connection) -> Result<i64, StoreError> {
    Ok(
        conn.query_row("SELECT count(*) FROM users WHERE role = 'admin'", [], |r| {
            r.get(0)
        })?,
    )
}

/// A live session with its user.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user: User,
    pub csrf: String,
    pub expires_at: i64,
}

pub fn create_session(
    conn: &Connection,
    token_hash: &[u8; 32],
    user: &str,
    csrf: &str,
    expires_at: i64,
) -> Result<(), StoreError> {
    let now = now_micros();
    conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
    conn.execute(
        "INSERT INTO sessions (token_hash, user, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![&token_hash[..], user, csrf, now, expires_at],
    )?;
    Ok(())
}

pub fn session(conn: &Connection, token_hash: &[u8; 32]) -> Result<Option<SessionRow>, StoreError> {
    let row = conn
        .query_row(
            "SELECT u.name, u.role, u.scope, u.created_at, u.password_hash, s.csrf, s.expires_at
             FROM sessions s JOIN users u ON u.name = s.user
             WHERE s.token_hash = ?1 AND s.expires_at > ?2",
            params![&token_hash[..], now_micros()],
            |r| Ok((user_from_row(r)?.0, r.get(5)?, r.get(6)?)),
        )
        .optional()?;
    Ok(row.map(|(user, csrf, expires_at)| SessionRow {
        user,
        csrf,
        expires_at,
    }))
}

pub fn delete_session(conn: &Connection, token_hash: &[u8; 32]) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM sessions WHERE token_hash = ?1",
        [&token_hash[..]],
    )?;
    Ok(())
}
