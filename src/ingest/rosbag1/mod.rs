//! ROS1 bag v2.0: a streaming reader of our own (see docs/design.md for why not the
//! `rosbag` crate); messages are decoded by `ingest::message`.

pub mod bag;
pub mod fuzz;
pub mod ingest;
pub mod record;
