//! Turns a recording's connections (ROS1) or channels (MCAP) and their messages into
//! table rows: `topics`, `messages` and one table per decodable topic (file_id,
//! log_time, ordinal, then the decoded fields). Rows are handed out in bounded batches
//! so memory stays flat whatever the recording's size.

use super::decode::{self, Bytes, Col};
use super::msgdef::{self, Dialect, Type};
use crate::store::Id;
use crate::version::blob::{self, BlobPath};
use datafusion::arrow::array::*;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Rows or bytes that make a batch worth handing out.
pub const BATCH_ROWS: usize = 64 * 1024;
pub const BATCH_BYTES: usize = 16 << 20;
/// Bytes all of a recording's unfinished batches may hold together: past it, the
/// largest is handed out. Without it every table of a long recording held up to
/// `BATCH_BYTES`, so the memory of an ingest grew with the recording (up to a bound
/// ten times as high) instead of staying where a short one leaves it.
pub const PENDING_BYTES: usize = 2 << 20;

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, None)
}

pub fn messages_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("file_id", DataType::Utf8, false),
        Field::new("topic", DataType::Utf8, false),
        Field::new("log_time", ts(), false),
        Field::new("ordinal", DataType::Int64, false),
        Field::new("msg_type", DataType::Utf8, false),
        Field::new("size_bytes", DataType::Int64, false),
        Field::new("data", DataType::Binary, false),
    ]))
}

pub fn topics_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("file_id", DataType::Utf8, false),
        Field::new("topic", DataType::Utf8, false),
        Field::new("msg_type", DataType::Utf8, false),
        Field::new("msg_count", DataType::Int64, false),
        Field::new("first_time", ts(), true),
        Field::new("last_time", ts(), true),
        Field::new("md5sum", DataType::Utf8, false),
        Field::new("message_definition", DataType::Utf8, false),
    ]))
}

/// How a connection's messages are serialized, when bagbase can decode them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// ROS1 serialization, `.msg` definition in ROS1 dialect.
    Ros1,
    /// CDR (ROS 2), `ros2msg` schema.
    Cdr,
}

/// A stream of messages of one type on one topic: a ROS1 connection or an MCAP channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    pub id: u32,
    pub topic: String,
    pub msg_type: String,
    /// ROS1's definition checksum; empty where the format has none.
    pub md5sum: String,
    pub definition: String,
    /// `None`: the messages are kept raw in `messages` only (an encoding bagbase does
    /// not decode).
    pub codec: Option<Codec>,
}

/// What a container reader hands out, in file order.
pub enum Event<'a> {
    Connection(Connection),
    Message {
        conn: u32,
        time: i64,
        data: &'a [u8],
        /// Where `data` lies in the stored file, when it is there as is.
        offset: Option<u64>,
    },
}

/// Rows of one topic: counts for `topics`, and the decoded table when it has one.
struct TopicRows {
    msg_type: String,
    md5sum: String,
    definition: String,
    codec: Option<Codec>,
    table: Option<Decoded>,
    count: i64,
    first: Option<i64>,
    last: Option<i64>,
}

/// The per-topic table being built.
struct Decoded {
    root: Type,
    schema: SchemaRef,
    times: TimestampNanosecondBuilder,
    ordinals: Int64Builder,
    /// Log time of every decoded row so far (8 bytes a message: the step clock).
    log: Vec<i64>,
    fields: Col,
    /// The table's blob columns (top-level binary fields), when the store has them.
    blobs: Vec<BlobPath>,
    rows: usize,
    bytes: usize,
}

/// What is left when the bag ends.
pub struct Finished {
    pub rows: Vec<Rows>,
    pub warnings: Vec<String>,
    /// Topic → (message type, table schema, log time of every row in row order).
    pub times: BTreeMap<String, (String, SchemaRef, Vec<i64>)>,
}

/// A batch of finished rows for a table.
pub struct Rows {
    pub table: String,
    pub batch: RecordBatch,
    /// Columns of `batch` holding tagged blob values (`version::blob`).
    pub blobs: Vec<BlobPath>,
}

/// Why a message could not be decoded.
pub struct DecodeError {
    pub topic: String,
    pub what: String,
}

pub struct BagTables {
    file_id: String,
    /// The stored file's chunk list, when binary values may refer to it (a store of
    /// format 2 on): `messages.data` and top-level binary fields are blob columns.
    blob_file: Option<Id>,
    conns: HashMap<u32, Connection>,
    topics: BTreeMap<String, TopicRows>,
    msgs: MessageRows,
    /// Bytes of every unfinished batch (`messages` and the topic tables).
    pending: usize,
    /// Topics whose messages carry another type than the one the table follows.
    pub warnings: Vec<String>,
}

impl Decoded {
    /// `blobs`: top-level binary fields become blob columns.
    fn new(c: &Connection, codec: Codec, blobs: bool) -> Result<Decoded, DecodeError> {
        let dialect = match codec {
            Codec::Ros1 => Dialect::Ros1,
            Codec::Cdr => Dialect::Ros2,
        };
        let fields =
            msgdef::parse(&c.msg_type, &c.definition, dialect).map_err(|what| DecodeError {
                topic: c.topic.clone(),
                what: format!("message definition of {}: {what}", c.msg_type),
            })?;
        let mut cols = vec![
            Field::new("file_id", DataType::Utf8, false),
            Field::new("log_time", ts(), false),
            Field::new("ordinal", DataType::Int64, false),
        ];
        for f in decode::struct_fields(&fields).iter() {
            cols.push(f.as_ref().clone().with_name(column_name(f.name())));
        }
        let root = Type::Msg(c.msg_type.clone(), fields);
        let mut cols_of = Col::new(&root);
        let mut blob_paths = Vec::new();
        if let (true, Col::Struct { fields, cols, .. }) = (blobs, &mut cols_of) {
            for (f, (_, col)) in fields.iter().zip(cols.iter_mut()) {
                if let Col::Bin(_, _, is_blob) = col {
                    *is_blob = true;
                    blob_paths.push(vec![column_name(f.name())]);
                }
            }
        }
        Ok(Decoded {
            fields: cols_of,
            blobs: blob_paths,
            root,
            schema: Arc::new(Schema::new(cols)),
            times: TimestampNanosecondBuilder::new(),
            ordinals: Int64Builder::new(),
            log: Vec::new(),
            rows: 0,
            bytes: 0,
        })
    }

    /// Decodes one message into the row builders; returns the bytes it adds to the
    /// table's segment (referenced blob values count as their reference).
    fn decode(
        &mut self,
        c: &Connection,
        msg_type: &str,
        data: &[u8],
        at: Option<(Id, u64)>,
    ) -> Result<usize, String> {
        let expected = |what: String| format!("a {msg_type} message: expected {what}");
        let mut b = match c.codec {
            Some(Codec::Cdr) => Bytes::cdr(data).map_err(expected)?,
            _ => Bytes::ros1(data),
        };
        if let Some((file, offset)) = at {
            b.locate(data, file, offset);
        }
        decode::decode(&self.root, &mut self.fields, &mut b, &c.topic).map_err(expected)?;
        if !b.trailing_ok() {
            return Err(format!(
                "a {msg_type} message of {} bytes as its definition says, found {} bytes",
                data.len() - (b.buf.len() - b.pos),
                data.len()
            ));
        }
        let (refs, referenced) = b.referenced;
        Ok(data.len() - referenced + refs * blob::REF_LEN)
    }
}

#[derive(Default)]
struct MessageRows {
    topic: StringBuilder,
    time: TimestampNanosecondBuilder,
    ordinal: Int64Builder,
    msg_type: StringBuilder,
    size: Int64Builder,
    data: BinaryBuilder,
    rows: usize,
    bytes: usize,
}

/// Column names the per-topic tables put first; a message field with one of these
/// names gets a trailing underscore.
const RESERVED: [&str; 3] = ["file_id", "log_time", "ordinal"];

/// The columns that identify a row of a table this module writes (SPEC: messages and
/// topic tables are keyed by file, topic, log time and ordinal).
pub fn key_of(table: &str) -> Vec<String> {
    let k: &[&str] = match table {
        "messages" => &["file_id", "topic", "log_time", "ordinal"],
        "topics" => &["file_id", "topic"],
        _ => &["file_id", "log_time", "ordinal"],
    };
    k.iter().map(|s| s.to_string()).collect()
}

fn column_name(n: &str) -> String {
    if RESERVED.contains(&n) {
        format!("{n}_")
    } else {
        n.to_string()
    }
}

impl BagTables {
    pub fn new(file_id: &str, blob_file: Option<Id>) -> BagTables {
        BagTables {
            file_id: file_id.to_string(),
            blob_file,
            conns: HashMap::new(),
            topics: BTreeMap::new(),
            msgs: MessageRows::default(),
            pending: 0,
            warnings: Vec::new(),
        }
    }

    /// Registers a connection; the first connection of a topic fixes its table's type.
    pub fn connection(&mut self, c: Connection) -> Result<(), DecodeError> {
        if !self.topics.contains_key(&c.topic) {
            let table = match c.codec {
                Some(codec) => Some(Decoded::new(&c, codec, self.blob_file.is_some())?),
                None => None,
            };
            self.topics.insert(
                c.topic.clone(),
                TopicRows {
                    msg_type: c.msg_type.clone(),
                    md5sum: c.md5sum.clone(),
                    definition: c.definition.clone(),
                    codec: c.codec,
                    table,
                    count: 0,
                    first: None,
                    last: None,
                },
            );
        }
        self.conns.insert(c.id, c);
        Ok(())
    }

    /// Registers a connection or adds a message (see `message`).
    pub fn event(&mut self, ev: Event<'_>, out: &mut Vec<Rows>) -> Result<(), DecodeError> {
        match ev {
            Event::Connection(c) => self.connection(c),
            Event::Message {
                conn,
                time,
                data,
                offset,
            } => self.message(conn, time, data, offset, out),
        }
    }

    /// Adds one message (`offset`: where its bytes lie in the stored file, if they do
    /// as is); returns batches that filled up.
    pub fn message(
        &mut self,
        conn: u32,
        time: i64,
        data: &[u8],
        offset: Option<u64>,
        out: &mut Vec<Rows>,
    ) -> Result<(), DecodeError> {
        let c = self.conns.get(&conn).ok_or_else(|| DecodeError {
            topic: format!("<connection {conn}>"),
            what: format!("a connection record for connection {conn} before its messages"),
        })?;
        let t = self
            .topics
            .get_mut(&c.topic)
            .expect("topic registered with its connection");
        // The message's position in its topic within this file: with file and topic
        // it identifies the message (the diff key), however many share a log time.
        let ordinal = t.count;
        t.count += 1;
        let m = &mut self.msgs;
        m.topic.append_value(&c.topic);
        m.time.append_value(time);
        m.ordinal.append_value(ordinal);
        m.msg_type.append_value(&c.msg_type);
        m.size.append_value(data.len() as i64);
        let at = self.blob_file.zip(offset);
        let stored = match &self.blob_file {
            Some(f) if blob::append(&mut m.data, data, offset.map(|o| (f, o))) => blob::REF_LEN,
            Some(_) => data.len(),
            None => {
                m.data.append_value(data);
                data.len()
            }
        };
        m.bytes += stored;
        self.pending += stored;
        m.rows += 1;
        t.first = Some(t.first.map_or(time, |f| f.min(time)));
        t.last = Some(t.last.map_or(time, |l| l.max(time)));
        // ROS1: the same type name or the same checksum is the same type.
        let same_type = c.codec == t.codec
            && (c.msg_type == t.msg_type || (!c.md5sum.is_empty() && c.md5sum == t.md5sum));
        match t.table.as_mut() {
            Some(_) if !same_type => {
                let w = format!(
                    "topic {}: connection {conn} carries {} while the table follows {}; its messages are in `messages` only",
                    c.topic, c.msg_type, t.msg_type
                );
                if !self.warnings.contains(&w) {
                    self.warnings.push(w);
                }
            }
            Some(d) => {
                let stored = d
                    .decode(c, &t.msg_type, data, at)
                    .map_err(|what| DecodeError {
                        topic: c.topic.clone(),
                        what,
                    })?;
                d.times.append_value(time);
                d.log.push(time);
                d.ordinals.append_value(ordinal);
                d.rows += 1;
                d.bytes += stored;
                self.pending += stored;
                if d.rows >= BATCH_ROWS || d.bytes >= BATCH_BYTES {
                    let topic = c.topic.clone();
                    out.push(self.flush_topic(&topic));
                }
            }
            None => {}
        }
        if self.msgs.rows >= BATCH_ROWS || self.msgs.bytes >= BATCH_BYTES {
            out.push(self.flush_messages());
        }
        if self.pending > PENDING_BYTES {
            out.push(self.flush_largest());
        }
        Ok(())
    }

    /// Hands out the batch holding the most bytes.
    fn flush_largest(&mut self) -> Rows {
        let largest = self
            .topics
            .iter()
            .filter_map(|(n, t)| Some((t.table.as_ref()?.bytes, n)))
            .max();
        match largest {
            Some((bytes, topic)) if bytes > self.msgs.bytes => {
                let topic = topic.clone();
                self.flush_topic(&topic)
            }
            _ => self.flush_messages(),
        }
    }

    fn flush_topic(&mut self, topic: &str) -> Rows {
        let t = self
            .topics
            .get_mut(topic)
            .and_then(|t| t.table.as_mut())
            .expect("a decoded topic");
        let n = t.rows;
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                self.file_id.as_str(),
                n,
            ))),
            Arc::new(t.times.finish()),
            Arc::new(t.ordinals.finish()),
        ];
        let s = t.fields.finish();
        let s = s
            .as_any()
            .downcast_ref::<StructArray>()
            .expect("root is a struct");
        cols.extend(s.columns().iter().cloned());
        self.pending -= t.bytes;
        t.rows = 0;
        t.bytes = 0;
        Rows {
            table: topic.to_string(),
            batch: RecordBatch::try_new(Arc::clone(&t.schema), cols)
                .expect("columns follow the schema"),
            blobs: t.blobs.clone(),
        }
    }

    fn flush_messages(&mut self) -> Rows {
        let m = &mut self.msgs;
        let n = m.rows;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                self.file_id.as_str(),
                n,
            ))),
            Arc::new(m.topic.finish()),
            Arc::new(m.time.finish()),
            Arc::new(m.ordinal.finish()),
            Arc::new(m.msg_type.finish()),
            Arc::new(m.size.finish()),
            Arc::new(m.data.finish()),
        ];
        self.pending -= m.bytes;
        m.rows = 0;
        m.bytes = 0;
        Rows {
            table: "messages".into(),
            batch: RecordBatch::try_new(messages_schema(), cols)
                .expect("columns follow the schema"),
            blobs: match self.blob_file {
                Some(_) => vec![vec!["data".to_string()]],
                None => vec![],
            },
        }
    }

    /// The remaining rows of every table, the `topics` rows of this bag, and per topic
    /// its type, table schema and row times.
    pub fn finish(mut self) -> Finished {
        let mut out = Vec::new();
        let names: Vec<String> = self.topics.keys().cloned().collect();
        for t in &names {
            if self.topics[t].table.as_ref().is_some_and(|d| d.rows > 0) {
                out.push(self.flush_topic(t));
            }
        }
        if self.msgs.rows > 0 {
            out.push(self.flush_messages());
        }
        let ts = &self.topics;
        let col = |f: &dyn Fn(&TopicRows) -> String| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(ts.values().map(f)))
        };
        let topics = RecordBatch::try_new(
            topics_schema(),
            vec![
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                    self.file_id.as_str(),
                    ts.len(),
                ))),
                Arc::new(StringArray::from_iter_values(ts.keys())),
                col(&|t| t.msg_type.clone()),
                Arc::new(Int64Array::from_iter_values(ts.values().map(|t| t.count))),
                Arc::new(TimestampNanosecondArray::from_iter(
                    ts.values().map(|t| t.first),
                )),
                Arc::new(TimestampNanosecondArray::from_iter(
                    ts.values().map(|t| t.last),
                )),
                col(&|t| t.md5sum.clone()),
                col(&|t| t.definition.clone()),
            ],
        )
        .expect("columns follow the schema");
        out.push(Rows {
            table: "topics".into(),
            batch: topics,
            blobs: vec![],
        });
        let times = self
            .topics
            .into_iter()
            .filter_map(|(n, t)| {
                let d = t.table?;
                Some((n, (t.msg_type, d.schema, d.log)))
            })
            .collect();
        Finished {
            rows: out,
            warnings: self.warnings,
            times,
        }
    }
}
