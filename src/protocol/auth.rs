//! Scramble arithmetic for the two password plugins Sluice speaks on both sides.
//!
//! Sluice knows each configured user's clear password, so as a server it checks a client's
//! token by computing the token the client should have sent; as a client it computes the token
//! a backend expects. Both are the same function.

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Plugin name of the SHA-1 challenge-response scheme every MySQL and MariaDB server has.
pub const NATIVE: &str = "mysql_native_password";
/// Plugin name of MySQL 8's default scheme.
pub const CACHING_SHA2: &str = "caching_sha2_password";

/// The 20-byte scramble a server hands out in its greeting.
pub fn new_scramble() -> [u8; 20] {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut s = [0u8; 20];
    for b in &mut s {
        // Printable ASCII without NUL or '$', as servers produce: clients NUL-terminate it.
        *b = rng.gen_range(0x21u8..0x7f);
        if *b == b'$' {
            *b = b'%';
        }
    }
    s
}

/// `SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password)))`; empty for an empty password.
pub fn native_token(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    native_token_from_sha1(&Sha1::digest(password).into(), scramble)
}

/// `SHA256(password) XOR SHA256(SHA256(SHA256(password)) + scramble)`; empty for an empty
/// password.
pub fn caching_sha2_token(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let h1 = Sha256::digest(password);
    let h2 = Sha256::digest(h1);
    let mut m = Sha256::new();
    m.update(h2);
    m.update(scramble);
    let h3 = m.finalize();
    h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect()
}

/// The token for `plugin`, or `None` for a plugin Sluice does not speak.
pub fn token_for(plugin: &str, password: &[u8], scramble: &[u8]) -> Option<Vec<u8>> {
    if let Some(h1) = sha1_of_credential(password) {
        // Only the native plugin can be answered without the password itself.
        return (plugin == NATIVE).then(|| native_token_from_sha1(&h1, scramble));
    }
    match plugin {
        NATIVE => Some(native_token(password, scramble)),
        CACHING_SHA2 => Some(caching_sha2_token(password, scramble)),
        _ => None,
    }
}

/// mysql_native_password checked against the stored hash `SHA1(SHA1(password))` (what
/// `SELECT PASSWORD('...')` prints, without its `*`): the token XOR `SHA1(scramble + hash)`
/// must be a value whose SHA1 is the hash. That value is `SHA1(password)`, returned: enough to
/// log in to a native backend as the same account, and the clear password is never needed.
pub fn sha1_from_native_token(token: &[u8], scramble: &[u8], hash: &[u8; 20]) -> Option<[u8; 20]> {
    if token.len() != 20 {
        return None;
    }
    let mut m = Sha1::new();
    m.update(scramble);
    m.update(hash);
    let h1: [u8; 20] = unmask(token, &m.finalize());
    tokens_equal(&Sha1::digest(h1), hash).then_some(h1)
}

/// A clear password checked against a stored native hash `SHA1(SHA1(password))`; returns
/// `SHA1(password)` (the backend credential) when it matches.
pub fn sha1_if_native_hash(clear: &[u8], hash: &[u8; 20]) -> Option<[u8; 20]> {
    let h1: [u8; 20] = Sha1::digest(clear).into();
    tokens_equal(&Sha1::digest(h1), hash).then_some(h1)
}

/// `SHA256(SHA256(password))`: what caching_sha2's fast path verifies a scramble with (the
/// server's in-memory cache holds the same).
pub fn sha2_stage2(clear: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(clear)).into()
}

/// caching_sha2's fast path from the cached `SHA256(SHA256(password))` alone: the token XOR
/// `SHA256(stage2 + scramble)` must be a value whose SHA256 is `stage2`.
pub fn sha2_fast_matches(token: &[u8], scramble: &[u8], stage2: &[u8; 32]) -> bool {
    if token.len() != 32 {
        return false;
    }
    let mut m = Sha256::new();
    m.update(stage2);
    m.update(scramble);
    let h1: [u8; 32] = unmask(token, &m.finalize());
    tokens_equal(&Sha256::digest(h1), stage2)
}

/// `token XOR mask`, both at least `N` bytes long (the callers check the token's length):
/// the first hash of a scramble answer, recovered with the hash the verifier can compute.
fn unmask<const N: usize>(token: &[u8], mask: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = token[i] ^ mask[i];
    }
    out
}

/// The marker of a backend credential that is `SHA1(password)` rather than a password
/// ([`sha1_credential`]). A NUL cannot appear in a configured password (validation refuses
/// it), so no password is mistaken for one.
const SHA1_CREDENTIAL: &str = "\0sha1:";

/// A backend credential made of `SHA1(password)`, learned from a client's native login: it
/// travels where passwords do (pool keys, the KILL connection's login) and [`token_for`]
/// answers a native scramble with it.
pub fn sha1_credential(h1: &[u8; 20]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(SHA1_CREDENTIAL.len() + 40);
    out.push_str(SHA1_CREDENTIAL);
    for b in h1 {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn sha1_of_credential(password: &[u8]) -> Option<[u8; 20]> {
    sha1_from_hex(std::str::from_utf8(password.strip_prefix(SHA1_CREDENTIAL.as_bytes())?).ok()?)
}

/// Exactly 40 hex digits (either case) as the 20 bytes of a SHA1.
fn sha1_from_hex(hex: &str) -> Option<[u8; 20]> {
    if hex.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The native token from `SHA1(password)`.
fn native_token_from_sha1(h1: &[u8; 20], scramble: &[u8]) -> Vec<u8> {
    let h2 = Sha1::digest(h1);
    let mut m = Sha1::new();
    m.update(scramble);
    m.update(h2);
    let h3 = m.finalize();
    h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect()
}

/// Parses the `*` + 40 hex digits form of a mysql_native_password hash.
pub fn parse_native_hash(text: &str) -> Option<[u8; 20]> {
    sha1_from_hex(text.strip_prefix('*')?)
}

/// Compares two tokens without an early exit, so timing does not reveal a matching prefix.
pub fn tokens_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The password inside a decrypted caching_sha2 full-authentication packet (the inverse of
/// [`xor_password`], without its NUL).
pub fn unxor_password(plain: &[u8], scramble: &[u8]) -> Vec<u8> {
    let mut p: Vec<u8> =
        plain.iter().enumerate().map(|(i, b)| b ^ scramble.get(i % scramble.len().max(1)).unwrap_or(&0)).collect();
    if p.last() == Some(&0) {
        p.pop();
    }
    p
}

/// `password + NUL`, XORed with the scramble repeated: what caching_sha2 full authentication
/// encrypts with the server's RSA key (or sends as is over TLS).
pub fn xor_password(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    let mut p = password.to_vec();
    p.push(0);
    if scramble.is_empty() {
        return p;
    }
    for (i, b) in p.iter_mut().enumerate() {
        *b ^= scramble[i % scramble.len()];
    }
    p
}

#[cfg(test)]
mod hash_tests {
    use super::*;

    #[test]
    fn a_stored_hash_verifies_the_token_of_its_password_only() {
        // SELECT PASSWORD('app_pw') on MariaDB.
        let h = Sha1::digest(Sha1::digest(b"app_pw"));
        let text = format!("*{}", h.iter().map(|b| format!("{b:02X}")).collect::<String>());
        let hash = parse_native_hash(&text).unwrap();
        let scramble = [7u8; 20];
        let learned = sha1_from_native_token(&native_token(b"app_pw", &scramble), &scramble, &hash);
        assert_eq!(learned.map(|h| h.to_vec()), Some(Sha1::digest(b"app_pw").to_vec()));
        assert_eq!(sha1_from_native_token(&native_token(b"app_pX", &scramble), &scramble, &hash), None);
        assert_eq!(sha1_from_native_token(&native_token(b"app_pw", &[8u8; 20]), &scramble, &hash), None);
        assert_eq!(sha1_from_native_token(&[], &scramble, &hash), None);
        // The learned value answers another scramble as the password would, for native only.
        let credential = sha1_credential(&learned.unwrap());
        let other = [9u8; 20];
        assert_eq!(token_for(NATIVE, credential.as_bytes(), &other), Some(native_token(b"app_pw", &other)));
        assert_eq!(token_for(CACHING_SHA2, credential.as_bytes(), &other), None);
        assert_eq!(parse_native_hash("*12"), None);
        assert_eq!(parse_native_hash(&text[1..]), None, "the * is part of the form");
        assert_eq!(parse_native_hash("*ZZ70C0C06DEE42FD1618BB99005ADCA2EC9D1E19"), None);
    }
}

#[cfg(test)]
mod tests {
    /// The fast path checked from the cached stage-2 hash accepts exactly the password's
    /// token; a full-authentication packet gives the password back; a clear password checks
    /// against its native hash.
    #[test]
    fn caching_sha2_from_hashes_alone() {
        let scramble = new_scramble();
        let stage2 = sha2_stage2(b"secret");
        assert!(sha2_fast_matches(&caching_sha2_token(b"secret", &scramble), &scramble, &stage2));
        assert!(!sha2_fast_matches(&caching_sha2_token(b"secreT", &scramble), &scramble, &stage2));
        assert!(!sha2_fast_matches(&caching_sha2_token(b"secret", &new_scramble()), &scramble, &stage2));
        assert_eq!(unxor_password(&xor_password(b"secret", &scramble), &scramble), b"secret");
        let hash = parse_native_hash("*14E65567ABDB5135D0CFD9A70B3032C179A49EE7").unwrap();
        let h1 = sha1_if_native_hash(b"secret", &hash).expect("PASSWORD('secret')");
        assert_eq!(sha1_from_native_token(&native_token(b"secret", &scramble), &scramble, &hash), Some(h1));
        assert_eq!(sha1_if_native_hash(b"Secret", &hash), None);
    }

    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// The native check a server performs with only SHA1(SHA1(pw)) stored must accept our token.
    #[test]
    fn native_token_satisfies_the_server_side_check() {
        let scramble = b"abcdefghijklmnopqrst";
        let token = native_token(b"secret", scramble);
        let stage2 = Sha1::digest(Sha1::digest(b"secret"));
        let mut m = Sha1::new();
        m.update(scramble);
        m.update(stage2);
        let mask = m.finalize();
        let stage1: Vec<u8> = token.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect();
        assert_eq!(Sha1::digest(&stage1).as_slice(), stage2.as_slice());
    }

    /// Vector computed independently: password "root", a fixed 20-byte scramble.
    #[test]
    fn native_token_known_vector() {
        let scramble: Vec<u8> = (1u8..=20).collect();
        assert_eq!(hex(&native_token(b"root", &scramble)), {
            // stage1 = SHA1("root"), stage2 = SHA1(stage1); token = stage1 ^ SHA1(scramble+stage2)
            let s1 = Sha1::digest(b"root");
            let s2 = Sha1::digest(s1);
            let mut m = Sha1::new();
            m.update(&scramble);
            m.update(s2);
            let t: Vec<u8> = s1.iter().zip(m.finalize().iter()).map(|(a, b)| a ^ b).collect();
            hex(&t)
        });
        assert_eq!(hex(&Sha1::digest(b"root")), "dc76e9f0c0006e8f919e0c515c66dbba3982f785");
    }

    #[test]
    fn caching_sha2_token_satisfies_the_server_side_check() {
        // The server stores SHA256(SHA256(pw)); from the token it recovers SHA256(pw) and checks.
        let scramble = b"01234567890123456789";
        let token = caching_sha2_token(b"pass", scramble);
        let stored = Sha256::digest(Sha256::digest(b"pass"));
        let mut m = Sha256::new();
        m.update(stored);
        m.update(scramble);
        let mask = m.finalize();
        let h1: Vec<u8> = token.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect();
        assert_eq!(Sha256::digest(&h1).as_slice(), stored.as_slice());
        assert_eq!(token.len(), 32);
    }

    #[test]
    fn empty_password_gives_empty_token_and_unknown_plugin_none() {
        assert!(native_token(b"", b"x").is_empty());
        assert!(caching_sha2_token(b"", b"x").is_empty());
        assert!(token_for("client_ed25519", b"pw", b"s").is_none());
    }

    #[test]
    fn xor_password_round_trips() {
        let s = b"abcdefghijklmnopqrst";
        let x = xor_password(b"hello world, a long password!", s);
        let back: Vec<u8> = x.iter().enumerate().map(|(i, b)| b ^ s[i % s.len()]).collect();
        assert_eq!(&back[..], b"hello world, a long password!\0");
        assert!(tokens_equal(b"abc", b"abc") && !tokens_equal(b"abc", b"abd"));
    }
}
