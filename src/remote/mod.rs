//! Remote storage protocols. Today: the remote write 1.0 receiver (`/api/v1/write`):
//! the protobuf messages, a zero-copy reader of them, the series cache, and the
//! decode-and-store logic, without HTTP.

pub mod cache;
pub mod decode;
pub mod prompb;
pub mod receiver;
pub mod write;

pub use receiver::Receiver;
pub use write::{RemoteWriteError, WriteStats, decode_write_request, write};
