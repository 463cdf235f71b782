//! Manifest nodes, chunk locations, version records, table schemas and blob values are
//! decoded from the metadata store and segments: damaged values must give errors, never
//! panics.
#![no_main]

use bagbase::store::{pack::ChunkLoc, Id};
use bagbase::datafusion::arrow::array::BinaryArray;
use bagbase::version::{blob, manifest, node, segment, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let id = Id::of(data);
    let _ = node::children(&id, data);
    let _ = node::decode_chunks(&id, data);
    let _ = node::decode_index(&id, data);
    let _ = node::decode_json::<manifest::Root>(&id, node::Kind::Root, data);
    let _ = node::decode_json::<manifest::TableNode>(&id, node::Kind::Table, data);
    let _ = ChunkLoc::decode(data);
    let _ = serde_json::from_slice::<Version>(data);
    let _ = segment::decode_schema("fuzz", &hex::encode(data));
    let _ = blob::parse(data);
    let _ = blob::untag(&BinaryArray::from(vec![data]));
});
