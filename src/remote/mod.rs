//! Remote storage protocols. Today: the remote write 1.0 receiver (`/api/v1/write`):
//! the protobuf messages and the decode-and-store logic, without HTTP.

pub mod prompb;
pub mod write;

pub use write::{RemoteWriteError, WriteStats, decode_write_request, write};
