//! The offline commands: `supportgate check` and `supportgate webhook-config`.

pub mod check;
