//! LZF, the compression Redis applies to strings longer than 20 bytes in RDB files and
//! DUMP payloads: decompression for reading them, and a compressor producing the same
//! format (liblzf's: literal runs of up to 32 bytes, back references of up to 264 bytes
//! within 8 KiB).

/// Decompresses `input` into exactly `len` bytes; `None` if the data is malformed or does
/// not come out at `len`.
pub(crate) fn decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(len);
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let lit = input.get(ip..ip + run)?;
            if out.len() + run > len {
                return None;
            }
            out.extend_from_slice(lit);
            ip += run;
        } else {
            let mut run = ctrl >> 5;
            if run == 7 {
                run += usize::from(*input.get(ip)?);
                ip += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + usize::from(*input.get(ip)?) + 1;
            ip += 1;
            run += 2;
            if back > out.len() || out.len() + run > len {
                return None;
            }
            let start = out.len() - back;
            // Byte by byte: a reference may overlap what it produces.
            for i in 0..run {
                let b = out[start + i];
                out.push(b);
            }
        }
    }
    (out.len() == len).then_some(out)
}

const HLOG: u32 = 14;
const MAX_LIT: usize = 32;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

fn hash(b: &[u8], i: usize) -> usize {
    let v = (u32::from(b[i]) << 16) | (u32::from(b[i + 1]) << 8) | u32::from(b[i + 2]);
    (v.wrapping_mul(2_654_435_761) >> (32 - HLOG)) as usize
}

/// Compresses `input`; `None` unless the result is shorter than `input.len() - 4` (the
/// saving Redis requires before it stores a string compressed).
pub(crate) fn compress(input: &[u8]) -> Option<Vec<u8>> {
    if input.len() <= 4 {
        return None;
    }
    let limit = input.len() - 4;
    let mut table = vec![usize::MAX; 1 << HLOG];
    let mut out: Vec<u8> = Vec::with_capacity(limit);
    let mut lit_start = 0usize;
    let mut ip = 0usize;
    let flush_literals = |out: &mut Vec<u8>, from: usize, to: usize| {
        let mut at = from;
        while at < to {
            let n = (to - at).min(MAX_LIT);
            out.push((n - 1) as u8);
            out.extend_from_slice(&input[at..at + n]);
            at += n;
        }
    };
    while ip + 2 < input.len() {
        let h = hash(input, ip);
        let cand = table[h];
        table[h] = ip;
        if cand != usize::MAX && ip - cand <= MAX_OFF && input[cand..cand + 3] == input[ip..ip + 3]
        {
            let max = (input.len() - ip).min(MAX_REF);
            let mut len = 3;
            while len < max && input[cand + len] == input[ip + len] {
                len += 1;
            }
            flush_literals(&mut out, lit_start, ip);
            let off = ip - cand - 1;
            let l = len - 2;
            if l < 7 {
                out.push(((l << 5) | (off >> 8)) as u8);
            } else {
                out.push(((7 << 5) | (off >> 8)) as u8);
                out.push((l - 7) as u8);
            }
            out.push((off & 0xff) as u8);
            ip += len;
            lit_start = ip;
            if out.len() >= limit {
                return None;
            }
        } else {
            ip += 1;
        }
    }
    flush_literals(&mut out, lit_start, input.len());
    (out.len() < limit).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_compressible_data() {
        let data: Vec<u8> = b"abcabcabcabcabcabcabcabcabcabc-hello-hello-hello-hello"
            .iter()
            .cycle()
            .take(5000)
            .copied()
            .collect();
        let c = compress(&data).unwrap_or_default();
        assert!(c.len() < data.len() / 4, "{}", c.len());
        assert_eq!(decompress(&c, data.len()), Some(data));
    }

    #[test]
    fn incompressible_data_is_left_alone() {
        let data: Vec<u8> = (0u32..64).map(|i| (i * 97 % 251) as u8).collect();
        assert_eq!(compress(&data), None);
    }

    #[test]
    fn malformed_input_is_refused() {
        // A back reference before the start of the output.
        assert_eq!(decompress(&[0x20, 0x05], 3), None);
        // A literal run past the end of the input.
        assert_eq!(decompress(&[0x05, b'a'], 6), None);
        // The wrong length.
        assert_eq!(decompress(&[0x00, b'a'], 2), None);
    }
}
