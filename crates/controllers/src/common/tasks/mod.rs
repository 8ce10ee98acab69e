//! Generic tasks, for every controller whose state is a [`PassState`](super::PassState).

mod finalizer;
mod load;
mod status;

pub(crate) use finalizer::set_finalizer;
pub use finalizer::{ensure_finalizer, release_finalizer};
pub use load::{load_cluster, load_object};
pub use status::write_status;
