//! ECMAScript `Number::toString` for the engine's number-to-string.
//!
//! The port routes the engine's `snprintf(buf, size, "%.15g", x)` here (see
//! MVM_SNPRINTF in c/microvium_port.h). `%.15g` drops digits that JavaScript
//! keeps; Rust's `{:e}` gives the shortest digit string that round-trips,
//! which is what the ECMAScript algorithm needs, and the layout rules below
//! are the spec's.

use std::os::raw::{c_char, c_int};

pub fn js_number_to_string(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-Infinity".into() } else { "Infinity".into() };
    }
    let mut out = String::new();
    if x < 0.0 {
        out.push('-');
    }
    // `{:e}` gives the shortest digit count k that round-trips, but not
    // always the k-digit decimal closest to x, which ECMAScript requires;
    // `{:.*e}` at k digits is correctly rounded, hence closest, unless that
    // decimal does not read back as x: next to a power of two the gap to
    // the double below is half the gap above (2 ** -24 rounds to
    // ...062e-8, which is the double below), and then the shortest is the
    // closest that round-trips.
    let shortest = format!("{:e}", x.abs());
    let k = shortest.split_once('e').expect("{:e} has an exponent").0.chars().filter(|c| c.is_ascii_digit()).count();
    let rounded = format!("{:.*e}", k - 1, x.abs());
    let sci = if rounded.parse::<f64>() == Ok(x.abs()) { rounded } else { shortest };
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let k = digits.len() as i32;
    let n = exp + 1; // position of the decimal point relative to the digits
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat('0').take((n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat('0').take((-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if n - 1 < 0 { '-' } else { '+' });
        out.push_str(&(n - 1).abs().to_string());
    }
    out
}

/// Called by the engine in place of `snprintf` for doubles. Returns the
/// length written, as snprintf does (excluding the terminator).
///
/// # Safety
/// `buf` must point to `size` writable bytes (the engine passes a 64-byte
/// stack buffer, and JS number strings are at most 25 bytes).
#[no_mangle]
pub unsafe extern "C" fn host_format_number(
    buf: *mut c_char,
    size: usize,
    _fmt: *const c_char,
    x: f64,
) -> c_int {
    let s = js_number_to_string(x);
    if size == 0 {
        return s.len() as c_int;
    }
    let n = s.len().min(size - 1);
    // SAFETY: n < size, and the caller guarantees `size` writable bytes.
    std::ptr::copy_nonoverlapping(s.as_ptr(), buf as *mut u8, n);
    *buf.add(n) = 0;
    n as c_int
}

#[cfg(test)]
mod tests {
    use super::js_number_to_string as f;
    #[test]
    fn matches_javascript() {
        assert_eq!(f(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(f(1.5), "1.5");
        assert_eq!(f(-2.25), "-2.25");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(1e20), "100000000000000000000");
        assert_eq!(f(1.234e-7), "1.234e-7");
        assert_eq!(f(0.000001), "0.000001");
        assert_eq!(f(123456789.125), "123456789.125");
        assert_eq!(f(5e-324), "5e-324");
        assert_eq!(f(1.7976931348623157e308), "1.7976931348623157e+308");
        assert_eq!(f(230107665401933.62), "230107665401933.62");
        assert_eq!(f(1e15 + 0.3), "1000000000000000.2");
        // Every string must read back as the same number.
        for e in -1074..1024 {
            let x = 2f64.powi(e);
            assert_eq!(f(x).parse::<f64>(), Ok(x), "2 ** {e}");
        }
    }
}

/// The engine's `pow` (see c/engine.c): V8's Math.pow, so that guest `**`
/// gives Node's results to the last bit; the C library's pow if no
/// JavaScript environment is at hand.
#[no_mangle]
pub extern "C" fn host_pow(x: f64, y: f64) -> f64 {
    crate::runtime::math_pow(x, y).unwrap_or_else(|| x.powf(y))
}
