//! Bounds-checked big-endian reads. Every parser reads through these so that no offset
//! arithmetic on hostile lengths can index past a slice: a short read is `None`, which the
//! caller turns into a `Truncated` error for its layer.

pub(super) fn u8_at(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}

pub(super) fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

pub(super) fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

pub(super) fn le32(b: &[u8], at: usize) -> Option<u32> {
    be32(b, at).map(u32::swap_bytes)
}

pub(super) fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let b = [1u8, 2, 3, 4];
        assert_eq!(be16(&b, 2), Some(0x0304));
        assert_eq!(be16(&b, 3), None);
        assert_eq!(be32(&b, 0), Some(0x0102_0304));
        assert_eq!(le32(&b, 0), Some(0x0403_0201));
        assert_eq!(be32(&b, 1), None);
        assert_eq!(be32(&b, usize::MAX), None);
        assert_eq!(u8_at(&b, 4), None);
        assert_eq!(array::<2>(&b, 1), Some([2, 3]));
        assert_eq!(array::<2>(&b, usize::MAX - 1), None);
    }
}
