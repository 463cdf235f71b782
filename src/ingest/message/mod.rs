//! Messages of robot recordings, whatever the container (ROS1 bag, MCAP): `.msg`
//! definitions, ROS1 and CDR decoding into Arrow, and the `topics` / `messages` / per-topic
//! tables they become. Containers hand connections and messages to `TopicWriter`.

pub mod decode;
pub mod msgdef;
pub mod tables;
pub mod write;

pub use tables::{Codec, Connection, Event};
pub use write::{Stop, TopicWriter};
