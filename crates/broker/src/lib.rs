//! tributary-broker
