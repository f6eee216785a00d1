//! Replaying stored inputs through a target's check, for the stable tests.

use std::path::{Path, PathBuf};

/// The `fuzz/` folder, from a crate folder of the workspace.
fn fuzz_dir(manifest_dir: &str) -> PathBuf {
    Path::new(manifest_dir).join("../fuzz")
}

/// Whether a file name is one libFuzzer gave an input it added to the corpus during a run (the
/// SHA-1 of its bytes): those stay on the machine that ran it (`.gitignore`), so the stable
/// tests replay the same files everywhere: the committed seeds and regressions.
fn is_local_corpus_file(name: &str) -> bool {
    name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Runs `check` on every committed input of `target`: `fuzz/corpus/<target>/` (the seeds) and
/// `fuzz/regressions/<target>/` (inputs that once failed). Returns how many ran.
///
/// # Panics
/// When a check fails (naming the file), or when the target has no seed at all.
pub fn replay(manifest_dir: &str, target: &str, check: fn(&[u8])) -> usize {
    let root = fuzz_dir(manifest_dir);
    let mut ran = 0;
    for kind in ["corpus", "regressions"] {
        let dir = root.join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !is_local_corpus_file(n))
            })
            .collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).expect("a stored fuzz input is readable");
            // The file is named in the panic message of a failing check's test output.
            eprintln!("replaying {}", path.display());
            check(&data);
            ran += 1;
        }
    }
    assert!(ran > 0, "no stored inputs for fuzz target {target}");
    ran
}
