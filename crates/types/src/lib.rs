//! tributary-types
