//! Protobuf (in progress).
use crate::references::Resolved;
use crate::{ParseOptions, SchemaError, SchemaReference};

#[derive(Debug)]
pub(crate) struct ProtoModel {
    canonical: String,
}

impl ProtoModel {
    pub fn parse(
        _text: &str,
        _refs: &[SchemaReference],
        _references: &[Resolved],
        _options: &ParseOptions,
    ) -> Result<ProtoModel, SchemaError> {
        Err(SchemaError::Invalid("Protobuf support is not finished yet".into()))
    }
    pub fn canonical(&self) -> String {
        self.canonical.clone()
    }
    pub fn name(&self) -> Option<String> {
        None
    }
    pub fn serialized(&self) -> Result<String, SchemaError> {
        Ok(String::new())
    }
    pub fn ignore_extensions(&self) -> String {
        self.canonical.clone()
    }
}
