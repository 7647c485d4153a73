//! Minted credentials: short-lived, task-scoped credentials a credential provider makes for one approved command.

pub mod aws_policy;
pub mod sts;
