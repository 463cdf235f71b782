//! PostgreSQL's text output forms for the values bagbase sends most: `float8`/`float4`
//! (`float8out` with `extra_float_digits` ≥ 1: shortest round-trip digits, exponent
//! form below 1e-4 and from 1e15 — 1e6 for `float4` — as `1e+20`, `1.5e-07`),
//! `timestamp` and `date` in the ISO date style (`2024-02-29 23:59:59.5`, fraction
//! trimmed, `… BC` before year 1) and `bytea` in hex. Each writes into a small stack
//! buffer; [`super::rows`] length-prefixes it into the row. Checked against
//! PostgreSQL 15's own output (tests below).

/// Enough for any form written here (`-1.2345678901234567e-308`, a timestamp with a
/// six-digit year and ` BC`).
pub const MAX_LEN: usize = 40;

/// A fixed-size output buffer.
pub struct Text {
    buf: [u8; MAX_LEN],
    len: usize,
}

impl Default for Text {
    fn default() -> Self {
        Text {
            buf: [0; MAX_LEN],
            len: 0,
        }
    }
}

impl Text {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push(&mut self, b: u8) {
        if self.len < MAX_LEN {
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    fn extend(&mut self, s: &[u8]) {
        for &b in s {
            self.push(b);
        }
    }

    /// `v` in decimal, zero-padded to `width` digits.
    fn padded(&mut self, v: u64, width: usize) {
        let mut digits = itoa::Buffer::new();
        let s = digits.format(v).as_bytes();
        for _ in s.len()..width {
            self.push(b'0');
        }
        self.extend(s);
    }
}

/// `float8out`: `digits` is the exponent from which (and below 1e-4) the exponent form
/// is used — 15 for `float8`, 6 for `float4` (`DBL_DIG`, `FLT_DIG`).
/// `shortest` is ryu's form of |v| (unused when `v` is not finite).
fn float(v: f64, shortest: &str, dig: i32) -> Text {
    let mut out = Text::default();
    if v.is_nan() {
        out.extend(b"NaN");
        return out;
    }
    if v.is_sign_negative() {
        out.push(b'-');
    }
    if v.is_infinite() {
        out.extend(b"Infinity");
        return out;
    }
    if v == 0.0 {
        out.push(b'0');
        return out;
    }
    // `shortest` is ryu's form of |v| ("1.0", "0.0001", "1.5e-7", "1e20"): collect its
    // significant digits and the decimal exponent of the first one.
    let mut all = [0u8; 40];
    let (mut n, mut int_len, mut exp, mut exp_neg) = (0, None, 0i32, false);
    let mut in_exp = false;
    for &b in shortest.as_bytes() {
        match b {
            b'.' => int_len = Some(n),
            b'e' | b'E' => {
                int_len.get_or_insert(n);
                in_exp = true;
            }
            b'-' if in_exp => exp_neg = true,
            b'0'..=b'9' if in_exp => exp = exp * 10 + i32::from(b - b'0'),
            b'0'..=b'9' if n < all.len() => {
                all[n] = b;
                n += 1;
            }
            _ => {}
        }
    }
    let int_len = int_len.unwrap_or(n);
    if exp_neg {
        exp = -exp;
    }
    let lead = all[..n].iter().take_while(|&&b| b == b'0').count();
    let mut digits = &all[lead..n];
    while let [rest @ .., b'0'] = digits {
        digits = rest;
    }
    if digits.is_empty() {
        out.push(b'0');
        return out;
    }
    let e10 = int_len as i32 - 1 - lead as i32 + exp;
    if !(-4..dig).contains(&e10) {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend(&digits[1..]);
        }
        out.push(b'e');
        out.push(if e10 < 0 { b'-' } else { b'+' });
        out.padded(u64::from(e10.unsigned_abs()), 2);
    } else if e10 >= 0 {
        let point = e10 as usize + 1;
        if digits.len() <= point {
            out.extend(digits);
            for _ in digits.len()..point {
                out.push(b'0');
            }
        } else {
            out.extend(&digits[..point]);
            out.push(b'.');
            out.extend(&digits[point..]);
        }
    } else {
        out.extend(b"0.");
        for _ in 0..(-e10 - 1) {
            out.push(b'0');
        }
        out.extend(digits);
    }
    out
}

pub fn float8(v: f64) -> Text {
    let mut digits = ryu::Buffer::new();
    // Most values: ryu's form is PostgreSQL's (see `plain`).
    if (1e-4..1e15).contains(&v.abs()) {
        return plain(v.is_sign_negative(), digits.format_finite(v.abs()));
    }
    float(v, digits.format_finite(v.abs()), 15)
}

/// (The flags of an `f32` are those of the same `f64`; its digits are its own.)
pub fn float4(v: f32) -> Text {
    let mut digits = ryu::Buffer::new();
    if (1e-4..1e6).contains(&v.abs()) {
        return plain(v.is_sign_negative(), digits.format_finite(v.abs()));
    }
    float(f64::from(v), digits.format_finite(v.abs()), 6)
}

/// A value whose shortest digits start at 10^-4 to 10^(dig-1) (`float8out` writes it
/// without an exponent): ryu writes it the same way (it uses exponents only outside
/// 10^-5..10^16, 10^13 for `f32`), except that an integer ends in `.0`. The bounds are
/// checked on the value: the shortest digits of a value at or above the double
/// nearest 0.0001 are at least 0.0001, as that double's own are exactly 0.0001.
fn plain(negative: bool, shortest: &str) -> Text {
    let mut out = Text::default();
    if negative {
        out.push(b'-');
    }
    let s = shortest.as_bytes();
    out.extend(s.strip_suffix(b".0").unwrap_or(s));
    out
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// (year, month, day) of the proleptic Gregorian calendar, `days` after 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DD`; returns whether the year is before 1 (the caller appends ` BC`).
fn date_part(out: &mut Text, days: i64) -> bool {
    let (y, m, d) = civil(days);
    let bc = y <= 0;
    out.padded(if bc { (1 - y) as u64 } else { y as u64 }, 4);
    out.push(b'-');
    out.padded(u64::from(m), 2);
    out.push(b'-');
    out.padded(u64::from(d), 2);
    bc
}

/// A `date` (days since 1970-01-01).
pub fn date(days: i32) -> Text {
    let mut out = Text::default();
    if date_part(&mut out, i64::from(days)) {
        out.extend(b" BC");
    }
    out
}

/// A `timestamp` (without time zone) of `micros` since 1970-01-01 00:00:00.
pub fn timestamp(micros: i64) -> Text {
    let mut out = Text::default();
    let days = micros.div_euclid(MICROS_PER_DAY);
    let rem = micros.rem_euclid(MICROS_PER_DAY) as u64;
    let bc = date_part(&mut out, days);
    let (secs, frac) = (rem / 1_000_000, rem % 1_000_000);
    out.push(b' ');
    out.padded(secs / 3600, 2);
    out.push(b':');
    out.padded(secs / 60 % 60, 2);
    out.push(b':');
    out.padded(secs % 60, 2);
    if frac != 0 {
        let mut f = frac;
        let mut width = 6;
        while f % 10 == 0 {
            f /= 10;
            width -= 1;
        }
        out.push(b'.');
        out.padded(f, width);
    }
    if bc {
        out.extend(b" BC");
    }
    out
}

/// Lower-case hex digits of `b`.
pub fn hex_pair(b: u8) -> [u8; 2] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: Text) -> String {
        String::from_utf8(t.as_bytes().to_vec()).unwrap()
    }

    /// Inputs and PostgreSQL 15's output (`SELECT v::float8`, extra_float_digits 1).
    #[test]
    fn float8_as_postgresql_prints_it() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (-0.0, "-0"),
            (0.0, "0"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (123456789012345.0, "123456789012345"),
            (1234567890123456.0, "1.234567890123456e+15"),
            (1e20, "1e+20"),
            (1.5e-7, "1.5e-07"),
            (1e-5, "1e-05"),
            (1e300, "1e+300"),
            (0.1, "0.1"),
            (100.0, "100"),
            (1234567.0, "1234567"),
            (12345.678, "12345.678"),
            (-12345.678, "-12345.678"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (f64::NAN, "NaN"),
            (2.2250738585072014e-308, "2.2250738585072014e-308"),
            (3.4028235e38, "3.4028235e+38"),
            (1e-40, "1e-40"),
            (5e-324, "5e-324"),
            (1e100, "1e+100"),
            (123e-310, "1.23e-308"),
            (0.00009999999999999999, "9.999999999999999e-05"),
            (999999999999999.9, "999999999999999.9"),
            (999999999999999.0, "999999999999999"),
            (1e15, "1e+15"),
            (-36.9, "-36.9"),
            (0.091, "0.091"),
        ];
        for (v, want) in cases {
            assert_eq!(s(float8(*v)), *want, "{v:e}");
        }
    }

    /// The short path (`plain`) writes what the general one does, over the range it
    /// takes and across its edges.
    #[test]
    fn plain_floats_agree_with_the_general_form() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..200_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let mantissa = (x >> 11) as f64 / (1u64 << 53) as f64 + 0.5;
            let e = (i % 22) - 6;
            let v = mantissa * 10f64.powi(e) * if x & 1 == 0 { 1.0 } else { -1.0 };
            let general = float(v, ryu::Buffer::new().format_finite(v.abs()), 15);
            assert_eq!(s(float8(v)), s(general), "{v:e}");
            let w = v as f32;
            let general = float(f64::from(w), ryu::Buffer::new().format_finite(w.abs()), 6);
            assert_eq!(s(float4(w)), s(general), "{w:e}");
            let r = v.round();
            let general = float(r, ryu::Buffer::new().format_finite(r.abs()), 15);
            assert_eq!(s(float8(r)), s(general), "{r:e}");
        }
    }

    /// PostgreSQL 15's `SELECT v::float4`.
    #[test]
    fn float4_as_postgresql_prints_it() {
        let cases: &[(f32, &str)] = &[
            (1.0, "1"),
            (-0.0, "-0"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (1e20, "1e+20"),
            (1.5e-7, "1.5e-07"),
            (0.1, "0.1"),
            (100.0, "100"),
            (1234567.0, "1.234567e+06"),
            (123456.0, "123456"),
            (12345.678, "12345.678"),
            (3.4028235e38, "3.4028235e+38"),
            (1e-40, "1e-40"),
            (1e-45, "1e-45"),
            (999999.94, "999999.94"),
            (1e6, "1e+06"),
            (-0.00012, "-0.00012"),
            (9.9999e-5, "9.9999e-05"),
        ];
        for (v, want) in cases {
            assert_eq!(s(float4(*v)), *want, "{v:e}");
        }
    }

    /// PostgreSQL 15's `SELECT t::timestamp` and `d::date`.
    #[test]
    fn timestamps_and_dates_as_postgresql_prints_them() {
        let us = |days: i64, secs: i64, frac: i64| days * MICROS_PER_DAY + secs * 1_000_000 + frac;
        assert_eq!(s(timestamp(0)), "1970-01-01 00:00:00");
        assert_eq!(s(timestamp(33_000)), "1970-01-01 00:00:00.033");
        assert_eq!(s(timestamp(-500_000)), "1969-12-31 23:59:59.5");
        // 2024-02-29 is day 19782.
        assert_eq!(
            s(timestamp(us(19_782, 86_399, 1))),
            "2024-02-29 23:59:59.000001"
        );
        // 0001-01-01 is day -719162; the day before is 0001-12-31 BC.
        assert_eq!(s(timestamp(us(-719_162, 0, 0))), "0001-01-01 00:00:00");
        assert_eq!(
            s(timestamp(us(-719_163, 43_200, 0))),
            "0001-12-31 12:00:00 BC"
        );
        // 12345-01-01 is day 3789391.
        assert_eq!(s(timestamp(us(3_789_391, 0, 0))), "12345-01-01 00:00:00");
        assert_eq!(s(date(19_723)), "2024-01-01");
        assert_eq!(s(date(-719_528)), "0001-01-01 BC");
    }

    #[test]
    fn hex() {
        assert_eq!(hex_pair(0x0f), *b"0f");
        assert_eq!(hex_pair(0xa0), *b"a0");
    }
}
