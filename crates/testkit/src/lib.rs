//! tributary-testkit
