//! Any bytes, as a schema and a serialized payload: decoding Avro datums,
//! JSON documents and Protobuf messages must never panic nor allocate
//! beyond what the bytes justify.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tributary_schema::fuzzing::schema_datum(data);
});
