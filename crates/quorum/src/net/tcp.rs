//! TCP transport placeholder
