//! The fuzz targets of the request reader and the reply encoder, on stable: every committed
//! seed (`fuzz/corpus/<target>/`) and every input that once failed
//! (`fuzz/regressions/<target>/`) goes through the same checks as under `cargo fuzz`, whose
//! sources these are (`fuzz/src/`).

// The fuzz sources serve several targets and both builds: not every item is used here.
#[path = "../../fuzz/src/inline.rs"]
mod inline;
#[allow(dead_code)]
#[path = "../../fuzz/src/input.rs"]
mod input;
#[allow(dead_code)]
#[path = "../../fuzz/src/reader.rs"]
mod reader;
#[path = "../../fuzz/src/replay.rs"]
mod replay;
#[path = "../../fuzz/src/reply.rs"]
mod reply;
#[path = "../../fuzz/src/resp3.rs"]
mod resp3;

const HERE: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn reader_corpus_and_regressions_pass_the_fuzz_checks() {
    replay::replay(HERE, "reader", reader::check_requests);
}

#[test]
fn inline_corpus_and_regressions_match_redis() {
    replay::replay(HERE, "reader_inline", inline::check_inline);
}

#[test]
fn resp3_corpus_and_regressions_pass_the_fuzz_checks() {
    replay::replay(HERE, "reader_resp3", resp3::check_resp3);
}

#[test]
fn reply_corpus_and_regressions_decode_as_encoded() {
    replay::replay(HERE, "reply", reply::check_reply);
}
