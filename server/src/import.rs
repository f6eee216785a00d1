//! `brooklet-server --import-rdb FILE`: a Redis RDB file loaded into the data directory.
//!
//! The file is read whole and walked twice. The first walk checks everything (signature,
//! version, checksum, every value read in full, every database index in range) and writes
//! nothing, so a damaged or truncated file leaves the data directory as it was. The second
//! walk hands each string and stream to RESTORE (`cmd/dump.rs`) with its absolute deadline
//! and REPLACE, through an in-process session of the opened store, so an imported key is
//! stored exactly as a RESTOREd one is; SAVE ends it. Other types (lists, hashes, sets,
//! sorted sets, modules), functions and module data are skipped and counted; keys whose
//! deadline has passed are not imported, as Redis does not load them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use bytes::Bytes;

use crate::config::Config;
use crate::embedded::{Embedded, Session};
use crate::rdb::file::{self, Key};
use crate::rdb::{RdbError, type_name};

/// What an import found and did.
#[derive(Debug, Default)]
pub struct ImportSummary {
    /// The file's RDB version.
    pub version: u16,
    /// Keys imported, by database and type.
    pub imported: BTreeMap<(u64, &'static str), u64>,
    /// Keys skipped, by type (Brooklet holds streams and strings only).
    pub skipped: BTreeMap<&'static str, u64>,
    /// Keys whose deadline had passed, not imported.
    pub expired: u64,
    /// Functions skipped.
    pub functions: u64,
    /// Module aux sections skipped.
    pub module_aux: u64,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: u64 = self.imported.values().sum();
        writeln!(
            f,
            "imported {total} keys from an RDB version {} file",
            self.version
        )?;
        for ((db, kind), n) in &self.imported {
            writeln!(f, "  db{db}: {n} {kind}")?;
        }
        for (kind, n) in &self.skipped {
            writeln!(
                f,
                "skipped {n} {kind} keys (Brooklet holds streams and strings only)"
            )?;
        }
        if self.expired > 0 {
            writeln!(f, "skipped {} keys whose deadline had passed", self.expired)?;
        }
        if self.functions > 0 {
            writeln!(f, "skipped {} functions", self.functions)?;
        }
        if self.module_aux > 0 {
            writeln!(f, "skipped {} module aux sections", self.module_aux)?;
        }
        Ok(())
    }
}

/// Why an import failed.
#[derive(Debug)]
pub enum ImportError {
    /// The file could not be read.
    Io(std::io::Error),
    /// The file is not a valid RDB file; nothing was written.
    Invalid(String),
    /// Writing into the data directory failed part-way (what failed).
    Write(String),
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Io(e) => write!(f, "cannot read the RDB file: {e}"),
            ImportError::Invalid(e) => {
                write!(
                    f,
                    "refused: the RDB file is not valid ({e}); the data directory was not changed"
                )
            }
            ImportError::Write(e) => write!(f, "import failed while writing: {e}"),
        }
    }
}

impl std::error::Error for ImportError {}

impl From<RdbError> for ImportError {
    fn from(e: RdbError) -> Self {
        ImportError::Invalid(e.to_string())
    }
}

/// What happens to one key of the file.
enum Plan {
    Import(&'static str),
    Skip(&'static str),
    Expired,
}

fn plan(k: &Key<'_>, now: i64) -> Plan {
    if k.decoded.is_none() {
        return Plan::Skip(type_name(k.rdb_type));
    }
    if k.expire_ms.is_some_and(|at| at <= now) {
        return Plan::Expired;
    }
    Plan::Import(type_name(k.rdb_type))
}

/// Imports RDB file `path` into the data directory of `config` (see the module docs).
///
/// # Errors
/// When the file cannot be read or is invalid (nothing written), or a write fails.
pub fn import_rdb(mut config: Config, path: &Path) -> Result<ImportSummary, ImportError> {
    let bytes = std::fs::read(path).map_err(ImportError::Io)?;
    let now = crate::client::now_ms() as i64;
    let databases = config.databases as u64;
    let mut summary = ImportSummary::default();
    let walked = file::walk(&bytes, |k| {
        if k.db >= databases {
            return Err(ImportError::Invalid(format!(
                "a key in database {}, and `databases` is {databases}",
                k.db
            )));
        }
        match plan(&k, now) {
            Plan::Import(kind) => *summary.imported.entry((k.db, kind)).or_default() += 1,
            Plan::Skip(kind) => *summary.skipped.entry(kind).or_default() += 1,
            Plan::Expired => summary.expired += 1,
        }
        Ok(())
    })?;
    summary.version = walked.version;
    summary.functions = walked.functions;
    summary.module_aux = walked.module_aux;
    // A stream's payload may be as large as the file: the session takes it as one argument.
    config.proto_max_bulk_len = config.proto_max_bulk_len.max(bytes.len() as u64 + 1024);
    config.client_query_buffer_limit = config
        .client_query_buffer_limit
        .max(2 * bytes.len() as u64 + 1024);
    let server = Embedded::open(config).map_err(|e| ImportError::Write(e.to_string()))?;
    let mut session = server.session();
    let mut db = None;
    file::walk(&bytes, |k| {
        if !matches!(plan(&k, now), Plan::Import(_)) {
            return Ok(());
        }
        if db != Some(k.db) {
            call(&mut session, &[b"SELECT", k.db.to_string().as_bytes()])?;
            db = Some(k.db);
        }
        let payload = payload(k.rdb_type, k.value, walked.version);
        let ttl = k.expire_ms.unwrap_or(0).to_string();
        let mut args: Vec<&[u8]> = vec![b"RESTORE", &k.name, ttl.as_bytes(), &payload];
        args.extend_from_slice(&[b"REPLACE", b"ABSTTL"]);
        let freq = k.freq.map(|f| f.to_string());
        let idle = k.idle.map(|i| i.to_string());
        if let Some(f) = &freq {
            args.extend_from_slice(&[b"FREQ", f.as_bytes()]);
        } else if let Some(i) = &idle {
            args.extend_from_slice(&[b"IDLETIME", i.as_bytes()]);
        }
        call(&mut session, &args)
    })?;
    call(&mut session, &[b"SAVE"])?;
    Ok(summary)
}

/// A DUMP payload of one value of the file: its type, its bytes, the file's version and the
/// checksum over them.
fn payload(rdb_type: u8, value: &[u8], version: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(value.len() + 11);
    p.push(rdb_type);
    p.extend_from_slice(value);
    p.extend_from_slice(&version.to_le_bytes());
    let crc = crate::rdb::crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

/// Runs one command in `session`; anything but `+OK` is a failed write.
fn call(session: &mut Session, args: &[&[u8]]) -> Result<(), ImportError> {
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a);
        req.extend_from_slice(b"\r\n");
    }
    session.feed(&req);
    let out: Bytes = session.take_output();
    if &out[..] != b"+OK\r\n" {
        let name = String::from_utf8_lossy(args.first().copied().unwrap_or_default());
        return Err(ImportError::Write(format!(
            "{name} answered {}",
            String::from_utf8_lossy(&out).trim_end()
        )));
    }
    Ok(())
}
