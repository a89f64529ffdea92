//! The `supportgate run` process: its wiring (run), the supervision of its long-lived tasks,
//! the health and metrics endpoint, logging and leader election. Only `main` imports it.

pub mod health;
pub mod leader;
pub mod logging;
pub mod run;
pub mod supervisor;
