//! The `commands` fuzz target on stable: every committed seed script
//! (`fuzz/corpus/commands/`) and every input that once failed (`fuzz/regressions/commands/`)
//! runs on an in-process server with the same checks as under `cargo fuzz`, whose sources
//! these are (`fuzz/src/`).

// The fuzz sources serve several targets and both builds: not every item is used here.
#[allow(dead_code)]
#[path = "../../fuzz/src/commands.rs"]
mod commands;
#[allow(dead_code)]
#[path = "../../fuzz/src/input.rs"]
mod input;
#[path = "../../fuzz/src/replay.rs"]
mod replay;
#[path = "../../fuzz/src/seeds.rs"]
mod seeds;

const HERE: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn command_corpus_and_regressions_pass_the_fuzz_checks() {
    replay::replay(HERE, "commands", commands::check_commands);
}

/// The committed seeds are the scripts of `fuzz/src/seeds.rs`, encoded; with
/// `BROOKLET_WRITE_SEEDS=1` this test writes them instead of comparing.
#[test]
fn command_seeds_are_the_encoded_seed_scripts() {
    let names = commands::names();
    let dir = std::path::Path::new(HERE).join("../fuzz/corpus/commands");
    let write = std::env::var_os("BROOKLET_WRITE_SEEDS").is_some();
    for (name, script) in seeds::command_scripts() {
        let bytes = commands::encode_script(&script, &names);
        assert_eq!(
            commands::decode_script(&bytes, &names),
            script,
            "seed {name} does not decode back to its script"
        );
        let path = dir.join(name);
        if write {
            std::fs::create_dir_all(&dir).expect("the corpus folder can be created");
            std::fs::write(&path, &bytes).expect("the seed can be written");
        } else {
            let stored = std::fs::read(&path).unwrap_or_default();
            assert!(
                stored == bytes,
                "{} is not the encoded seed script; rewrite the seeds with BROOKLET_WRITE_SEEDS=1",
                path.display()
            );
        }
    }
}
