//! Protobuf compatibility (filled in below).
use crate::protobuf::ProtoModel;

pub(crate) fn check(_original: &ProtoModel, _update: &ProtoModel) -> Vec<String> {
    Vec::new()
}
