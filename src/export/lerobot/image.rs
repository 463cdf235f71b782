//! Images for LeRobot's `image` features: raw `sensor_msgs/Image`-shaped pixels
//! (rgb8, bgr8, rgba8, bgra8, mono8, mono16 and their OpenCV names) become PNG files
//! (filter Up, compressed by fdeflate: several times zlib's fastest level, the
//! compressor the `png` crate uses for its fast mode); PNG or JPEG bytes of a
//! `CompressedImage` are kept as they are, their size read from the header.

/// Height, width, channels: the `shape` of an image feature.
pub type Shape = [usize; 3];

/// Pixels of one image as PNG wants them: rows of `width * channels * depth` bytes,
/// big-endian samples; `depth` 1 or 2 bytes; channels 1 (grey) or 3 (RGB).
pub struct Pixels {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub depth: usize,
    pub bytes: Vec<u8>,
}

impl Pixels {
    pub fn shape(&self) -> Shape {
        [self.height, self.width, self.channels]
    }

    /// Adds each channel's sample values, scaled to [0, 1], into `sum`, `sq`, `min` and
    /// `max` (one entry per channel).
    pub fn channel_stats(&self, min: &mut [f64], max: &mut [f64], sum: &mut [f64], sq: &mut [f64]) {
        let c = self.channels;
        let scale = if self.depth == 2 { 65535.0 } else { 255.0 };
        let mut counts = vec![[0u64; 256]; c];
        if self.depth == 1 {
            for px in self.bytes.chunks_exact(c) {
                for (k, v) in px.iter().enumerate() {
                    counts[k][*v as usize] += 1;
                }
            }
            for (k, hist) in counts.iter().enumerate() {
                for (v, n) in hist.iter().enumerate().filter(|(_, n)| **n > 0) {
                    let x = v as f64 / scale;
                    min[k] = min[k].min(x);
                    max[k] = max[k].max(x);
                    sum[k] += x * *n as f64;
                    sq[k] += x * x * *n as f64;
                }
            }
            return;
        }
        for px in self.bytes.chunks_exact(2 * c) {
            for k in 0..c {
                let x = u16::from_be_bytes([px[2 * k], px[2 * k + 1]]) as f64 / scale;
                min[k] = min[k].min(x);
                max[k] = max[k].max(x);
                sum[k] += x;
                sq[k] += x * x;
            }
        }
    }
}

/// Turns a raw image row (`encoding`, `step` bytes a row, `big_endian` for 16-bit
/// samples) into `Pixels`; alpha is dropped and BGR turned to RGB.
pub fn pixels(
    height: usize,
    width: usize,
    encoding: &str,
    step: Option<usize>,
    big_endian: bool,
    data: &[u8],
) -> Result<Pixels, String> {
    let (src_ch, depth, order): (usize, usize, &[usize]) = match encoding {
        "rgb8" => (3, 1, &[0, 1, 2]),
        "bgr8" | "8UC3" => (3, 1, &[2, 1, 0]),
        "rgba8" => (4, 1, &[0, 1, 2]),
        "bgra8" | "8UC4" => (4, 1, &[2, 1, 0]),
        "mono8" | "8UC1" => (1, 1, &[0]),
        "mono16" | "16UC1" => (1, 2, &[0]),
        other => {
            return Err(format!(
                "image encoding '{other}'; expected rgb8, bgr8, rgba8, bgra8, mono8 or mono16"
            ))
        }
    };
    let row = width
        .checked_mul(src_ch * depth)
        .ok_or_else(|| format!("a {width}-pixel-wide image is too large"))?;
    let step = step.unwrap_or(row);
    if step < row {
        return Err(format!(
            "image step {step} is less than width × bytes per pixel ({row})"
        ));
    }
    let need = if height == 0 {
        0
    } else {
        step.checked_mul(height - 1)
            .and_then(|n| n.checked_add(row))
            .ok_or_else(|| format!("a {height}×{width} image is too large"))?
    };
    if data.len() < need {
        return Err(format!(
            "a {height}×{width} {encoding} image needs {need} bytes, found {}",
            data.len()
        ));
    }
    let ch = order.len();
    let mut bytes = Vec::with_capacity(height * width * ch * depth);
    for r in 0..height {
        let line = &data[r * step..r * step + row];
        if src_ch == ch && order.iter().enumerate().all(|(i, o)| i == *o) && depth == 1 {
            bytes.extend_from_slice(line);
            continue;
        }
        for px in line.chunks_exact(src_ch * depth) {
            for o in order {
                let s = &px[o * depth..(o + 1) * depth];
                if depth == 2 && !big_endian {
                    bytes.extend_from_slice(&[s[1], s[0]]);
                } else {
                    bytes.extend_from_slice(s);
                }
            }
        }
    }
    Ok(Pixels {
        height,
        width,
        channels: ch,
        depth,
        bytes,
    })
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A PNG file of `p`.
pub fn png(p: &Pixels) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.bytes.len() / 2 + 64);
    out.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&(p.width as u32).to_be_bytes());
    ihdr.extend_from_slice(&(p.height as u32).to_be_bytes());
    let color = if p.channels == 3 { 2 } else { 0 };
    ihdr.extend_from_slice(&[(p.depth * 8) as u8, color, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    let row = p.width * p.channels * p.depth;
    // Writing to a Vec cannot fail.
    let idat = (|| -> std::io::Result<Vec<u8>> {
        let mut z = fdeflate::Compressor::new(Vec::with_capacity(p.bytes.len() / 2))?;
        let mut line = vec![0u8; row + 1];
        line[0] = 2; // filter Up: each byte minus the one above it
        let zero = vec![0u8; row];
        let mut above: &[u8] = &zero;
        for cur in p.bytes.chunks(row.max(1)).take(p.height) {
            for ((o, c), a) in line[1..].iter_mut().zip(cur).zip(above) {
                *o = c.wrapping_sub(*a);
            }
            z.write_data(&line)?;
            above = cur;
        }
        z.finish()
    })()
    .unwrap_or_default();
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// The shape of a PNG or JPEG file from its header.
pub fn encoded_shape(data: &[u8]) -> Result<Shape, String> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") && data.len() >= 26 && &data[12..16] == b"IHDR" {
        let w = u32::from_be_bytes([data[16], data[17], data[18], data[19]]) as usize;
        let h = u32::from_be_bytes([data[20], data[21], data[22], data[23]]) as usize;
        let c = match data[25] {
            0 | 4 => 1,
            _ => 3,
        };
        return Ok([h, w, c]);
    }
    if data.starts_with(&[0xFF, 0xD8]) {
        let mut i = 2;
        while i + 4 <= data.len() {
            if data[i] != 0xFF {
                i += 1;
                continue;
            }
            let m = data[i + 1];
            if m == 0xFF || m == 0x01 || (0xD0..=0xD7).contains(&m) {
                i += if m == 0xFF { 1 } else { 2 };
                continue;
            }
            let len = u16::from_be_bytes([data[i + 2], data[i + 3]]) as usize;
            let sof = matches!(m, 0xC0..=0xCF) && !matches!(m, 0xC4 | 0xC8 | 0xCC);
            if sof && i + 10 <= data.len() {
                let h = u16::from_be_bytes([data[i + 5], data[i + 6]]) as usize;
                let w = u16::from_be_bytes([data[i + 7], data[i + 8]]) as usize;
                let c = if data[i + 9] == 1 { 1 } else { 3 };
                return Ok([h, w, c]);
            }
            i += 2 + len;
        }
        return Err("a JPEG without a frame header (SOF)".into());
    }
    Err("compressed image data that is neither PNG nor JPEG".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bgr_becomes_rgb_and_png_header_reads_back() {
        let p = pixels(1, 2, "bgr8", Some(8), false, &[1, 2, 3, 4, 5, 6, 9, 9]).unwrap();
        assert_eq!(p.bytes, vec![3, 2, 1, 6, 5, 4]);
        let f = png(&p);
        assert_eq!(encoded_shape(&f).unwrap(), [1, 2, 3]);
        // The IDAT stream inflates to the Up-filtered rows.
        let idat_len = u32::from_be_bytes([f[33], f[34], f[35], f[36]]) as usize;
        let raw = fdeflate::decompress_to_vec(&f[41..41 + idat_len]).unwrap();
        assert_eq!(raw, vec![2, 3, 2, 1, 6, 5, 4]);
        let p = pixels(1, 1, "mono16", None, false, &[1, 2]).unwrap();
        assert_eq!(p.bytes, vec![2, 1]);
    }

    #[test]
    fn short_and_unknown_images_are_errors() {
        assert!(pixels(2, 2, "rgb8", None, false, &[0; 11]).is_err());
        assert!(pixels(1, 1, "bayer_rggb8", None, false, &[0; 4]).is_err());
        assert!(pixels(usize::MAX, usize::MAX, "rgb8", None, false, &[]).is_err());
        assert!(encoded_shape(b"GIF89a").is_err());
        assert!(encoded_shape(&[0xFF, 0xD8, 0xFF]).is_err());
    }
}
