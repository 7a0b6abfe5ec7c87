//! tributary-metadata
