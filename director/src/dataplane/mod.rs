//! The data plane: poll-mode workers, steering, connection tracking and forwarding.
pub mod conn;
