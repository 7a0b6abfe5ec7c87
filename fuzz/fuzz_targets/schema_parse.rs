//! Any bytes, as an Avro, JSON Schema or Protobuf schema with references:
//! parsing, printing and self-compatibility must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tributary_schema::fuzzing::schema_parse(data);
});
