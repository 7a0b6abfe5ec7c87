//! JSON Schema (in progress).
use crate::references::Resolved;
use crate::{ParseOptions, SchemaError};

#[derive(Debug)]
pub(crate) struct JsonModel {
    canonical: String,
}

impl JsonModel {
    pub fn parse(_text: &str, _references: &[Resolved], _options: &ParseOptions) -> Result<JsonModel, SchemaError> {
        Err(SchemaError::Invalid("JSON Schema support is not finished yet".into()))
    }
    pub fn canonical(&self) -> String {
        self.canonical.clone()
    }
    pub fn name(&self) -> Option<String> {
        None
    }
}
