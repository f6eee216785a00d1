//! A randomized differential test of the string commands: seeded random sequences of SET
//! (NX, XX, GET, EX, KEEPTTL), APPEND, SETRANGE, INCRBY, GETDEL, DEL, MSET, EXPIRE, PERSIST
//! and GET against the server and against a plain map, comparing every reply; then the
//! whole keyspace after DEBUG RELOAD and after a restart.
//!
//! The seed is printed (shown when the test fails); rerun one with `STRINGS_SEED=<n>`.
//! Deadlines are far in the future, so no reply depends on the clock.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use brooklet::TestServer;
use redis::Value;

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
}

/// The model: each key's value and whether it has a deadline.
type Model = BTreeMap<String, (Vec<u8>, bool)>;

fn bulk(v: &[u8]) -> Value {
    Value::BulkString(v.to_vec())
}

fn opt(v: Option<&(Vec<u8>, bool)>) -> Value {
    v.map_or(Value::Nil, |(v, _)| bulk(v))
}

/// What the model expects of a command that fails.
fn failed() -> Value {
    Value::SimpleString("an error reply".into())
}

/// One random command, its arguments and the reply the model expects; applies it to the
/// model.
fn step(rng: &mut Rng, m: &mut Model) -> (Vec<String>, Value) {
    let key = format!("k{}", rng.below(12));
    let val = format!("v{}", rng.below(1000));
    let s = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match rng.below(12) {
        0 => {
            m.insert(key.clone(), (val.clone().into_bytes(), false));
            (s(&["SET", &key, &val]), Value::Okay)
        }
        1 => {
            let old = opt(m.get(&key));
            if m.contains_key(&key) {
                (s(&["SET", &key, &val, "NX", "GET"]), old)
            } else {
                m.insert(key.clone(), (val.clone().into_bytes(), false));
                (s(&["SET", &key, &val, "NX", "GET"]), old)
            }
        }
        2 => {
            let reply = match m.get_mut(&key) {
                Some(e) => {
                    *e = (val.clone().into_bytes(), e.1);
                    Value::Okay
                }
                None => Value::Nil,
            };
            (s(&["SET", &key, &val, "XX", "KEEPTTL"]), reply)
        }
        3 => {
            m.insert(key.clone(), (val.clone().into_bytes(), true));
            (s(&["SET", &key, &val, "EX", "100000"]), Value::Okay)
        }
        4 => {
            let e = m.entry(key.clone()).or_insert((Vec::new(), false));
            e.0.extend_from_slice(val.as_bytes());
            let len = e.0.len() as i64;
            (s(&["APPEND", &key, &val]), Value::Int(len))
        }
        5 => {
            let off = rng.below(8) as usize;
            let e = m.entry(key.clone()).or_insert((Vec::new(), false));
            let end = off + val.len();
            if e.0.len() < end {
                e.0.resize(end, 0);
            }
            e.0[off..end].copy_from_slice(val.as_bytes());
            let len = e.0.len() as i64;
            (
                s(&["SETRANGE", &key, &off.to_string(), &val]),
                Value::Int(len),
            )
        }
        6 => {
            let by = rng.below(100) as i64 - 50;
            let cur = m
                .get(&key)
                .map(|(v, _)| String::from_utf8_lossy(v).into_owned());
            match cur.as_deref().map(str::parse::<i64>) {
                None | Some(Ok(_)) => {
                    let n = cur.map_or(0, |c| c.parse::<i64>().unwrap()) + by;
                    let ttl = m.get(&key).is_some_and(|e| e.1);
                    m.insert(key.clone(), (n.to_string().into_bytes(), ttl));
                    (s(&["INCRBY", &key, &by.to_string()]), Value::Int(n))
                }
                Some(Err(_)) => (s(&["INCRBY", &key, &by.to_string()]), failed()),
            }
        }
        7 => {
            let old = m.remove(&key);
            (s(&["GETDEL", &key]), opt(old.as_ref()))
        }
        8 => {
            let k2 = format!("k{}", rng.below(12));
            let mut n = i64::from(m.remove(&key).is_some());
            if k2 != key {
                n += i64::from(m.remove(&k2).is_some());
            }
            (s(&["DEL", &key, &k2]), Value::Int(n))
        }
        9 => {
            let k2 = format!("k{}", rng.below(12));
            m.insert(key.clone(), (val.clone().into_bytes(), false));
            m.insert(k2.clone(), (b"mset".to_vec(), false));
            (s(&["MSET", &key, &val, &k2, "mset"]), Value::Okay)
        }
        10 => match m.get_mut(&key) {
            Some(e) if rng.below(2) == 0 => {
                e.1 = true;
                (s(&["EXPIRE", &key, "100000"]), Value::Int(1))
            }
            Some(e) => {
                let had = std::mem::replace(&mut e.1, false);
                (s(&["PERSIST", &key]), Value::Int(i64::from(had)))
            }
            None => (s(&["EXPIRE", &key, "100000"]), Value::Int(0)),
        },
        _ => (s(&["GET", &key]), opt(m.get(&key))),
    }
}

/// The server's keyspace as the model holds it.
fn read_all(c: &mut redis::Connection) -> Model {
    let mut out = Model::new();
    let Value::Array(keys) = brooklet::run(c, &["KEYS", "*"]) else {
        panic!()
    };
    for k in keys {
        let Value::BulkString(k) = k else { panic!() };
        let k = String::from_utf8(k).unwrap();
        let Value::BulkString(v) = brooklet::run(c, &["GET", &k]) else {
            panic!("{k}")
        };
        let Value::Int(ttl) = brooklet::run(c, &["TTL", &k]) else {
            panic!()
        };
        out.insert(k, (v, ttl > 0));
    }
    out
}

#[test]
fn random_string_commands_match_a_model_and_survive_reload_and_restart() {
    let seed = std::env::var("STRINGS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("STRINGS_SEED={seed}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let server = TestServer::start_with(|c| {
        c.dir = path.clone();
        c.enable_debug_command = "yes".into();
    });
    let mut rng = Rng(seed);
    let mut model = Model::new();
    for round in 0..3 {
        let mut c = server.client(round % 2 == 1);
        for i in 0..400 {
            let (args, want) = step(&mut rng, &mut model);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let got = match brooklet::query(&mut c, &args) {
                Ok(v) => v,
                Err(e) => {
                    assert!(
                        want == failed(),
                        "seed {seed} round {round} step {i} {args:?}: {e}"
                    );
                    continue;
                }
            };
            assert_eq!(got, want, "seed {seed} round {round} step {i} {args:?}");
        }
        assert_eq!(read_all(&mut c), model, "seed {seed} round {round}");
        brooklet::run(&mut c, &["DEBUG", "RELOAD"]);
        assert_eq!(read_all(&mut c), model, "seed {seed}: DEBUG RELOAD");
    }
    server.stop();
    let server = TestServer::start_with(|c| c.dir = path.clone());
    let mut c = server.client(false);
    assert_eq!(read_all(&mut c), model, "seed {seed}: restart");
}
