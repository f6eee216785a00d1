//! A randomized differential test: seeded random sequences of XADD / XDEL / XTRIM / XGROUP /
//! XREADGROUP / XACK / XCLAIM / XAUTOCLAIM / XPENDING against the server and against a small
//! reference model kept in plain ordered maps, comparing every reply.
//!
//! The seed is printed (shown when the test fails); rerun one with `STREAMS_SEED=<n>`.
//! Only exact trims and explicit IDs are generated, so every reply is deterministic (idle
//! times, the one clock-dependent field, are left out of the comparison).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use brooklet::TestServer;
use redis::{Value, cmd};

/// splitmix64: small, seedable, good enough to pick commands.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

type Id = (u64, u64);

fn id_str(id: Id) -> String {
    format!("{}-{}", id.0, id.1)
}

#[derive(Default, Clone)]
struct Group {
    last: Id,
    /// id -> (consumer, delivery count)
    pel: BTreeMap<Id, (String, i64)>,
    consumers: BTreeSet<String>,
}

#[derive(Default, Clone)]
struct Stream {
    entries: BTreeMap<Id, String>,
    last: Id,
    groups: BTreeMap<String, Group>,
}

/// What a reply should be: a value, or an error line.
type Expect = Result<Value, String>;

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

fn entry(id: Id, value: &str) -> Value {
    Value::Array(vec![
        bulk(&id_str(id)),
        Value::Array(vec![bulk("f"), bulk(value)]),
    ])
}

const TOP_ITEM: &str =
    "ERR The ID specified in XADD is equal or smaller than the target stream top item";
const KEY_MISSING: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";

#[derive(Default)]
struct Model {
    keys: BTreeMap<String, Stream>,
}

impl Model {
    fn xadd(&mut self, key: &str, id: Id, value: &str, maxlen: Option<usize>) -> Expect {
        let s = self.keys.get(key).cloned().unwrap_or_default();
        if id <= s.last {
            return Err(TOP_ITEM.into());
        }
        let s = self.keys.entry(key.into()).or_default();
        s.entries.insert(id, value.into());
        s.last = id;
        if let Some(max) = maxlen {
            while s.entries.len() > max {
                s.entries.pop_first();
            }
        }
        Ok(bulk(&id_str(id)))
    }

    fn xdel(&mut self, key: &str, ids: &[Id]) -> Expect {
        let Some(s) = self.keys.get_mut(key) else {
            return Ok(Value::Int(0));
        };
        let n = ids
            .iter()
            .filter(|id| s.entries.remove(id).is_some())
            .count();
        Ok(Value::Int(n as i64))
    }

    fn xtrim(&mut self, key: &str, maxlen: Option<usize>, minid: Option<Id>) -> Expect {
        let Some(s) = self.keys.get_mut(key) else {
            return Ok(Value::Int(0));
        };
        let before = s.entries.len();
        if let Some(max) = maxlen {
            while s.entries.len() > max {
                s.entries.pop_first();
            }
        }
        if let Some(min) = minid {
            s.entries.retain(|id, _| *id >= min);
        }
        Ok(Value::Int((before - s.entries.len()) as i64))
    }

    fn range(&self, key: &str) -> Expect {
        Ok(Value::Array(
            self.keys
                .get(key)
                .map(|s| s.entries.iter().map(|(id, v)| entry(*id, v)).collect())
                .unwrap_or_default(),
        ))
    }

    fn create(&mut self, key: &str, group: &str, start: Option<Id>, mkstream: bool) -> Expect {
        if !self.keys.contains_key(key) {
            if !mkstream {
                return Err(KEY_MISSING.into());
            }
            self.keys.insert(key.into(), Stream::default());
        }
        let s = self.keys.get_mut(key).unwrap();
        if s.groups.contains_key(group) {
            return Err("BUSYGROUP Consumer Group name already exists".into());
        }
        let last = start.unwrap_or(s.last);
        s.groups.insert(
            group.into(),
            Group {
                last,
                ..Group::default()
            },
        );
        Ok(Value::Okay)
    }

    fn group_mut(&mut self, key: &str, group: &str) -> Result<&mut Group, String> {
        let s = self.keys.get_mut(key).ok_or(KEY_MISSING)?;
        s.groups
            .get_mut(group)
            .ok_or_else(|| format!("NOGROUP No such consumer group '{group}' for key name '{key}'"))
    }

    fn destroy(&mut self, key: &str, group: &str) -> Expect {
        let s = self.keys.get_mut(key).ok_or(KEY_MISSING)?;
        Ok(Value::Int(i64::from(s.groups.remove(group).is_some())))
    }

    fn setid(&mut self, key: &str, group: &str, id: Id) -> Expect {
        self.group_mut(key, group)?.last = id;
        Ok(Value::Okay)
    }

    fn createconsumer(&mut self, key: &str, group: &str, consumer: &str) -> Expect {
        let g = self.group_mut(key, group)?;
        Ok(Value::Int(i64::from(g.consumers.insert(consumer.into()))))
    }

    fn delconsumer(&mut self, key: &str, group: &str, consumer: &str) -> Expect {
        let g = self.group_mut(key, group)?;
        g.consumers.remove(consumer);
        let before = g.pel.len();
        g.pel.retain(|_, (c, _)| c != consumer);
        Ok(Value::Int((before - g.pel.len()) as i64))
    }

    fn no_key_or_group(key: &str, group: &str) -> String {
        format!("NOGROUP No such key '{key}' or consumer group '{group}'")
    }

    fn xreadgroup(
        &mut self,
        key: &str,
        group: &str,
        consumer: &str,
        count: usize,
        new: bool,
    ) -> Expect {
        let Some(s) = self.keys.get_mut(key) else {
            return Err(format!(
                "{} in XREADGROUP with GROUP option",
                Self::no_key_or_group(key, group)
            ));
        };
        let entries = s.entries.clone();
        let Some(g) = s.groups.get_mut(group) else {
            return Err(format!(
                "{} in XREADGROUP with GROUP option",
                Self::no_key_or_group(key, group)
            ));
        };
        g.consumers.insert(consumer.into());
        let mut out = Vec::new();
        if new {
            let fresh: Vec<(Id, String)> = entries
                .range((g.last.0, g.last.1 + 1)..)
                .filter(|(id, _)| **id > g.last)
                .take(count)
                .map(|(id, v)| (*id, v.clone()))
                .collect();
            if fresh.is_empty() {
                return Ok(Value::Nil);
            }
            for (id, v) in fresh {
                g.last = id;
                g.pel.insert(id, (consumer.into(), 1));
                out.push(entry(id, &v));
            }
        } else {
            let mine: Vec<Id> = g
                .pel
                .iter()
                .filter(|(_, (c, _))| c == consumer)
                .map(|(id, _)| *id)
                .filter(|id| *id > (0, 0))
                .take(count)
                .collect();
            for id in mine {
                match entries.get(&id) {
                    Some(v) => {
                        g.pel.get_mut(&id).unwrap().1 += 1;
                        out.push(entry(id, v));
                    }
                    None => out.push(Value::Array(vec![bulk(&id_str(id)), Value::Nil])),
                }
            }
        }
        Ok(Value::Array(vec![Value::Array(vec![
            bulk(key),
            Value::Array(out),
        ])]))
    }

    fn xack(&mut self, key: &str, group: &str, ids: &[Id]) -> Expect {
        let Some(g) = self.keys.get_mut(key).and_then(|s| s.groups.get_mut(group)) else {
            return Ok(Value::Int(0));
        };
        let n = ids.iter().filter(|id| g.pel.remove(id).is_some()).count();
        Ok(Value::Int(n as i64))
    }

    fn xclaim(
        &mut self,
        key: &str,
        group: &str,
        consumer: &str,
        ids: &[Id],
        justid: bool,
    ) -> Expect {
        let Some(s) = self.keys.get_mut(key) else {
            return Err(Self::no_key_or_group(key, group));
        };
        let entries = s.entries.clone();
        let Some(g) = s.groups.get_mut(group) else {
            return Err(Self::no_key_or_group(key, group));
        };
        g.consumers.insert(consumer.into());
        let mut out = Vec::new();
        for id in ids {
            let Some(v) = entries.get(id) else {
                g.pel.remove(id);
                continue;
            };
            let Some(nack) = g.pel.get_mut(id) else {
                continue;
            };
            nack.0 = consumer.into();
            if !justid {
                nack.1 += 1;
            }
            out.push(if justid {
                bulk(&id_str(*id))
            } else {
                entry(*id, v)
            });
        }
        Ok(Value::Array(out))
    }

    fn xautoclaim(
        &mut self,
        key: &str,
        group: &str,
        consumer: &str,
        start: Id,
        count: usize,
        justid: bool,
    ) -> Expect {
        let Some(s) = self.keys.get_mut(key) else {
            return Err(Self::no_key_or_group(key, group));
        };
        let entries = s.entries.clone();
        let Some(g) = s.groups.get_mut(group) else {
            return Err(Self::no_key_or_group(key, group));
        };
        g.consumers.insert(consumer.into());
        let candidates: Vec<Id> = g.pel.range(start..).map(|(id, _)| *id).collect();
        let mut left = count;
        let mut next = (0, 0);
        let (mut claimed, mut deleted) = (Vec::new(), Vec::new());
        for id in candidates {
            if left == 0 {
                next = id;
                break;
            }
            left -= 1;
            match entries.get(&id) {
                None => {
                    g.pel.remove(&id);
                    deleted.push(bulk(&id_str(id)));
                }
                Some(v) => {
                    let nack = g.pel.get_mut(&id).unwrap();
                    nack.0 = consumer.into();
                    if !justid {
                        nack.1 += 1;
                    }
                    claimed.push(if justid {
                        bulk(&id_str(id))
                    } else {
                        entry(id, v)
                    });
                }
            }
        }
        Ok(Value::Array(vec![
            bulk(&id_str(next)),
            Value::Array(claimed),
            Value::Array(deleted),
        ]))
    }

    fn pending_summary(&self, key: &str, group: &str) -> Expect {
        let g = self
            .keys
            .get(key)
            .and_then(|s| s.groups.get(group))
            .ok_or_else(|| Self::no_key_or_group(key, group))?;
        if g.pel.is_empty() {
            return Ok(Value::Array(vec![
                Value::Int(0),
                Value::Nil,
                Value::Nil,
                Value::Nil,
            ]));
        }
        let mut per: BTreeMap<&str, usize> = BTreeMap::new();
        for (c, _) in g.pel.values() {
            *per.entry(c).or_default() += 1;
        }
        Ok(Value::Array(vec![
            Value::Int(g.pel.len() as i64),
            bulk(&id_str(*g.pel.keys().next().unwrap())),
            bulk(&id_str(*g.pel.keys().next_back().unwrap())),
            Value::Array(
                per.into_iter()
                    .map(|(c, n)| Value::Array(vec![bulk(c), bulk(&n.to_string())]))
                    .collect(),
            ),
        ]))
    }

    /// XPENDING key group - + 1000 with the idle time (clock-dependent) replaced by 0.
    fn pending_extended(&self, key: &str, group: &str) -> Expect {
        let g = self
            .keys
            .get(key)
            .and_then(|s| s.groups.get(group))
            .ok_or_else(|| Self::no_key_or_group(key, group))?;
        Ok(Value::Array(
            g.pel
                .iter()
                .map(|(id, (c, n))| {
                    Value::Array(vec![
                        bulk(&id_str(*id)),
                        bulk(c),
                        Value::Int(0),
                        Value::Int(*n),
                    ])
                })
                .collect(),
        ))
    }
}

/// A RESP3 reply in its RESP2 shape: a map becomes an array of `[key, value]` pairs (the
/// shape XREADGROUP has in RESP2), recursively.
fn as_resp2(v: Value) -> Value {
    match v {
        Value::Map(pairs) => Value::Array(
            pairs
                .into_iter()
                .map(|(k, v)| Value::Array(vec![as_resp2(k), as_resp2(v)]))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(as_resp2).collect()),
        other => other,
    }
}

/// Replaces the idle field of an extended XPENDING reply by 0.
fn zero_idle(v: Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| match item {
                    Value::Array(mut f) if f.len() == 4 => {
                        f[2] = Value::Int(0);
                        Value::Array(f)
                    }
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

fn query(c: &mut redis::Connection, args: &[String]) -> Expect {
    let mut command = cmd(&args[0]);
    for a in &args[1..] {
        command.arg(a.as_str());
    }
    command
        .query::<Value>(c)
        .map_err(|e| match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            _ => e.to_string(),
        })
}

const KEYS: &[&str] = &["k0", "k1"];
const GROUPS: &[&str] = &["g0", "g1"];
const CONSUMERS: &[&str] = &["c0", "c1", "c2"];

fn random_id(rng: &mut Rng, model: &Model, key: &str) -> Id {
    let s = model.keys.get(key);
    if let Some(s) = s
        && !s.entries.is_empty()
        && rng.below(3) > 0
    {
        let ids: Vec<Id> = s.entries.keys().copied().collect();
        return *rng.pick(&ids);
    }
    let top = s.map_or(0, |s| s.last.0);
    (rng.below(top + 3), rng.below(3))
}

fn run_seed(seed: u64, steps: usize) {
    // Odd seeds speak RESP3, even ones RESP2.
    let resp3 = seed % 2 == 1;
    eprintln!("streams model: seed {seed}, resp3 {resp3} (rerun with STREAMS_SEED={seed})");
    let server = TestServer::start();
    let mut c = server.client(resp3);
    let mut rng = Rng(seed);
    let mut model = Model::default();
    for step in 0..steps {
        let key = *rng.pick(KEYS);
        let group = *rng.pick(GROUPS);
        let consumer = *rng.pick(CONSUMERS);
        let mut args: Vec<String> = Vec::new();
        let mut a = |s: &str| args.push(s.to_string());
        let mut compare_idle = true;
        let expect = match rng.below(16) {
            0..=3 => {
                let last = model.keys.get(key).map_or((0, 0), |s| s.last);
                let id = if rng.below(10) == 0 {
                    (rng.below(last.0 + 1), rng.below(3))
                } else {
                    (
                        last.0 + rng.below(3),
                        if rng.below(2) == 0 { last.1 + 1 } else { 0 },
                    )
                };
                let id = if id == (0, 0) { (0, 1) } else { id };
                let value = step.to_string();
                a("XADD");
                a(key);
                let maxlen = (rng.below(4) == 0).then(|| rng.below(6) as usize);
                if let Some(m) = maxlen {
                    a("MAXLEN");
                    a("=");
                    a(&m.to_string());
                }
                a(&id_str(id));
                a("f");
                a(&value);
                model.xadd(key, id, &value, maxlen)
            }
            4 => {
                let ids: Vec<Id> = (0..=rng.below(2))
                    .map(|_| random_id(&mut rng, &model, key))
                    .collect();
                a("XDEL");
                a(key);
                ids.iter().for_each(|id| a(&id_str(*id)));
                model.xdel(key, &ids)
            }
            5 => {
                a("XTRIM");
                a(key);
                if rng.below(2) == 0 {
                    let m = rng.below(8) as usize;
                    a("MAXLEN");
                    a(&m.to_string());
                    model.xtrim(key, Some(m), None)
                } else {
                    let id = random_id(&mut rng, &model, key);
                    a("MINID");
                    a(&id_str(id));
                    model.xtrim(key, None, Some(id))
                }
            }
            6 => {
                a("XRANGE");
                a(key);
                a("-");
                a("+");
                model.range(key)
            }
            7 => match rng.below(6) {
                0 | 1 => {
                    a("XGROUP");
                    a("CREATE");
                    a(key);
                    a(group);
                    let start = if rng.below(2) == 0 {
                        a("$");
                        None
                    } else {
                        a("0");
                        Some((0, 0))
                    };
                    let mkstream = rng.below(2) == 0;
                    if mkstream {
                        a("MKSTREAM");
                    }
                    model.create(key, group, start, mkstream)
                }
                2 => {
                    a("XGROUP");
                    a("DESTROY");
                    a(key);
                    a(group);
                    model.destroy(key, group)
                }
                3 => {
                    let id = random_id(&mut rng, &model, key);
                    a("XGROUP");
                    a("SETID");
                    a(key);
                    a(group);
                    a(&id_str(id));
                    model.setid(key, group, id)
                }
                4 => {
                    a("XGROUP");
                    a("CREATECONSUMER");
                    a(key);
                    a(group);
                    a(consumer);
                    model.createconsumer(key, group, consumer)
                }
                _ => {
                    a("XGROUP");
                    a("DELCONSUMER");
                    a(key);
                    a(group);
                    a(consumer);
                    model.delconsumer(key, group, consumer)
                }
            },
            8..=10 => {
                let count = 1 + rng.below(3) as usize;
                let new = rng.below(3) > 0;
                for s in [
                    "XREADGROUP",
                    "GROUP",
                    group,
                    consumer,
                    "COUNT",
                    &count.to_string(),
                    "STREAMS",
                    key,
                    if new { ">" } else { "0" },
                ] {
                    a(s);
                }
                model.xreadgroup(key, group, consumer, count, new)
            }
            11 => {
                let ids: Vec<Id> = (0..=rng.below(2))
                    .map(|_| random_id(&mut rng, &model, key))
                    .collect();
                a("XACK");
                a(key);
                a(group);
                ids.iter().for_each(|id| a(&id_str(*id)));
                model.xack(key, group, &ids)
            }
            12 => {
                let mut ids: Vec<Id> = (0..=rng.below(2))
                    .map(|_| random_id(&mut rng, &model, key))
                    .collect();
                ids.sort();
                ids.dedup();
                let justid = rng.below(2) == 0;
                for s in ["XCLAIM", key, group, consumer, "0"] {
                    a(s);
                }
                ids.iter().for_each(|id| a(&id_str(*id)));
                if justid {
                    a("JUSTID");
                }
                model.xclaim(key, group, consumer, &ids, justid)
            }
            13 => {
                let start = random_id(&mut rng, &model, key);
                let count = 1 + rng.below(3) as usize;
                let justid = rng.below(2) == 0;
                for s in [
                    "XAUTOCLAIM",
                    key,
                    group,
                    consumer,
                    "0",
                    &id_str(start),
                    "COUNT",
                    &count.to_string(),
                ] {
                    a(s);
                }
                if justid {
                    a("JUSTID");
                }
                model.xautoclaim(key, group, consumer, start, count, justid)
            }
            14 => {
                a("XPENDING");
                a(key);
                a(group);
                model.pending_summary(key, group)
            }
            _ => {
                for s in ["XPENDING", key, group, "-", "+", "1000"] {
                    a(s);
                }
                compare_idle = false;
                model.pending_extended(key, group)
            }
        };
        let mut got = query(&mut c, &args).map(as_resp2);
        if !compare_idle {
            got = got.map(zero_idle);
        }
        assert_eq!(got, expect, "seed {seed}, step {step}: {}", args.join(" "));
    }
    // The lengths agree at the end too.
    for key in KEYS {
        let len = model.keys.get(*key).map_or(0, |s| s.entries.len() as i64);
        let got: i64 = cmd("XLEN").arg(*key).query(&mut c).unwrap();
        assert_eq!(got, len, "seed {seed}: XLEN {key}");
    }
}

#[test]
fn random_stream_command_sequences_match_a_reference_model() {
    let seeds: Vec<u64> = match std::env::var("STREAMS_SEED") {
        Ok(s) => vec![s.parse().unwrap()],
        Err(_) => {
            let base = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            (0..4).map(|i| base.wrapping_add(i)).collect()
        }
    };
    for seed in seeds {
        run_seed(seed, 1500);
    }
}
