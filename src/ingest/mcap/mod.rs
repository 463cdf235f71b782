//! MCAP (ROS 2 and other recorders): a streaming reader of our own over the data
//! section (see docs/design.md "MCAP"); messages are decoded by `ingest::message`.

pub mod fuzz;
pub mod ingest;
pub mod record;
pub mod scan;
