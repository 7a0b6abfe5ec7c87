//! tributary-record
