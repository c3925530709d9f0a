//! Connection tracking (see docs/ARCHITECTURE.md).
