//! The PDGroup controller's own tasks; the rest are generic group tasks.

mod bootstrap;
mod services;

pub use bootstrap::bootstrap;
pub use services::services;
