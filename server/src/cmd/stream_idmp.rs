//! Idempotent producers (Redis 8.6 / 8.8): XADD's `IDMP pid iid` / `IDMPAUTO pid` option,
//! XCFGSET (a stream's IDMP settings) and XIDMPRECORD (an internal command mapping a
//! producer's idempotent ID to an existing entry). The semantics are
//! `brooklet_streams::Stream::add_idempotent`, `set_idmp_config` and `idmp_record`.

use bytes::Bytes;

use brooklet_resp::{Args, Reply};
use brooklet_streams::{
    IDMP_DURATION_MAX, IDMP_MAXSIZE_MAX, IdmpKey, RefPolicy, Retention, StreamId,
};

use super::table::command;
use super::table::flags::*;
use super::write::Missing;
use super::{CommandSpec, Ctx};
use crate::client::now_ms;
use crate::error::CommandError;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[
    command("xcfgset", -2, WRITE | FAST, (1, 1, 1), xcfgset),
    command(
        "xidmprecord",
        5,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        xidmprecord,
    ),
];

/// A second IDMP or IDMPAUTO in one XADD.
const IDMP_TWICE: CommandError = CommandError::msg("ERR IDMP/IDMPAUTO specified multiple times");
/// IDMP with an empty producer ID.
const IDMP_EMPTY_PID: CommandError = CommandError::msg("ERR IDMP requires a non-empty producer ID");
/// IDMP with an empty idempotent ID.
const IDMP_EMPTY_IID: CommandError =
    CommandError::msg("ERR IDMP requires a non-empty idempotent ID");
/// IDMPAUTO with an empty producer ID.
const IDMPAUTO_EMPTY_PID: CommandError =
    CommandError::msg("ERR IDMPAUTO requires a non-empty producer ID");
/// IDMP / IDMPAUTO with an ID other than `*`.
pub(crate) const IDMP_NEEDS_AUTO_ID: CommandError =
    CommandError::msg("ERR IDMP/IDMPAUTO can be used only with auto-generated IDs");
/// XCFGSET / XIDMPRECORD on a missing key.
const NO_SUCH_KEY: CommandError = CommandError::msg("ERR no such key");
/// XCFGSET without a setting.
const CFG_NOTHING: CommandError = CommandError::msg("ERR At least one parameter must be specified");
/// IDMP-DURATION out of range.
const CFG_DURATION_RANGE: CommandError =
    CommandError::msg("ERR IDMP-DURATION must be between 1 and 86400 seconds");
/// MAXAGE below zero (worded as XADD's MAXLEN below zero).
const CFG_MAXAGE_NEGATIVE: CommandError =
    CommandError::msg("ERR The MAXAGE argument must be >= 0.");
/// IDMP-MAXSIZE out of range.
const CFG_MAXSIZE_RANGE: CommandError =
    CommandError::msg("ERR IDMP-MAXSIZE must be between 1 and 10000 entries");

/// Takes XADD's `IDMP pid iid` or `IDMPAUTO pid` at the cursor into `slot`, if the next
/// word is one with its arguments after it; returns whether it took one.
pub(crate) fn eat_idmp<'a>(
    args: &mut Args<'a>,
    slot: &mut Option<IdmpKey<'a>>,
) -> Result<bool, CommandError> {
    let Some(word) = args.peek() else {
        return Ok(false);
    };
    let explicit = args.remaining() > 2 && word.eq_ignore_ascii_case(b"IDMP");
    let auto = args.remaining() > 1 && word.eq_ignore_ascii_case(b"IDMPAUTO");
    if !explicit && !auto {
        return Ok(false);
    }
    if slot.is_some() {
        return Err(IDMP_TWICE);
    }
    args.next_bytes()?;
    let pid = args.next_bytes()?;
    if explicit {
        if pid.is_empty() {
            return Err(IDMP_EMPTY_PID);
        }
        let iid = args.next_bytes()?;
        if iid.is_empty() {
            return Err(IDMP_EMPTY_IID);
        }
        *slot = Some(IdmpKey::Explicit { pid, iid });
    } else {
        if pid.is_empty() {
            return Err(IDMPAUTO_EMPTY_PID);
        }
        *slot = Some(IdmpKey::Auto { pid });
    }
    Ok(true)
}

/// XCFGSET's arguments.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct XCfgSetArgs<'a> {
    /// The stream's key.
    pub key: &'a Bytes,
    /// IDMP-DURATION, seconds.
    pub duration: Option<u32>,
    /// IDMP-MAXSIZE.
    pub maxsize: Option<u32>,
    /// MAXAGE ms [KEEPREF|DELREF|ACKED] (a Brooklet extension; 0 turns retention off).
    pub retention: Option<Retention>,
}

impl<'a> XCfgSetArgs<'a> {
    /// # Format
    /// `key [IDMP-DURATION duration] [IDMP-MAXSIZE maxsize] [MAXAGE ms
    /// [KEEPREF|DELREF|ACKED]]`, after the command name; each value is checked as it is
    /// read.
    pub fn parse(args: &mut Args<'a>) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        if args.is_empty() {
            return Err(CFG_NOTHING);
        }
        let mut duration = None;
        let mut maxsize = None;
        let mut retention = None;
        while !args.is_empty() {
            let more = args.remaining() > 1;
            if more && args.eat_keyword("IDMP-DURATION") {
                let n = args.next_i64()?;
                if !(1..=i64::from(IDMP_DURATION_MAX)).contains(&n) {
                    return Err(CFG_DURATION_RANGE);
                }
                duration = Some(n as u32);
            } else if more && args.eat_keyword("IDMP-MAXSIZE") {
                let n = args.next_i64()?;
                if !(1..=i64::from(IDMP_MAXSIZE_MAX)).contains(&n) {
                    return Err(CFG_MAXSIZE_RANGE);
                }
                maxsize = Some(n as u32);
            } else if more && args.eat_keyword("MAXAGE") {
                let n = args.next_i64()?;
                if n < 0 {
                    return Err(CFG_MAXAGE_NEGATIVE);
                }
                let policy = [
                    ("KEEPREF", RefPolicy::KeepRef),
                    ("DELREF", RefPolicy::DelRef),
                    ("ACKED", RefPolicy::Acked),
                ]
                .into_iter()
                .find(|(w, _)| args.eat_keyword(w))
                .map_or(RefPolicy::KeepRef, |(_, p)| p);
                retention = Some(Retention {
                    max_age: n as u64,
                    policy,
                });
            } else {
                return Err(CommandError::syntax());
            }
        }
        Ok(XCfgSetArgs {
            key,
            duration,
            maxsize,
            retention,
        })
    }
}

/// XCFGSET: sets a stream's IDMP settings (a change forgets every remembered ID) and its
/// retention (MAXAGE, which the retention task then applies).
fn xcfgset(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = XCfgSetArgs::parse(&mut Args::new(&argv[1..]))?;
    let shared = ctx.shared;
    let db = ctx.client.db;
    ctx.write_stream(a.key, Missing::Fail(&|| NO_SUCH_KEY), |s, out, fx| {
        let mut changed = s.set_idmp_config(a.duration, a.maxsize, out);
        if let Some(r) = a.retention {
            changed |= s.set_retention(r, out);
            if s.retention().is_on() {
                // Under the shard lock, so the task cannot drop it from the set meanwhile.
                shared.retention.add(db, a.key);
            }
        }
        if changed {
            fx.changed("xcfgset");
        }
        Ok(())
    })?;
    Ok(Reply::Ok)
}

/// XIDMPRECORD's arguments.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct XIdmpRecordArgs<'a> {
    /// The stream's key.
    pub key: &'a Bytes,
    /// Producer ID.
    pub pid: &'a Bytes,
    /// Idempotent ID.
    pub iid: &'a Bytes,
    /// The entry.
    pub id: StreamId,
}

impl<'a> XIdmpRecordArgs<'a> {
    /// # Format
    /// `key pid iid stream-id`, after the command name (the arity is checked before).
    pub fn parse(args: &mut Args<'a>) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let pid = args.next_bytes()?;
        let iid = args.next_bytes()?;
        if pid.is_empty() {
            return Err(IDMP_EMPTY_PID);
        }
        if iid.is_empty() {
            return Err(IDMP_EMPTY_IID);
        }
        let id = StreamId::parse(args.next_bytes()?)?;
        args.finish()?;
        Ok(XIdmpRecordArgs { key, pid, iid, id })
    }
}

/// XIDMPRECORD: maps a producer's idempotent ID to an existing entry (what an AOF rewrite
/// emits to restore IDMP state).
fn xidmprecord(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = XIdmpRecordArgs::parse(&mut Args::new(&argv[1..]))?;
    let now = now_ms();
    ctx.write_stream(a.key, Missing::Fail(&|| NO_SUCH_KEY), |s, out, fx| {
        s.idmp_record(a.pid, a.iid, a.id, now, out)?;
        if !out.is_empty() {
            fx.changed("xidmprecord");
        }
        Ok(())
    })?;
    Ok(Reply::Ok)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::from(w.replace("''", "")))
            .collect()
    }

    fn retention(line: &str) -> Result<Option<Retention>, String> {
        let v = argv(line);
        XCfgSetArgs::parse(&mut Args::new(&v))
            .map(|a| a.retention)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn xcfgset_maxage_parses_and_reports_texts() {
        let r = |max_age, policy| Ok(Some(Retention { max_age, policy }));
        assert_eq!(retention("k MAXAGE 1000"), r(1000, RefPolicy::KeepRef));
        assert_eq!(retention("k maxage 0"), r(0, RefPolicy::KeepRef));
        assert_eq!(retention("k MAXAGE 5 acked"), r(5, RefPolicy::Acked));
        assert_eq!(retention("k MAXAGE 5 DELREF"), r(5, RefPolicy::DelRef));
        assert_eq!(
            retention("k MAXAGE 5 KEEPREF IDMP-MAXSIZE 3"),
            r(5, RefPolicy::KeepRef)
        );
        assert_eq!(
            retention("k IDMP-DURATION 5 MAXAGE 7 ACKED IDMP-MAXSIZE 3"),
            r(7, RefPolicy::Acked)
        );
        assert_eq!(retention("k IDMP-DURATION 5"), Ok(None));
        for bad in ["k MAXAGE", "k MAXAGE 5 ACKED DELREF", "k MAXAGE 5 NONE"] {
            assert_eq!(retention(bad).unwrap_err(), "ERR syntax error", "{bad}");
        }
        for bad in ["k MAXAGE x", "k MAXAGE 1.5", "k MAXAGE ACKED"] {
            assert_eq!(retention(bad).unwrap_err(), NOT_INT, "{bad}");
        }
        assert_eq!(
            retention("k MAXAGE -1").unwrap_err(),
            "ERR The MAXAGE argument must be >= 0."
        );
    }

    fn cfg(line: &str) -> Result<(Option<u32>, Option<u32>), String> {
        let v = argv(line);
        XCfgSetArgs::parse(&mut Args::new(&v))
            .map(|a| (a.duration, a.maxsize))
            .map_err(|e| e.to_string())
    }

    fn idmp(line: &str) -> Result<Option<String>, String> {
        let v = argv(line);
        let mut args = Args::new(&v);
        let mut slot = None;
        while eat_idmp(&mut args, &mut slot).map_err(|e| e.to_string())? {}
        Ok(slot.map(|k| format!("{k:?}")))
    }

    const NOT_INT: &str = "ERR value is not an integer or out of range";

    #[test]
    fn xcfgset_parses_and_reports_redis_texts() {
        assert_eq!(cfg("k IDMP-DURATION 5"), Ok((Some(5), None)));
        assert_eq!(
            cfg("k idmp-maxsize 3 IDMP-DURATION 60"),
            Ok((Some(60), Some(3)))
        );
        assert_eq!(cfg("k IDMP-DURATION 86400"), Ok((Some(86400), None)));
        assert_eq!(cfg("k IDMP-MAXSIZE 10000"), Ok((None, Some(10000))));
        assert_eq!(
            cfg("k").unwrap_err(),
            "ERR At least one parameter must be specified"
        );
        for bad in [
            "k IDMP-DURATION",
            "k IDMP-MAXSIZE",
            "k INVALID",
            "k IDMP-DURATION 5 x",
        ] {
            assert_eq!(cfg(bad).unwrap_err(), "ERR syntax error", "{bad}");
        }
        for bad in [
            "k IDMP-DURATION A",
            "k IDMP-DURATION *",
            "k IDMP-DURATION 120-5",
            "k IDMP-DURATION 3.14",
            "k IDMP-DURATION 000000000",
            "k IDMP-DURATION IDMP-DURATION IDMP-DURATION",
            "k IDMP-MAXSIZE +",
            "k IDMP-DURATION INVALID IDMP-MAXSIZE",
            "k IDMP-MAXSIZE INVALID IDMP-DURATION",
        ] {
            assert_eq!(cfg(bad).unwrap_err(), NOT_INT, "{bad}");
        }
        for bad in [
            "k IDMP-DURATION 0",
            "k IDMP-DURATION -100",
            "k IDMP-DURATION 86401",
        ] {
            assert_eq!(
                cfg(bad).unwrap_err(),
                "ERR IDMP-DURATION must be between 1 and 86400 seconds",
                "{bad}"
            );
        }
        for bad in [
            "k IDMP-MAXSIZE 0",
            "k IDMP-MAXSIZE -50",
            "k IDMP-MAXSIZE 10001",
        ] {
            assert_eq!(
                cfg(bad).unwrap_err(),
                "ERR IDMP-MAXSIZE must be between 1 and 10000 entries",
                "{bad}"
            );
        }
    }

    #[test]
    fn idmp_option_parses_and_reports_redis_texts() {
        assert_eq!(
            idmp("IDMP p1 i1").unwrap(),
            Some(format!(
                "{:?}",
                IdmpKey::Explicit {
                    pid: b"p1",
                    iid: b"i1"
                }
            ))
        );
        assert_eq!(
            idmp("idmpauto p1").unwrap(),
            Some(format!("{:?}", IdmpKey::Auto { pid: b"p1" }))
        );
        assert_eq!(idmp("IDMP p1").unwrap(), None);
        let twice = "ERR IDMP/IDMPAUTO specified multiple times";
        assert_eq!(idmp("IDMP p1 i1 IDMP p2 i2").unwrap_err(), twice);
        assert_eq!(idmp("IDMPAUTO p1 IDMP p2 i2").unwrap_err(), twice);
        assert_eq!(idmp("IDMP p1 i1 IDMPAUTO p2").unwrap_err(), twice);
        assert_eq!(idmp("IDMPAUTO p1 IDMPAUTO p2").unwrap_err(), twice);
        assert_eq!(
            idmp("IDMP '' i1").unwrap_err(),
            "ERR IDMP requires a non-empty producer ID"
        );
        assert_eq!(
            idmp("IDMP p1 ''").unwrap_err(),
            "ERR IDMP requires a non-empty idempotent ID"
        );
        assert_eq!(
            idmp("IDMPAUTO ''").unwrap_err(),
            "ERR IDMPAUTO requires a non-empty producer ID"
        );
    }

    #[test]
    fn xadd_with_idmp_parses_and_reports_redis_texts() {
        use super::super::stream::XAddArgs;
        let xadd = |line: &str| {
            let v = argv(line);
            XAddArgs::parse(&mut Args::new(&v))
                .map(|a| format!("{:?} {:?}", a.idmp, a.trim.map(|t| t.strategy)))
                .map_err(|e| e.to_string())
        };
        for ok in [
            "k IDMP p1 r MAXLEN ~ 100 * f v",
            "k MAXLEN ~ 100 IDMP p1 r * f v",
            "k NOMKSTREAM IDMPAUTO p1 MAXLEN 5 * f v",
            "k IDMP p1 * * f v",
            "k IDMP p1 IDMP * f v",
        ] {
            assert!(xadd(ok).is_ok(), "{ok}: {:?}", xadd(ok));
        }
        let auto_only = "ERR IDMP/IDMPAUTO can be used only with auto-generated IDs";
        for (line, want) in [
            (
                "k IDMP p1 * f v",
                "ERR Invalid stream ID specified as stream command argument",
            ),
            ("k IDMP p1 iid1 1-1 f v", auto_only),
            ("k IDMPAUTO p1 1-1 f v", auto_only),
            ("k IDMPAUTO p1 1-* f v", auto_only),
            ("k IDMPAUTO p1 0-0 f v", auto_only),
            (
                "k IDMP p1 i IDMP p2 j * f v",
                "ERR IDMP/IDMPAUTO specified multiple times",
            ),
            (
                "k IDMPAUTO p1 * f",
                "ERR wrong number of arguments for 'xadd' command",
            ),
        ] {
            assert_eq!(xadd(line).unwrap_err(), want, "{line}");
        }
    }

    #[test]
    fn xidmprecord_parses_and_reports_texts() {
        let parse = |line: &str| {
            let v = argv(line);
            XIdmpRecordArgs::parse(&mut Args::new(&v))
                .map(|a| a.id)
                .map_err(|e| e.to_string())
        };
        assert_eq!(parse("k p i 1-2"), Ok(StreamId::new(1, 2)));
        assert_eq!(
            parse("k p i *").unwrap_err(),
            "ERR Invalid stream ID specified as stream command argument"
        );
        assert_eq!(
            parse("k '' i 1-1").unwrap_err(),
            "ERR IDMP requires a non-empty producer ID"
        );
        assert_eq!(
            parse("k p '' 1-1").unwrap_err(),
            "ERR IDMP requires a non-empty idempotent ID"
        );
    }
}
