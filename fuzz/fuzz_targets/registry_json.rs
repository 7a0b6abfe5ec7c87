//! Any bytes, as Schema Registry request bodies and `_schemas` records:
//! reading and checking them must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tributary_schema_registry::fuzzing::registry_json(data);
});
