//! JSON Schema compatibility (filled in below).
use crate::json::JsonModel;

pub(crate) fn check(_original: &JsonModel, _update: &JsonModel) -> Vec<String> {
    Vec::new()
}
