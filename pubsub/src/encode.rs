//! The frames pub/sub pushes to subscribers, in RESP2 and RESP3.
//!
//! RESP2 has no push type, so messages and confirmations are plain arrays (`*`); RESP3 sends
//! them as push frames (`>`) so a client can tell them from the reply to its own command.
//! Everything else is identical, which is why one function per frame takes a [`Protocol`].
//!
//! Each function sizes its buffer exactly and writes once: a published message is encoded
//! once per protocol and then shared by every subscriber, so this is the only copy made.

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol a connection speaks (`HELLO 2` / `HELLO 3`); decides the frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RESP2: pushes are ordinary arrays.
    Resp2,
    /// RESP3: pushes use the `>` push type.
    Resp3,
}

/// The six subscription confirmations, each named by the command that triggers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Confirmation {
    /// `subscribe` (SUBSCRIBE).
    Subscribe,
    /// `unsubscribe` (UNSUBSCRIBE).
    Unsubscribe,
    /// `psubscribe` (PSUBSCRIBE).
    PSubscribe,
    /// `punsubscribe` (PUNSUBSCRIBE).
    PUnsubscribe,
    /// `ssubscribe` (SSUBSCRIBE).
    SSubscribe,
    /// `sunsubscribe` (SUNSUBSCRIBE).
    SUnsubscribe,
}

impl Confirmation {
    /// The kind's name as it appears in the first element of the frame.
    pub fn name(self) -> &'static [u8] {
        match self {
            Self::Subscribe => b"subscribe",
            Self::Unsubscribe => b"unsubscribe",
            Self::PSubscribe => b"psubscribe",
            Self::PUnsubscribe => b"punsubscribe",
            Self::SSubscribe => b"ssubscribe",
            Self::SUnsubscribe => b"sunsubscribe",
        }
    }
}

/// `message`: `[message, channel, payload]`, what SUBSCRIBE-ers receive from PUBLISH.
pub fn encode_message(protocol: Protocol, channel: &[u8], payload: &[u8]) -> Bytes {
    encode_push(protocol, &[b"message", channel, payload])
}

/// `smessage`: `[smessage, shard channel, payload]`, what SSUBSCRIBE-ers receive from SPUBLISH.
pub fn encode_smessage(protocol: Protocol, channel: &[u8], payload: &[u8]) -> Bytes {
    encode_push(protocol, &[b"smessage", channel, payload])
}

/// `pmessage`: `[pmessage, pattern, channel, payload]`, what PSUBSCRIBE-ers receive.
pub fn encode_pmessage(
    protocol: Protocol,
    pattern: &[u8],
    channel: &[u8],
    payload: &[u8],
) -> Bytes {
    encode_push(protocol, &[b"pmessage", pattern, channel, payload])
}

/// A confirmation `[kind, name, count]`; `name` is `None` (a null) only for an
/// unsubscribe-all sent while nothing was subscribed.
pub fn encode_confirmation(
    protocol: Protocol,
    kind: Confirmation,
    name: Option<&[u8]>,
    count: usize,
) -> Bytes {
    let mut buf = BytesMut::with_capacity(confirmation_len(protocol, kind, name, count));
    write_confirmation(&mut buf, protocol, kind, name, count);
    buf.freeze()
}

/// Appends a confirmation to `buf` (the connection's write buffer) without a separate
/// allocation; same frame as [`encode_confirmation`].
pub fn write_confirmation(
    buf: &mut BytesMut,
    protocol: Protocol,
    kind: Confirmation,
    name: Option<&[u8]>,
    count: usize,
) {
    buf.reserve(confirmation_len(protocol, kind, name, count));
    put_header(buf, protocol, 3);
    put_bulk(buf, kind.name());
    match name {
        Some(name) => put_bulk(buf, name),
        // RESP2 spells null as a null bulk string; RESP3 has its own null type.
        None => match protocol {
            Protocol::Resp2 => buf.put_slice(b"$-1\r\n"),
            Protocol::Resp3 => buf.put_slice(b"_\r\n"),
        },
    }
    buf.put_u8(b':');
    put_decimal(buf, count);
    buf.put_slice(b"\r\n");
}

fn confirmation_len(
    protocol: Protocol,
    kind: Confirmation,
    name: Option<&[u8]>,
    count: usize,
) -> usize {
    let name_len = match (name, protocol) {
        (Some(name), _) => bulk_len(name.len()),
        (None, Protocol::Resp2) => b"$-1\r\n".len(),
        (None, Protocol::Resp3) => b"_\r\n".len(),
    };
    header_len(3) + bulk_len(kind.name().len()) + name_len + 1 + decimal_len(count) + 2
}

fn encode_push(protocol: Protocol, parts: &[&[u8]]) -> Bytes {
    let len = header_len(parts.len()) + parts.iter().map(|p| bulk_len(p.len())).sum::<usize>();
    let mut buf = BytesMut::with_capacity(len);
    put_header(&mut buf, protocol, parts.len());
    for part in parts {
        put_bulk(&mut buf, part);
    }
    buf.freeze()
}

fn put_header(buf: &mut BytesMut, protocol: Protocol, elements: usize) {
    buf.put_u8(match protocol {
        Protocol::Resp2 => b'*',
        Protocol::Resp3 => b'>',
    });
    put_decimal(buf, elements);
    buf.put_slice(b"\r\n");
}

fn put_bulk(buf: &mut BytesMut, data: &[u8]) {
    buf.put_u8(b'$');
    put_decimal(buf, data.len());
    buf.put_slice(b"\r\n");
    buf.put_slice(data);
    buf.put_slice(b"\r\n");
}

fn put_decimal(buf: &mut BytesMut, mut n: usize) {
    // usize::MAX has 20 digits.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.put_slice(&digits[at..]);
}

fn header_len(elements: usize) -> usize {
    1 + decimal_len(elements) + 2
}

fn bulk_len(len: usize) -> usize {
    1 + decimal_len(len) + 2 + len + 2
}

fn decimal_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_resp2_is_a_three_element_array() {
        let frame = encode_message(Protocol::Resp2, b"news", b"hello");
        assert_eq!(
            &frame[..],
            b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
        );
    }

    #[test]
    fn message_resp3_is_a_push() {
        let frame = encode_message(Protocol::Resp3, b"news", b"");
        assert_eq!(
            &frame[..],
            b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn smessage_and_pmessage_shapes() {
        assert_eq!(
            &encode_smessage(Protocol::Resp2, b"s", b"p")[..],
            b"*3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\np\r\n"
        );
        assert_eq!(
            &encode_pmessage(Protocol::Resp3, b"n*", b"news", b"hi")[..],
            b">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
    }

    #[test]
    fn payload_is_binary_safe_and_long_lengths_are_right() {
        let payload = vec![b'\r'; 1234];
        let frame = encode_message(Protocol::Resp2, b"\x00\xff", &payload);
        let head = b"*3\r\n$7\r\nmessage\r\n$2\r\n\x00\xff\r\n$1234\r\n";
        assert_eq!(&frame[..head.len()], head);
        assert_eq!(frame.len(), head.len() + 1234 + 2);
        assert!(frame.ends_with(b"\r\r\n"));
    }

    #[test]
    fn confirmations_in_both_protocols() {
        assert_eq!(
            &encode_confirmation(Protocol::Resp2, Confirmation::Subscribe, Some(b"a"), 1)[..],
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(
            &encode_confirmation(Protocol::Resp3, Confirmation::PUnsubscribe, Some(b"p*"), 10)[..],
            b">3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:10\r\n"
        );
        assert_eq!(
            &encode_confirmation(Protocol::Resp2, Confirmation::Unsubscribe, None, 0)[..],
            b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
        );
        assert_eq!(
            &encode_confirmation(Protocol::Resp3, Confirmation::SUnsubscribe, None, 0)[..],
            b">3\r\n$12\r\nsunsubscribe\r\n_\r\n:0\r\n"
        );
    }

    #[test]
    fn write_confirmation_appends_to_existing_buffer() {
        let mut buf = BytesMut::from(&b"+OK\r\n"[..]);
        write_confirmation(
            &mut buf,
            Protocol::Resp2,
            Confirmation::SSubscribe,
            Some(b"x"),
            2,
        );
        assert_eq!(
            &buf[..],
            b"+OK\r\n*3\r\n$10\r\nssubscribe\r\n$1\r\nx\r\n:2\r\n"
        );
    }

    #[test]
    fn confirmation_length_is_computed_exactly() {
        for (name, count) in [
            (None, 0),
            (Some(&b"chan"[..]), 7),
            (Some(&b""[..]), 123_456),
        ] {
            for protocol in [Protocol::Resp2, Protocol::Resp3] {
                let frame = encode_confirmation(protocol, Confirmation::PSubscribe, name, count);
                assert_eq!(
                    frame.len(),
                    confirmation_len(protocol, Confirmation::PSubscribe, name, count)
                );
            }
        }
    }

    #[test]
    fn decimal_edges() {
        for n in [0usize, 9, 10, 99, 100, 12345, usize::MAX] {
            let mut buf = BytesMut::new();
            put_decimal(&mut buf, n);
            assert_eq!(&buf[..], n.to_string().as_bytes());
            assert_eq!(decimal_len(n), n.to_string().len());
        }
    }
}
