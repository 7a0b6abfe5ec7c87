//! tributary-log
