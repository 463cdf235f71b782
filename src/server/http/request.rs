//! HTTP/1.1 messages, as much as InfluxDB clients use: a request line, headers, a body
//! by `Content-Length` or chunked, `Content-Encoding: gzip`, keep-alive. Every size is
//! bounded: the head (16 KiB, 100 headers) and the body (the server's limit, before and
//! after decompression). Nothing here knows about line protocol.

use std::io::Read;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 100;

#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub keep_alive: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request could not be read; the connection is answered (if possible) and closed.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection between requests.
    Closed,
    Io(std::io::Error),
    /// Malformed: 400 with this message.
    Bad(String),
    /// Body over the limit: 413.
    TooLarge(usize),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Reads one line of the head (CRLF or LF), counting against the head budget.
async fn head_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    budget: &mut usize,
) -> Result<String, ReadError> {
    let mut line = Vec::new();
    let n = (&mut *r)
        .take(*budget as u64 + 1)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Err(ReadError::Closed);
    }
    if n > *budget || !line.ends_with(b"\n") {
        return Err(ReadError::Bad(format!(
            "request head longer than {MAX_HEAD} bytes or cut short"
        )));
    }
    *budget -= n;
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| ReadError::Bad("request head is not UTF-8".into()))
}

/// Reads the next request; `limit` bounds the body (compressed and decompressed).
pub async fn read_request<R: AsyncBufRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> Result<Request, ReadError> {
    let mut budget = MAX_HEAD;
    let start = head_line(r, &mut budget).await?;
    let mut parts = start.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(format!("malformed request line {start:?}")));
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(ReadError::Bad(format!(
            "unsupported HTTP version {version:?}"
        )));
    }
    let mut headers = Vec::new();
    loop {
        let line = head_line(r, &mut budget).await?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(ReadError::Bad(format!("more than {MAX_HEADERS} headers")));
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(ReadError::Bad(format!("malformed header line {line:?}")));
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    };
    let query = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut req = Request {
        method: method.to_string(),
        path: path.to_string(),
        query,
        keep_alive: version == "HTTP/1.1",
        headers,
        body: Vec::new(),
    };
    if let Some(c) = req.header("connection") {
        let c = c.to_ascii_lowercase();
        if c.contains("close") {
            req.keep_alive = false;
        } else if c.contains("keep-alive") {
            req.keep_alive = true;
        }
    }
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    if chunked {
        req.body = read_chunked(r, limit).await?;
    } else if let Some(len) = req.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| ReadError::Bad(format!("bad Content-Length {len:?}")))?;
        if len > limit {
            return Err(ReadError::TooLarge(limit));
        }
        req.body = vec![0; len];
        r.read_exact(&mut req.body).await?;
    }
    if req
        .header("content-encoding")
        .is_some_and(|e| e.eq_ignore_ascii_case("gzip"))
    {
        req.body = gunzip(&req.body, limit)?;
    }
    Ok(req)
}

async fn read_chunked<R: AsyncBufRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let mut budget = MAX_HEAD;
        let size_line = head_line(r, &mut budget).await?;
        let hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(hex, 16)
            .map_err(|_| ReadError::Bad(format!("bad chunk size {hex:?}")))?;
        if size == 0 {
            // Trailers, then the empty line.
            while !head_line(r, &mut budget).await?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > limit {
            return Err(ReadError::TooLarge(limit));
        }
        let at = body.len();
        body.resize(at + size, 0);
        r.read_exact(&mut body[at..]).await?;
        let mut crlf = String::new();
        let mut budget = 2;
        crlf.push_str(&head_line(r, &mut budget).await?);
        if !crlf.is_empty() {
            return Err(ReadError::Bad("chunk not followed by CRLF".into()));
        }
    }
}

fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    let d = flate2::read::GzDecoder::new(body);
    d.take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ReadError::Bad(format!("gzip body does not decompress: {e}")))?;
    if out.len() > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(out)
}

/// An answer: status, extra headers, a JSON (or empty) body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Response {
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: vec![],
            body: String::new(),
        }
    }

    pub fn json(status: u16, body: serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "application/json; charset=utf-8".into())],
            body: body.to_string(),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Request Entity Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

pub async fn write_response<W: AsyncWrite + Unpin>(
    w: &mut W,
    resp: &Response,
    head_only: bool,
    keep_alive: bool,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes()).await?;
    if !head_only {
        w.write_all(resp.body.as_bytes()).await?;
    }
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &[u8], limit: usize) -> Result<Request, ReadError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut r = tokio::io::BufReader::new(raw);
            read_request(&mut r, limit).await
        })
    }

    #[test]
    fn content_length_chunked_and_gzip_bodies() {
        let r = read(
            b"POST /write?db=main&precision=s HTTP/1.1\r\nContent-Length: 5\r\n\r\nm f=1",
            100,
        )
        .unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/write"));
        assert_eq!(r.param("precision"), Some("s"));
        assert_eq!(r.body, b"m f=1");
        let r = read(
            b"POST /api/v2/write HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nm f\r\n2\r\n=1\r\n0\r\n\r\n",
            100,
        )
        .unwrap();
        assert_eq!(r.body, b"m f=1");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"m f=1").unwrap();
        let gz = gz.finish().unwrap();
        let mut raw = format!(
            "POST /write HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            gz.len()
        )
        .into_bytes();
        raw.extend(&gz);
        assert_eq!(read(&raw, 100).unwrap().body, b"m f=1");
        assert!(matches!(read(&raw, 3), Err(ReadError::TooLarge(3))));
    }

    #[test]
    fn limits_and_malformed_heads() {
        assert!(matches!(
            read(b"POST /write HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 100),
            Err(ReadError::TooLarge(100))
        ));
        assert!(matches!(
            read(b"GARBAGE\r\n\r\n", 100),
            Err(ReadError::Bad(_))
        ));
        assert!(matches!(read(b"", 100), Err(ReadError::Closed)));
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD));
        assert!(matches!(read(long.as_bytes(), 100), Err(ReadError::Bad(_))));
    }
}
