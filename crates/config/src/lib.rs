//! tributary-config
