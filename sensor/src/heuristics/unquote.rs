//! URL decoding before matching, so that `%27`, `%2527`, `%u0027` and `%c0%a7`-style
//! disguises all reach the patterns as the character they stand for.
//!
//! [`unquote_into`] is one round of percent-decoding, as Python's `urllib.parse.unquote`
//! does it on bytes (Maltrail's decoding). [`normalize_into`] is what the heuristics
//! match on: percent escapes decoded repeatedly (double encoding) up to
//! [`MAX_DECODE_ROUNDS`], IIS-style `%uXXXX`, `+` as a space in the query, and overlong
//! UTF-8 forms of ASCII characters folded to ASCII. Input is cut at [`MAX_SUBJECT_LEN`].
//! Nothing here allocates once the output buffers have grown to their working size.

/// Decoding rounds at most: `%252e` needs two, a third catches `%25252e`; an attacker
/// nesting deeper only gets a string the patterns do not recognise, never more work.
pub const MAX_DECODE_ROUNDS: usize = 3;
/// Octets of a URI or body examined per request: attack payloads sit in the first few
/// hundred octets, and this bounds the per-request cost.
pub const MAX_SUBJECT_LEN: usize = 4096;

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether `input` holds anything [`normalize_into`] would change.
#[inline]
pub fn needs_decoding(input: &[u8]) -> bool {
    input.iter().any(|&b| b == b'%' || b == b'+' || b >= 0xc0)
}

/// One round of `%XX` decoding into `out` (cleared first); malformed escapes stay as they
/// are. Returns whether anything was decoded.
pub fn unquote_into(input: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut changed = false;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%'
            && let (Some(h), Some(l)) = (
                input.get(i + 1).copied().and_then(hex),
                input.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            changed = true;
            continue;
        }
        out.push(b);
        i += 1;
    }
    changed
}

/// One round of the full normalisation (see the module doc) from `input` into `out`.
/// From offset `plus_from` on, `+` means a space (`usize::MAX`: nowhere).
fn normalize_round(input: &[u8], plus_from: usize, out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut changed = false;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' {
            if let (Some(h), Some(l)) = (
                input.get(i + 1).copied().and_then(hex),
                input.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                changed = true;
                continue;
            }
            // `%uXXXX` (IIS, old JavaScript `escape`).
            if matches!(input.get(i + 1), Some(b'u' | b'U'))
                && let Some(code) = input.get(i + 2..i + 6).and_then(|d| {
                    d.iter()
                        .try_fold(0u32, |acc, &c| Some(acc << 4 | u32::from(hex(c)?)))
                })
            {
                let c = char::from_u32(code).unwrap_or('\u{fffd}');
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                i += 6;
                changed = true;
                continue;
            }
        }
        if b == b'+' && i >= plus_from {
            out.push(b' ');
            i += 1;
            changed = true;
            continue;
        }
        // Overlong UTF-8 for ASCII: C0/C1 xx (two octets), E0 80..81 xx (three octets).
        if (b == 0xc0 || b == 0xc1)
            && let Some(&c) = input.get(i + 1)
            && c & 0xc0 == 0x80
        {
            out.push((b & 1) << 6 | (c & 0x3f));
            i += 2;
            changed = true;
            continue;
        }
        if b == 0xe0
            && let (Some(&c1), Some(&c2)) = (input.get(i + 1), input.get(i + 2))
            && (c1 == 0x80 || c1 == 0x81)
            && c2 & 0xc0 == 0x80
        {
            out.push((c1 & 1) << 6 | (c2 & 0x3f));
            i += 3;
            changed = true;
            continue;
        }
        out.push(b);
        i += 1;
    }
    changed
}

/// The form the heuristics match on (see the module doc), into `out`; `tmp` is scratch.
/// `is_query` says that `input` is form data as a whole (a POST body), where every `+`
/// is a space; otherwise `+` is a space only after the first `?`.
pub fn normalize_into(input: &[u8], is_query: bool, out: &mut Vec<u8>, tmp: &mut Vec<u8>) {
    let input = &input[..input.len().min(MAX_SUBJECT_LEN)];
    out.clear();
    out.extend_from_slice(input);
    for _ in 0..MAX_DECODE_ROUNDS {
        if !needs_decoding(out) {
            break;
        }
        // `+` is a space from the query's `?` on; in a body, everywhere.
        let plus_from = if is_query {
            0
        } else {
            out.iter()
                .position(|&b| b == b'?')
                .map_or(usize::MAX, |q| q + 1)
        };
        let changed = normalize_round(out, plus_from, tmp);
        std::mem::swap(out, tmp);
        if !changed {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::vectors::read_vectors;

    fn norm(s: &[u8]) -> Vec<u8> {
        let (mut out, mut tmp) = (Vec::new(), Vec::new());
        normalize_into(s, false, &mut out, &mut tmp);
        out
    }

    #[test]
    fn python_unquote_vectors() {
        let rows = read_vectors("unquote.tsv");
        assert!(rows.len() >= 15);
        let mut out = Vec::new();
        for row in rows {
            let (input, want) = (&row[0], &row[1]);
            unquote_into(input.as_bytes(), &mut out);
            assert_eq!(String::from_utf8_lossy(&out), *want, "unquote({input:?})");
        }
    }

    #[test]
    fn double_unicode_and_overlong_encodings_decode() {
        assert_eq!(norm(b"/%252e%252e%252fetc"), b"/../etc");
        assert_eq!(norm(b"/%25252e"), b"/.");
        assert_eq!(norm(b"/x?a=%u003cscript%u003e"), b"/x?a=<script>");
        assert_eq!(norm(b"/..%c0%af..%c0%afetc"), b"/../../etc");
        assert_eq!(norm(b"/..%e0%80%afetc"), b"/../etc");
        assert_eq!(norm(b"/a+b?c+d=e+f"), b"/a+b?c d=e f");
        let (mut out, mut tmp) = (Vec::new(), Vec::new());
        normalize_into(b"q=1+UNION", true, &mut out, &mut tmp);
        assert_eq!(out, b"q=1 UNION");
    }

    #[test]
    fn hostile_escapes_stay_bounded() {
        // Truncated and invalid escapes are kept literally.
        assert_eq!(norm(b"%"), b"%");
        assert_eq!(norm(b"%u12"), b"%u12");
        assert_eq!(norm(b"%zz%4"), b"%zz%4");
        assert_eq!(norm(b"\xc0"), b"\xc0");
        // A surrogate code point becomes U+FFFD rather than invalid UTF-8.
        assert_eq!(norm(b"%uD800"), "\u{fffd}".as_bytes());
        // Deep nesting stops after MAX_DECODE_ROUNDS.
        assert_eq!(norm(b"%2525252e"), b"%2e");
        // Long input is cut.
        let long = vec![b'a'; MAX_SUBJECT_LEN * 2];
        assert_eq!(norm(&long).len(), MAX_SUBJECT_LEN);
    }
}
