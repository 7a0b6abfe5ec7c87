//! The KRaft-style metadata quorum (placeholder docs, replaced below).

pub mod config;
pub mod describe;
pub mod net;
pub mod quorum;
pub mod runtime;
pub mod sim;
pub mod storage;
pub mod types;
