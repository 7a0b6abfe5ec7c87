//! Replays the `request_decode` fuzz corpus, so every input the fuzzer (or a
//! bug report) produced stays decodable without a panic.

#[test]
fn replay_request_decode_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/request_decode");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("read");
        tributary_protocol::fuzzing::request_decode(&data);
        // Every prefix too: truncated frames are the common malformed input.
        for cut in (0..data.len()).step_by(7) {
            tributary_protocol::fuzzing::request_decode(&data[..cut]);
        }
        count += 1;
    }
    assert!(count >= 50, "expected the seed corpus, found {count} files in {}", dir.display());
}
