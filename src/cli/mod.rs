//! The commands besides `run`: `supportgate check`, `supportgate default-policy` and
//! `supportgate webhook-config`.

pub mod check;
pub mod default_policy;
