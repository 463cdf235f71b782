//! A realistic robot recording for benchmarks: camera 640×480 (or any size) rgb8 at
//! 30 Hz, IMU at 200 Hz, joint_states (7 joints) at 100 Hz and tf at 50 Hz, as ROS1
//! messages.

use super::bagwriter::{BagWriter, Compression, Conn};
use super::Rng;
use std::path::Path;

const HEADER: &str = "MSG: std_msgs/Header\nuint32 seq\ntime stamp\nstring frame_id\n";
const SEP: &str =
    "================================================================================\n";

fn conns() -> Vec<Conn> {
    let vec3 = "MSG: geometry_msgs/Vector3\nfloat64 x\nfloat64 y\nfloat64 z\n";
    let quat = "MSG: geometry_msgs/Quaternion\nfloat64 x\nfloat64 y\nfloat64 z\nfloat64 w\n";
    vec![
        Conn {
            topic: "/camera/image_raw".into(),
            msg_type: "sensor_msgs/Image".into(),
            md5sum: "060021388200f6f0f447d0fcd9c64743".into(),
            definition: format!("std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\nuint8 is_bigendian\nuint32 step\nuint8[] data\n{SEP}{HEADER}"),
        },
        Conn {
            topic: "/imu/data".into(),
            msg_type: "sensor_msgs/Imu".into(),
            md5sum: "6a62c6daae103f4ff57a132d6f95cec2".into(),
            definition: format!("std_msgs/Header header\ngeometry_msgs/Quaternion orientation\nfloat64[9] orientation_covariance\ngeometry_msgs/Vector3 angular_velocity\nfloat64[9] angular_velocity_covariance\ngeometry_msgs/Vector3 linear_acceleration\nfloat64[9] linear_acceleration_covariance\n{SEP}{HEADER}{SEP}{quat}{SEP}{vec3}"),
        },
        Conn {
            topic: "/joint_states".into(),
            msg_type: "sensor_msgs/JointState".into(),
            md5sum: "3066dcd76a6cfaef579bd0f34173e9fd".into(),
            definition: format!("std_msgs/Header header\nstring[] name\nfloat64[] position\nfloat64[] velocity\nfloat64[] effort\n{SEP}{HEADER}"),
        },
        Conn {
            topic: "/tf".into(),
            msg_type: "tf2_msgs/TFMessage".into(),
            md5sum: "94810edda583a504dfda3829e70d7eec".into(),
            definition: format!("geometry_msgs/TransformStamped[] transforms\n{SEP}MSG: geometry_msgs/TransformStamped\nstd_msgs/Header header\nstring child_frame_id\ngeometry_msgs/Transform transform\n{SEP}{HEADER}{SEP}MSG: geometry_msgs/Transform\ngeometry_msgs/Vector3 translation\ngeometry_msgs/Quaternion rotation\n{SEP}{vec3}{SEP}{quat}"),
        },
    ]
}

fn header(m: &mut Vec<u8>, seq: u32, t: i64, frame: &str) {
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend_from_slice(&((t / 1_000_000_000) as u32).to_le_bytes());
    m.extend_from_slice(&((t % 1_000_000_000) as u32).to_le_bytes());
    m.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    m.extend_from_slice(frame.as_bytes());
}

fn f64s(m: &mut Vec<u8>, v: &[f64]) {
    for x in v {
        m.extend_from_slice(&x.to_le_bytes());
    }
}

/// Writes about `bytes` of recording; returns the number of camera frames.
pub fn write_robot_bag(path: &Path, bytes: u64, compression: Compression) -> u64 {
    write_robot_bag_sized(path, bytes, compression, 640, 480)
}

/// `write_robot_bag` with a `width`×`height` camera.
pub fn write_robot_bag_sized(
    path: &Path,
    bytes: u64,
    compression: Compression,
    width: usize,
    height: usize,
) -> u64 {
    let f = std::io::BufWriter::with_capacity(4 << 20, std::fs::File::create(path).unwrap());
    let mut w = BagWriter::new(f, conns(), compression).unwrap();
    let mut rng = Rng(99);
    let t0: i64 = 1_700_000_000_000_000_000;
    let tick = 1_000_000_000 / 600; // 600 Hz base clock: 30 | 100 | 200 | 50 divide it
    let mut frame = vec![0u8; width * height * 3];
    let mut written = 0u64;
    let mut frames = 0u64;
    let mut i: i64 = 0;
    while written < bytes {
        let t = t0 + i * tick;
        let mut m = Vec::new();
        if i % 20 == 0 {
            // Camera: a moving gradient with sensor noise (compresses like a real image, a bit).
            for (p, px) in frame.chunks_mut(3).enumerate() {
                let (x, y) = ((p % width) as i64, (p / width) as i64);
                let n = (rng.next() & 0x0f) as u8;
                px[0] = ((x + i / 20) & 0xff) as u8 ^ n;
                px[1] = ((y + i / 40) & 0xff) as u8 ^ n;
                px[2] = ((x + y) & 0xff) as u8;
            }
            header(&mut m, frames as u32, t, "camera");
            m.extend_from_slice(&(height as u32).to_le_bytes());
            m.extend_from_slice(&(width as u32).to_le_bytes());
            m.extend_from_slice(&4u32.to_le_bytes());
            m.extend_from_slice(b"rgb8");
            m.push(0);
            m.extend_from_slice(&(width as u32 * 3).to_le_bytes());
            m.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            m.extend_from_slice(&frame);
            w.write(0, t, &m).unwrap();
            frames += 1;
            written += m.len() as u64;
            m.clear();
        }
        if i % 3 == 0 {
            let s = (i as f64) * 1e-3;
            header(&mut m, i as u32, t, "imu");
            f64s(&mut m, &[0.0, 0.0, (s * 0.1).sin(), (s * 0.1).cos()]);
            f64s(&mut m, &[0.01; 9]);
            f64s(&mut m, &[s.sin() * 0.1, s.cos() * 0.1, 0.02]);
            f64s(&mut m, &[0.01; 9]);
            f64s(
                &mut m,
                &[s.sin() + (rng.next() % 100) as f64 * 1e-3, s.cos(), 9.81],
            );
            f64s(&mut m, &[0.01; 9]);
            w.write(1, t, &m).unwrap();
            written += m.len() as u64;
            m.clear();
        }
        if i % 6 == 0 {
            header(&mut m, i as u32, t, "base");
            m.extend_from_slice(&7u32.to_le_bytes());
            for j in 0..7 {
                let n = format!("joint_{j}");
                m.extend_from_slice(&(n.len() as u32).to_le_bytes());
                m.extend_from_slice(n.as_bytes());
            }
            for _ in 0..3 {
                m.extend_from_slice(&7u32.to_le_bytes());
                for j in 0..7 {
                    m.extend_from_slice(&(((i + j) as f64) * 1e-3).sin().to_le_bytes());
                }
            }
            w.write(2, t, &m).unwrap();
            written += m.len() as u64;
            m.clear();
        }
        if i % 12 == 0 {
            m.extend_from_slice(&2u32.to_le_bytes());
            for (k, child) in ["base_link", "camera"].iter().enumerate() {
                header(
                    &mut m,
                    i as u32,
                    t,
                    if k == 0 { "odom" } else { "base_link" },
                );
                m.extend_from_slice(&(child.len() as u32).to_le_bytes());
                m.extend_from_slice(child.as_bytes());
                f64s(&mut m, &[i as f64 * 1e-4, 0.5, 0.0, 0.0, 0.0, 0.0, 1.0]);
            }
            w.write(3, t, &m).unwrap();
            written += m.len() as u64;
        }
        i += 1;
    }
    w.finish().unwrap();
    frames
}
