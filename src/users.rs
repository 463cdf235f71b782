//! Users who may connect to `bagbase serve`: name, role and password verifiers, kept
//! in the metadata KV under `u/<name>` (not versioned: a user is not data). Only
//! verifiers are stored — the SCRAM-SHA-256 salted password and PostgreSQL's
//! `md5(password || name)` — never the password itself. Knows nothing of the wire.

use crate::store::{Batch, MetaKv, StoreError};
use serde::{Deserialize, Serialize};

const PREFIX: &[u8] = b"u/";
/// PBKDF2 rounds for SCRAM-SHA-256, PostgreSQL's default.
pub const SCRAM_ITERATIONS: u32 = 4096;

/// What a user may do. Each role includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Queries.
    Read,
    /// Also writes into user tables.
    Write,
    /// Also manages users.
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            _ => Err(format!(
                "unknown role '{s}' (expected read, write or admin)"
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        })
    }
}

/// One user record as stored (JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// SCRAM-SHA-256: salt and `Hi(password, salt, iterations)`, hex.
    pub scram_salt: String,
    pub scram_salted_password: String,
    pub scram_iterations: u32,
    /// `md5(password || name)`, hex, as PostgreSQL stores md5 passwords.
    pub md5: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user name '{0}' is not valid: use 1 to 63 letters, digits, '_' or '-'")]
    BadName(String),
    #[error("user '{0}' already exists")]
    Exists(String),
    #[error("no user '{0}'")]
    Unknown(String),
    #[error("the password is empty")]
    EmptyPassword,
    #[error("user record '{0}' does not decode: {1}")]
    Corrupt(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn key(name: &str) -> Vec<u8> {
    [PREFIX, name.as_bytes()].concat()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl User {
    /// A new record with fresh verifiers for `password`.
    pub fn new(name: &str, role: Role, password: &str) -> Result<User, UserError> {
        if !valid_name(name) {
            return Err(UserError::BadName(name.into()));
        }
        if password.is_empty() {
            return Err(UserError::EmptyPassword);
        }
        let salt = random_bytes::<16>();
        let salted = pbkdf2_sha256(password.as_bytes(), &salt, SCRAM_ITERATIONS);
        let md5 = format!("{:x}", md5::compute(format!("{password}{name}")));
        Ok(User {
            name: name.into(),
            role,
            scram_salt: hex::encode(salt),
            scram_salted_password: hex::encode(salted),
            scram_iterations: SCRAM_ITERATIONS,
            md5,
        })
    }

    /// Checks a cleartext password against the SCRAM verifier.
    pub fn password_matches(&self, password: &str) -> bool {
        let (Ok(salt), Ok(want)) = (
            hex::decode(&self.scram_salt),
            hex::decode(&self.scram_salted_password),
        ) else {
            return false;
        };
        want == pbkdf2_sha256(password.as_bytes(), &salt, self.scram_iterations)
    }
}

pub fn get(kv: &dyn MetaKv, name: &str) -> Result<Option<User>, UserError> {
    let Some(raw) = kv.get(&key(name))? else {
        return Ok(None);
    };
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|e| UserError::Corrupt(name.into(), e.to_string()))
}

pub fn list(kv: &dyn MetaKv) -> Result<Vec<User>, UserError> {
    let mut out = Vec::new();
    for (k, v) in kv.scan_prefix(PREFIX)? {
        let name = String::from_utf8_lossy(&k[PREFIX.len()..]).into_owned();
        out.push(serde_json::from_slice(&v).map_err(|e| UserError::Corrupt(name, e.to_string()))?);
    }
    Ok(out)
}

/// True when at least one user exists (then every connection authenticates).
pub fn any(kv: &dyn MetaKv) -> Result<bool, UserError> {
    let mut found = false;
    kv.for_each_key(PREFIX, &mut |_| {
        found = true;
        Ok(())
    })?;
    Ok(found)
}

/// The batch that adds `user`; fails if the name is taken.
pub fn add(kv: &dyn MetaKv, user: &User) -> Result<Batch, UserError> {
    if kv.contains(&key(&user.name))? {
        return Err(UserError::Exists(user.name.clone()));
    }
    let mut b = Batch::default();
    b.put(
        key(&user.name),
        serde_json::to_vec(user).expect("user record serializes"),
    );
    Ok(b)
}

/// The batch that removes user `name`; fails if there is none.
pub fn remove(kv: &dyn MetaKv, name: &str) -> Result<Batch, UserError> {
    if !kv.contains(&key(name))? {
        return Err(UserError::Unknown(name.into()));
    }
    let mut b = Batch::default();
    b.delete(key(name));
    Ok(b)
}

/// Random bytes for salts, from /dev/urandom.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use std::io::Read;
    let mut out = [0u8; N];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(&mut out).is_ok() {
            return out;
        }
    }
    // No /dev/urandom: fall back to the clock and the process id, hashed.
    let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
    let h = crate::store::Id::of(seed.as_bytes());
    out.copy_from_slice(&h.0[..N.min(32)]);
    out
}

/// PBKDF2-HMAC-SHA-256 with one output block: SCRAM's `Hi()` (RFC 5802).
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 32] {
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac_sha256(password, &block);
    let mut out = u;
    for _ in 1..rounds {
        u = hmac_sha256(password, &u);
        for (o, x) in out.iter_mut().zip(u.iter()) {
            *o ^= x;
        }
    }
    out
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_matches_rfc7914_vector() {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256("passwd", "salt", 1), first 32 bytes.
        let out = pbkdf2_sha256(b"passwd", b"salt", 1);
        assert_eq!(
            hex::encode(out),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }

    #[test]
    fn verifiers_check_the_password() {
        let u = User::new("alice", Role::Read, "s3cret").unwrap();
        assert!(u.password_matches("s3cret"));
        assert!(!u.password_matches("S3cret"));
        assert_eq!(u.md5, format!("{:x}", md5::compute("s3cretalice")));
        assert!(User::new("bad name", Role::Read, "x").is_err());
        assert!(User::new("bob", Role::Read, "").is_err());
    }
}
