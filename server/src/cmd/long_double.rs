//! INCRBYFLOAT's arithmetic as Redis does it: in the x87 80-bit `long double` (a 64-bit
//! mantissa), parsed as `strtold` parses, added with round-to-nearest-even, and printed as
//! `%.17Lf` with the trailing zeros dropped. A double would give other digits (Redis
//! answers `5010.60000000000000009` for 10.6 + 5000), and the text is what is stored.

/// A finite long double: `mant * 2^exp`, `mant` normalized (top bit set) or zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LongDouble {
    neg: bool,
    mant: u64,
    exp: i32,
}

/// Largest binary exponent of a finite long double: values stay below 2^16384.
const MAX_EXP: i32 = 16384 - 64;

/// Below the smallest normal long double (2^-16382) a result is taken as zero.
const MIN_EXP: i32 = -16382 - 63;

/// A big unsigned integer, little-endian 32-bit limbs, no leading zero limbs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u128(mut v: u128) -> Big {
        let mut b = Big(Vec::new());
        while v != 0 {
            b.0.push(v as u32);
            v >>= 32;
        }
        b
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn bits(&self) -> u32 {
        match self.0.last() {
            None => 0,
            Some(top) => (self.0.len() as u32 - 1) * 32 + (32 - top.leading_zeros()),
        }
    }

    fn bit(&self, i: u32) -> bool {
        self.0
            .get((i / 32) as usize)
            .is_some_and(|l| l >> (i % 32) & 1 == 1)
    }

    /// Whether any bit below `i` is set.
    fn any_below(&self, i: u32) -> bool {
        let whole = (i / 32) as usize;
        self.0.iter().take(whole).any(|&l| l != 0)
            || (!i.is_multiple_of(32)
                && self
                    .0
                    .get(whole)
                    .is_some_and(|l| l & ((1 << (i % 32)) - 1) != 0))
    }

    fn mul_small_add(&mut self, m: u32, add: u32) {
        let mut carry = u64::from(add);
        for l in self.0.iter_mut() {
            let v = u64::from(*l) * u64::from(m) + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn pow10(n: u32) -> Big {
        let mut b = Big(vec![1]);
        for _ in 0..n {
            b.mul_small_add(10, 0);
        }
        b
    }

    fn mul(&self, o: &Big) -> Big {
        let mut out = vec![0u32; self.0.len() + o.0.len()];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &b) in o.0.iter().enumerate() {
                let v = u64::from(out[i + j]) + u64::from(a) * u64::from(b) + carry;
                out[i + j] = v as u32;
                carry = v >> 32;
            }
            let mut k = i + o.0.len();
            while carry != 0 {
                let v = u64::from(out[k]) + carry;
                out[k] = v as u32;
                carry = v >> 32;
                k += 1;
            }
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    fn shl(&self, n: u32) -> Big {
        if self.is_zero() {
            return Big::default();
        }
        let (whole, part) = ((n / 32) as usize, n % 32);
        let mut out = vec![0u32; whole];
        let mut carry = 0u32;
        for &l in &self.0 {
            if part == 0 {
                out.push(l);
            } else {
                out.push(l << part | carry);
                carry = l >> (32 - part);
            }
        }
        if carry != 0 {
            out.push(carry);
        }
        Big(out)
    }

    /// The bits `[from, from + 128)` as a number.
    fn window(&self, from: u32) -> u128 {
        (0..128u32)
            .filter(|i| self.bit(from + i))
            .fold(0u128, |acc, i| acc | 1 << i)
    }

    fn cmp(&self, o: &Big) -> std::cmp::Ordering {
        self.0
            .len()
            .cmp(&o.0.len())
            .then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }

    fn sub_assign(&mut self, o: &Big) {
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let v = i64::from(self.0[i]) - i64::from(o.0.get(i).copied().unwrap_or(0)) - borrow;
            borrow = i64::from(v < 0);
            self.0[i] = (v + (borrow << 32)) as u32;
        }
        self.trim();
    }

    /// Divides by 10^9 in place, returning the remainder.
    fn div_1e9(&mut self) -> u32 {
        let mut rem = 0u64;
        for l in self.0.iter_mut().rev() {
            let v = rem << 32 | u64::from(*l);
            *l = (v / 1_000_000_000) as u32;
            rem = v % 1_000_000_000;
        }
        self.trim();
        rem as u32
    }

    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".into();
        }
        let mut n = self.clone();
        let mut parts = Vec::new();
        while !n.is_zero() {
            parts.push(n.div_1e9());
        }
        let mut s = parts.pop().map(|p| p.to_string()).unwrap_or_default();
        for p in parts.iter().rev() {
            s.push_str(&format!("{p:09}"));
        }
        s
    }
}

/// A parsed value as `strtold` leaves it (`log2`: the binary logarithm of the exact value,
/// rounded down). Overflow is ERANGE, which Redis refuses. A value below the normal range
/// (a subnormal long double, which `strtold` returns without complaint) is kept as the
/// smallest normal one: no sum with a normal value and no 17-decimal text can tell them
/// apart. Below half the smallest subnormal it is zero with ERANGE, refused too.
fn in_range(neg: bool, v: Option<LongDouble>, log2: i64) -> Result<LongDouble, bool> {
    match v {
        Some(v) if v.mant != 0 => Ok(v),
        Some(_) if log2 >= -16446 => Ok(LongDouble {
            neg,
            mant: 1 << 63,
            exp: MIN_EXP,
        }),
        _ => Err(false),
    }
}

/// The digits of an exponent (an optional sign, then at least one decimal digit), capped
/// far beyond any exponent in range.
fn exponent(e: &[u8]) -> Option<i64> {
    let (neg, digits) = match e.first() {
        Some(b'-') => (true, &e[1..]),
        Some(b'+') => (false, &e[1..]),
        _ => (false, e),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits
        .iter()
        .fold(0i64, |v, d| (v * 10 + i64::from(d - b'0')).min(1 << 40));
    Some(if neg { -v } else { v })
}

/// A float's text after its sign (and its `0x`, for `radix` 16), lowercased: digits in
/// `radix` with an optional point, at least one digit, then an optional `marker` (`e`, or
/// `p` for a power of two) and a decimal exponent, over the whole text. Returns the digits
/// as one integer, how many of them followed the point, and the exponent.
fn mantissa(s: &[u8], radix: u32, marker: u8) -> Option<(Big, i64, i64)> {
    let mut digits = Big::default();
    let mut any = false;
    let mut point = false;
    let mut frac = 0i64;
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b'.' && !point {
            point = true;
        } else if let Some(d) = char::from(c).to_digit(radix) {
            any = true;
            // Leading zeros add nothing, and keep the integer empty for a zero.
            if d != 0 || !digits.is_zero() {
                digits.mul_small_add(radix, d);
            }
            if point {
                frac += 1;
            }
        } else {
            break;
        }
        i += 1;
    }
    if !any {
        return None;
    }
    let exp = match s.get(i) {
        None => 0,
        Some(&c) if c == marker => exponent(&s[i + 1..])?,
        Some(_) => return None,
    };
    Some((digits, frac, exp))
}

/// `strtold`'s hexadecimal form after its `0x` (lowercased): hex digits with an optional
/// point, then an optional `p` and a decimal power of two. The value is exact in binary,
/// so it is only rounded to the mantissa.
fn parse_hex(neg: bool, s: &[u8]) -> Result<LongDouble, bool> {
    let (digits, frac, exp2) = mantissa(s, 16, b'p').ok_or(false)?;
    if digits.is_zero() {
        return Ok(LongDouble::zero(neg));
    }
    let exp = exp2.saturating_sub(4 * frac);
    let log2 = i64::from(digits.bits()) - 1 + exp;
    // Exactly half the smallest subnormal rounds to even, zero: ERANGE.
    let half_smallest = log2 == -16446 && !digits.any_below(digits.bits() - 1);
    if !(-20_000..=20_000).contains(&log2) || half_smallest {
        return Err(false);
    }
    in_range(neg, round(neg, &digits, exp, false), log2)
}

/// Rounds `n * 2^exp` (with `sticky`: something nonzero below `n`) to a 64-bit mantissa,
/// ties to even. None when it overflows.
fn round(neg: bool, n: &Big, exp: i64, sticky: bool) -> Option<LongDouble> {
    let bits = n.bits();
    if bits == 0 {
        return Some(LongDouble::zero(neg));
    }
    // A remainder (`sticky`) only ever comes with more than 64 bits: a quotient of 66 or
    // more, or a sum whose smaller term lost bits, which cancellation cannot bring below 124.
    let (mant, e) = if bits <= 64 {
        let shift = 64 - bits;
        ((n.window(0) as u64) << shift, exp - i64::from(shift))
    } else {
        let shift = bits - 64;
        let mant = n.window(shift) as u64;
        let half = n.bit(shift - 1);
        let rest = sticky || n.any_below(shift - 1);
        let mut mant = mant;
        let mut e = exp + i64::from(shift);
        if half && (rest || mant & 1 == 1) {
            match mant.checked_add(1) {
                Some(m) => mant = m,
                None => {
                    mant = 1 << 63;
                    e += 1;
                }
            }
        }
        (mant, e)
    };
    if e > i64::from(MAX_EXP) {
        return None;
    }
    if e < i64::from(MIN_EXP) {
        return Some(LongDouble::zero(neg));
    }
    Some(LongDouble {
        neg,
        mant,
        exp: e as i32,
    })
}

impl LongDouble {
    /// Zero (negative zero when `neg`).
    pub(crate) fn zero(neg: bool) -> Self {
        LongDouble {
            neg,
            mant: 0,
            exp: 0,
        }
    }

    /// Parses `s` as Redis accepts a long double: `strtold`'s syntax over the whole text,
    /// no leading space. That is a sign, then decimal digits with an optional point and
    /// an optional `e` exponent, or `0x` and hexadecimal digits with an optional point and
    /// an optional `p` (binary) exponent. `Err(true)` for infinity (a valid float that no
    /// sum can use), `Err(false)` for text that is not a float (or NaN, or out of range).
    pub(crate) fn parse(s: &[u8]) -> Result<Self, bool> {
        let (neg, rest) = match s.first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let lower = rest.to_ascii_lowercase();
        if lower == b"inf" || lower == b"infinity" {
            return Err(true);
        }
        if let Some(hex) = lower.strip_prefix(b"0x") {
            return parse_hex(neg, hex);
        }
        let (digits, frac, exp10) = mantissa(&lower, 10, b'e').ok_or(false)?;
        if digits.is_zero() {
            return Ok(LongDouble::zero(neg));
        }
        // Out of range either way, `strtold` sets ERANGE, and Redis refuses the text.
        let e = exp10.saturating_sub(frac);
        if e > 5000 || e < -5000 - digits.bits() as i64 {
            return Err(false);
        }
        let in_range = |v, log2| in_range(neg, v, log2);
        if e >= 0 {
            let n = digits.mul(&Big::pow10(e as u32));
            return in_range(round(neg, &n, 0, false), 0);
        }
        // digits / 10^-e: a quotient of 66 or 67 bits, then rounded with the remainder.
        let m = Big::pow10((-e) as u32);
        let s = 66 + i64::from(m.bits()) - i64::from(digits.bits());
        let (mut num, den) = if s >= 0 {
            (digits.shl(s as u32), m)
        } else {
            (digits, m.shl((-s) as u32))
        };
        let mut q = 0u128;
        for bit in (0..68u32).rev() {
            let shifted = den.shl(bit);
            if num.cmp(&shifted) != std::cmp::Ordering::Less {
                num.sub_assign(&shifted);
                q |= 1 << bit;
            }
        }
        let q = Big::from_u128(q);
        let log2 = i64::from(q.bits()) - 1 - s;
        in_range(round(neg, &q, -s, !num.is_zero()), log2)
    }

    /// `self + o`, rounded to nearest even; None when it overflows.
    pub(crate) fn add(self, o: LongDouble) -> Option<LongDouble> {
        if o.mant == 0 {
            return Some(if self.mant == 0 {
                LongDouble::zero(self.neg && o.neg)
            } else {
                self
            });
        }
        if self.mant == 0 {
            return Some(o);
        }
        let (big, small) = if (self.exp, self.mant) >= (o.exp, o.mant) {
            (self, o)
        } else {
            (o, self)
        };
        // Both with their top bit at 125 (room for a carry), in units of 2^(big.exp - 62).
        let mb = u128::from(big.mant) << 62;
        let d = (big.exp - small.exp) as u32;
        let full = u128::from(small.mant) << 62;
        let (ms, sticky) = if d >= 126 {
            (0, true)
        } else {
            (full >> d, full & ((1u128 << d) - 1) != 0)
        };
        let (m, sticky) = if big.neg == small.neg {
            (mb + ms, sticky)
        } else if sticky {
            (mb - ms - 1, true)
        } else {
            (mb - ms, false)
        };
        if m == 0 && !sticky {
            return Some(LongDouble::zero(false));
        }
        round(big.neg, &Big::from_u128(m), i64::from(big.exp) - 62, sticky)
    }

    /// `%.17Lf` without its trailing zeros (and point), "-0" as "0", as Redis stores it.
    pub(crate) fn text(self) -> String {
        let digits = if self.mant == 0 {
            Big::default()
        } else {
            let n = Big::from_u128(u128::from(self.mant)).mul(&Big::pow10(17));
            if self.exp >= 0 {
                n.shl(self.exp as u32)
            } else {
                let shift = (-self.exp) as u32;
                // q = n >> shift, rounded half to even.
                let whole = (shift / 32) as usize;
                let part = shift % 32;
                let mut q = Big(if whole >= n.0.len() {
                    Vec::new()
                } else {
                    let mut v: Vec<u32> = n.0[whole..].to_vec();
                    if part != 0 {
                        for i in 0..v.len() {
                            let hi = v.get(i + 1).copied().unwrap_or(0);
                            v[i] = v[i] >> part | hi << (32 - part);
                        }
                    }
                    v
                });
                q.trim();
                let half = n.bit(shift - 1);
                let rest = n.any_below(shift - 1);
                let odd = q.0.first().is_some_and(|l| l & 1 == 1);
                if half && (rest || odd) {
                    q.mul_small_add(1, 1);
                }
                q
            }
        };
        let mut s = digits.to_decimal();
        if s.len() <= 17 {
            s = format!("{}{s}", "0".repeat(18 - s.len()));
        }
        let (int, frac) = s.split_at(s.len() - 17);
        let frac = frac.trim_end_matches('0');
        let mut out = String::with_capacity(s.len() + 2);
        if self.neg {
            out.push('-');
        }
        out.push_str(int);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        if out == "-0" {
            out = "0".into();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: &str, b: &str) -> String {
        let a = LongDouble::parse(a.as_bytes()).unwrap_or_else(|e| panic!("{a}: {e}"));
        let b = LongDouble::parse(b.as_bytes()).unwrap_or_else(|e| panic!("{b}: {e}"));
        a.add(b)
            .map(LongDouble::text)
            .unwrap_or_else(|| "overflow".into())
    }

    #[test]
    fn sums_print_as_redis_prints_them() {
        // Each checked against redis-server 7.0's INCRBYFLOAT.
        assert_eq!(sum("10.5", "0.1"), "10.6");
        assert_eq!(sum("10.6", "5.0e3"), "5010.60000000000000009");
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("3", "1.5"), "4.5");
        assert_eq!(sum("0", "-0"), "0");
        assert_eq!(sum("1", "-1"), "0");
        assert_eq!(sum("10", "5.0e3"), "5010");
    }

    #[test]
    fn text_that_is_not_a_float_is_refused() {
        for bad in [
            "",
            "abc",
            "1.2.3",
            "1e",
            "1e+",
            "--1",
            "1 ",
            "nan",
            ".",
            "0x",
            "0x.",
            "0xg",
            "0x1p",
            "0x1p+",
            "0x1.2.3",
            "0x-1",
            "0x1q",
            "0x1p1.5",
            "0x1p99999",
            "0x1p-99999",
        ] {
            assert_eq!(LongDouble::parse(bad.as_bytes()), Err(false), "{bad:?}");
        }
        assert_eq!(LongDouble::parse(b"inf"), Err(true));
        assert_eq!(LongDouble::parse(b"-Infinity"), Err(true));
        assert_eq!(LongDouble::parse(b"1e99999"), Err(false));
        assert_eq!(LongDouble::parse(b"1e-99999"), Err(false));
        assert_eq!(LongDouble::parse(b"1e-5000"), Err(false));
        assert!(LongDouble::parse(b"3.4e-4950").is_ok(), "a subnormal");
        assert_eq!(LongDouble::parse(b"0e99999"), Ok(LongDouble::zero(false)));
        assert_eq!(LongDouble::parse(b"0x0p99999"), Ok(LongDouble::zero(false)));
    }

    /// `strtold` reads hexadecimal floats, and so Redis's INCRBYFLOAT does.
    #[test]
    fn hexadecimal_floats_read_as_strtold_reads_them() {
        // Each checked against redis-server 7.0's INCRBYFLOAT.
        assert_eq!(sum("0x10", "1"), "17");
        assert_eq!(sum("0X1P3", "1"), "9");
        assert_eq!(sum("0x1.8p1", "1"), "4");
        assert_eq!(sum("0x.8", "1"), "1.5");
        assert_eq!(sum("-0x1", "1"), "0");
        assert_eq!(sum("0x1p-2", "0"), "0.25");
        assert_eq!(sum("0xA.8p-1", "0"), "5.25");
        assert_eq!(
            LongDouble::parse(b"0x1p16383"),
            Ok(LongDouble {
                neg: false,
                mant: 1 << 63,
                exp: 16383 - 63
            })
        );
        assert_eq!(LongDouble::parse(b"0x1p16384"), Err(false));
        assert!(
            LongDouble::parse(b"0x1p-16445").is_ok(),
            "the smallest subnormal"
        );
        assert_eq!(
            LongDouble::parse(b"0x1p-16446"),
            Err(false),
            "a tie, to zero"
        );
        assert!(LongDouble::parse(b"0x1.8p-16446").is_ok(), "rounds up");
        assert_eq!(LongDouble::parse(b"0x1p-16447"), Err(false));
    }
}
