//! tributary-protocol
