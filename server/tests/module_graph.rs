//! The server crate's files import each other without a circle: every file uses only files
//! below it, so each layer can be read (and changed) knowing only the layers under it.
//!
//! A file "uses" another when it names a path into it: `crate::keyspace::Value`,
//! `super::table::flags`, or (in `lib.rs` and a `mod.rs`) `child::item`. Declaring a child
//! module (`mod child;`) is not a use. Test modules at the end of a file are left out.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, by its path relative to `root`.
fn sources(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.insert(rel, std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// The module path of a file: `cmd/mod.rs` and `cmd.rs` are `["cmd"]`, `lib.rs` is `[]`.
fn module_of(file: &str) -> Vec<String> {
    let stem = file.trim_end_matches(".rs");
    let mut parts: Vec<String> = stem.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The file that holds module `path`, if it is a file of its own.
fn file_of(files: &BTreeMap<String, String>, path: &[String]) -> Option<String> {
    if path.is_empty() {
        return Some("lib.rs".into());
    }
    let joined = path.join("/");
    [format!("{joined}.rs"), format!("{joined}/mod.rs")]
        .into_iter()
        .find(|f| files.contains_key(f))
}

/// The code without line comments and without the test module that ends a file.
fn code(src: &str) -> String {
    let src = src.split("#[cfg(test)]").next().unwrap_or("");
    src.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path in `code` (`a::b::c`), with `a::{b, c::d}` groups expanded.
fn paths(code: &str) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_ident(bytes[i]) || (i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let mut path = Vec::new();
        loop {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            path.push(code[start..i].to_string());
            if code[i..].starts_with("::{") {
                let close = code[i..].find('}').map_or(code.len(), |c| i + c);
                for item in code[i + 3..close].split(',') {
                    let mut p = path.clone();
                    p.extend(
                        item.trim()
                            .split(" as ")
                            .next()
                            .unwrap_or("")
                            .split("::")
                            .filter(|s| !s.is_empty() && *s != "self" && *s != "*")
                            .map(str::to_string),
                    );
                    out.push(p);
                }
                i = close;
                path.clear();
                break;
            }
            if code[i..].starts_with("::")
                && code[i + 2..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            {
                i += 2;
            } else {
                break;
            }
        }
        if path.len() > 1 {
            out.push(path);
        }
    }
    out
}

/// The files each file uses.
fn graph(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges = BTreeMap::new();
    for (file, src) in files {
        let me = module_of(file);
        let is_parent = file.ends_with("mod.rs") || file == "lib.rs";
        let mut uses = BTreeSet::new();
        for path in paths(&code(src)) {
            let base: Vec<String> = match path[0].as_str() {
                "crate" => Vec::new(),
                "super" => me[..me.len().saturating_sub(1)].to_vec(),
                first
                    if is_parent
                        && file_of(files, &[me.clone(), vec![first.to_string()]].concat())
                            .is_some() =>
                {
                    me.clone()
                }
                _ => continue,
            };
            let rest = if matches!(path[0].as_str(), "crate" | "super") {
                &path[1..]
            } else {
                &path[..]
            };
            let target = (0..=rest.len())
                .rev()
                .find_map(|n| file_of(files, &[base.clone(), rest[..n].to_vec()].concat()));
            if let Some(target) = target
                && target != *file
            {
                uses.insert(target);
            }
        }
        edges.insert(file.clone(), uses);
    }
    edges
}

/// A circle through `from`, if one exists (depth-first search over the use graph).
fn circle(
    edges: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    stack: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = stack.iter().position(|f| f == from) {
        let mut c = stack[at..].to_vec();
        c.push(from.to_string());
        return Some(c);
    }
    if done.contains(from) {
        return None;
    }
    stack.push(from.to_string());
    for next in edges.get(from).into_iter().flatten() {
        if let Some(c) = circle(edges, next, stack, done) {
            return Some(c);
        }
    }
    stack.pop();
    done.insert(from.to_string());
    None
}

#[test]
fn server_files_import_each_other_without_a_circle() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    sources(&root, &root, &mut files);
    // main.rs is a crate of its own (the binary).
    files.remove("main.rs");
    let edges = graph(&files);
    // The graph is read at all: dispatch uses the families, a family uses the table.
    assert!(
        edges["cmd/dispatch.rs"].contains("cmd/stream.rs"),
        "{edges:#?}"
    );
    assert!(
        edges["cmd/stream.rs"].contains("cmd/table.rs"),
        "{edges:#?}"
    );
    assert!(edges["keyspace.rs"].contains("error.rs"), "{edges:#?}");
    let mut done = BTreeSet::new();
    for file in edges.keys() {
        let found = circle(&edges, file, &mut Vec::new(), &mut done);
        assert!(
            found.is_none(),
            "import circle: {}",
            found.unwrap_or_default().join(" -> ")
        );
    }
}
