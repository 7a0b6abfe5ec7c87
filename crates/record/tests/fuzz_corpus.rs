//! Replays the `record_batch` fuzz corpus and writes its seeds on request.

use tributary_record::Compression;
use tributary_record::builder::{BatchBuilder, RecordSpec};

fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/record_batch")
}

/// Crash inputs the fuzzer found, kept apart from the corpus so that
/// minimizing the corpus never drops them.
fn regressions_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/record_batch")
}

#[test]
fn replay_record_batch_corpus() {
    let mut count = 0;
    let regressions = std::fs::read_dir(regressions_dir()).into_iter().flatten();
    for entry in std::fs::read_dir(corpus_dir()).expect("corpus directory").chain(regressions) {
        let data = std::fs::read(entry.expect("entry").path()).expect("read");
        tributary_record::fuzzing::record_batch(&data);
        for cut in (0..data.len()).step_by(5) {
            tributary_record::fuzzing::record_batch(&data[..cut]);
        }
        count += 1;
    }
    assert!(count >= 10, "expected the seed corpus, found {count} files");
}

#[test]
#[ignore = "regenerates fuzz/corpus/record_batch"]
fn write_fuzz_corpus() {
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).expect("corpus dir");
    for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let mut b = BatchBuilder::new(codec).producer(7, 0, 0);
        for i in 0..5u8 {
            b.push(RecordSpec::new(Some(&[i]), Some(&[i; 30]), 1_000 + i64::from(i)).with_header("h", Some(b"v")));
        }
        b.push(RecordSpec::new(None, None, 2_000));
        let one = b.build();
        std::fs::write(dir.join(format!("{}-batch", codec.name())), &one).expect("write");
        let mut two = one.clone();
        two.extend_from_slice(&one);
        std::fs::write(dir.join(format!("{}-two-batches", codec.name())), &two).expect("write");
    }
    let mut empty_values = BatchBuilder::new(Compression::None);
    empty_values.push(RecordSpec::new(Some(b""), Some(b""), 0));
    std::fs::write(dir.join("empty-key-value"), empty_values.build()).expect("write");
}
