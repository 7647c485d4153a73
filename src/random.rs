//! Unguessable identifiers from the kernel's random source.

use std::io::{self, Read};

/// Letters and digits that cannot be misread for one another (no 0/o, 1/l).
const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// `len` characters, 5 random bits each.
pub fn token(len: usize) -> io::Result<String> {
    let mut bytes = vec![0u8; len];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect())
}
