//! ROS1 bag v2.0: a streaming reader of our own (see docs/design.md for why not the
//! `rosbag` crate), message-definition parsing and decoding into Arrow tables.

pub mod bag;
pub mod decode;
pub mod fuzz;
pub mod ingest;
pub mod msgdef;
pub mod record;
pub mod tables;
