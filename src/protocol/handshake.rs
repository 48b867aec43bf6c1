//! The connection phase: the server's greeting (HandshakeV10), the client's HandshakeResponse41,
//! and the auth-switch request. Sluice builds and parses both sides: it is a server to clients
//! and a client to backends.

use super::caps;
use super::error::ProtocolError;
use super::wire::{put_lenenc, put_lenenc_bytes, put_nul_bytes, Reader};
use bytes::{BufMut, BytesMut};

/// The server's first packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    pub server_version: String,
    pub connection_id: u32,
    /// The full scramble (20 bytes from real servers).
    pub scramble: Vec<u8>,
    pub capabilities: u32,
    pub charset: u8,
    pub status: u16,
    pub auth_plugin: String,
}

impl Greeting {
    /// Encodes the greeting payload.
    pub fn encode(&self) -> BytesMut {
        let mut b = BytesMut::with_capacity(128);
        b.put_u8(10);
        put_nul_bytes(&mut b, self.server_version.as_bytes());
        b.put_u32_le(self.connection_id);
        let (part1, part2) = self.scramble.split_at(self.scramble.len().min(8));
        b.put_slice(part1);
        b.put_u8(0);
        b.put_u16_le(self.capabilities as u16);
        b.put_u8(self.charset);
        b.put_u16_le(self.status);
        b.put_u16_le((self.capabilities >> 16) as u16);
        b.put_u8((self.scramble.len() + 1) as u8);
        b.put_bytes(0, 10);
        put_nul_bytes(&mut b, part2);
        put_nul_bytes(&mut b, self.auth_plugin.as_bytes());
        b
    }

    /// Decodes a backend's greeting.
    pub fn parse(payload: &[u8]) -> Result<Greeting, ProtocolError> {
        let mut r = Reader::new(payload);
        let proto = r.u8("protocol version")?;
        if proto != 10 {
            return Err(ProtocolError::Malformed("unsupported handshake protocol version"));
        }
        let server_version = String::from_utf8_lossy(r.nul_bytes()).into_owned();
        let connection_id = r.u32("connection id")?;
        let mut scramble = r.take(8, "scramble")?.to_vec();
        r.u8("filler")?;
        let cap_lo = r.u16("capabilities")? as u32;
        let charset = r.u8("charset")?;
        let status = r.u16("status")?;
        let cap_hi = r.u16("capabilities")? as u32;
        let capabilities = cap_lo | (cap_hi << 16);
        let auth_len = r.u8("auth data length")? as usize;
        r.take(10, "reserved")?;
        if capabilities & caps::SECURE_CONNECTION != 0 {
            let n = auth_len.saturating_sub(8).max(13);
            let part2 = r.take(n.min(r.remaining()), "scramble")?;
            // The part is NUL-terminated on the wire; the NUL is not scramble.
            let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
            scramble.extend_from_slice(part2);
        }
        let auth_plugin = if capabilities & caps::PLUGIN_AUTH != 0 {
            String::from_utf8_lossy(r.nul_bytes()).into_owned()
        } else {
            super::auth::NATIVE.to_string()
        };
        Ok(Greeting { server_version, connection_id, scramble, capabilities, charset, status, auth_plugin })
    }
}

/// The client's answer to the greeting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandshakeResponse {
    pub capabilities: u32,
    pub max_packet: u32,
    pub charset: u8,
    pub user: String,
    pub auth_response: Vec<u8>,
    pub database: Option<String>,
    pub auth_plugin: Option<String>,
    /// Connection attributes (name, value), kept to log and to pass on if ever needed.
    pub attributes: Vec<(String, String)>,
}

impl HandshakeResponse {
    /// Decodes a client's HandshakeResponse41. Pre-4.1 clients are refused: no driver in use
    /// today sends the old format.
    pub fn parse(payload: &[u8]) -> Result<HandshakeResponse, ProtocolError> {
        let mut r = Reader::new(payload);
        let capabilities = r.u32("capabilities")?;
        if capabilities & caps::PROTOCOL_41 == 0 {
            return Err(ProtocolError::Malformed("client does not speak protocol 4.1"));
        }
        let max_packet = r.u32("max packet")?;
        let charset = r.u8("charset")?;
        r.take(23, "filler")?;
        let user = String::from_utf8_lossy(r.nul_bytes()).into_owned();
        let auth_response = if capabilities & caps::PLUGIN_AUTH_LENENC_DATA != 0 {
            r.lenenc_bytes("auth response")?.to_vec()
        } else if capabilities & caps::SECURE_CONNECTION != 0 {
            let n = r.u8("auth response length")? as usize;
            r.take(n, "auth response")?.to_vec()
        } else {
            r.nul_bytes().to_vec()
        };
        let database = if capabilities & caps::CONNECT_WITH_DB != 0 && !r.is_empty() {
            Some(String::from_utf8_lossy(r.nul_bytes()).into_owned()).filter(|d| !d.is_empty())
        } else {
            None
        };
        let auth_plugin = if capabilities & caps::PLUGIN_AUTH != 0 && !r.is_empty() {
            Some(String::from_utf8_lossy(r.nul_bytes()).into_owned())
        } else {
            None
        };
        let mut attributes = Vec::new();
        if capabilities & caps::CONNECT_ATTRS != 0 && !r.is_empty() {
            let total = r.lenenc("attributes length")? as usize;
            let mut a = Reader::new(r.take(total.min(r.remaining()), "attributes")?);
            while !a.is_empty() {
                let k = String::from_utf8_lossy(a.lenenc_bytes("attribute name")?).into_owned();
                let v = String::from_utf8_lossy(a.lenenc_bytes("attribute value")?).into_owned();
                attributes.push((k, v));
            }
        }
        Ok(HandshakeResponse {
            capabilities,
            max_packet,
            charset,
            user,
            auth_response,
            database,
            auth_plugin,
            attributes,
        })
    }

    /// Encodes the response (Sluice as a client to a backend).
    pub fn encode(&self) -> BytesMut {
        let mut b = BytesMut::with_capacity(128);
        let mut capabilities = self.capabilities;
        if self.database.is_some() {
            capabilities |= caps::CONNECT_WITH_DB;
        }
        b.put_u32_le(capabilities);
        b.put_u32_le(self.max_packet);
        b.put_u8(self.charset);
        b.put_bytes(0, 23);
        put_nul_bytes(&mut b, self.user.as_bytes());
        if capabilities & caps::PLUGIN_AUTH_LENENC_DATA != 0 {
            put_lenenc_bytes(&mut b, &self.auth_response);
        } else {
            b.put_u8(self.auth_response.len() as u8);
            b.put_slice(&self.auth_response);
        }
        if let Some(db) = &self.database {
            put_nul_bytes(&mut b, db.as_bytes());
        }
        if let Some(p) = &self.auth_plugin {
            put_nul_bytes(&mut b, p.as_bytes());
        }
        if capabilities & caps::CONNECT_ATTRS != 0 {
            let mut a = BytesMut::new();
            for (k, v) in &self.attributes {
                put_lenenc_bytes(&mut a, k.as_bytes());
                put_lenenc_bytes(&mut a, v.as_bytes());
            }
            put_lenenc(&mut b, a.len() as u64);
            b.put_slice(&a);
        }
        b
    }
}

/// `0xFE plugin NUL data`: the server asks the client to authenticate with another plugin.
pub fn encode_auth_switch(plugin: &str, scramble: &[u8]) -> BytesMut {
    let mut b = BytesMut::with_capacity(64);
    b.put_u8(0xFE);
    put_nul_bytes(&mut b, plugin.as_bytes());
    put_nul_bytes(&mut b, scramble);
    b
}

/// Decodes an auth-switch request into (plugin, scramble).
pub fn parse_auth_switch(payload: &[u8]) -> Result<(String, Vec<u8>), ProtocolError> {
    let mut r = Reader::new(payload);
    if r.u8("auth switch")? != 0xFE {
        return Err(ProtocolError::Malformed("not an auth switch request"));
    }
    let plugin = String::from_utf8_lossy(r.nul_bytes()).into_owned();
    let data = r.rest();
    let data = data.strip_suffix(&[0]).unwrap_or(data);
    Ok((plugin, data.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_round_trips() {
        let g = Greeting {
            server_version: "5.5.5-10.11.0-MariaDB-sluice".into(),
            connection_id: 77,
            scramble: (b'a'..b'a' + 20).collect(),
            capabilities: caps::SERVER,
            charset: 45,
            status: 2,
            auth_plugin: "mysql_native_password".into(),
        };
        assert_eq!(Greeting::parse(&g.encode()).unwrap(), g);
    }

    #[test]
    fn handshake_response_round_trips_with_db_plugin_and_attrs() {
        let h = HandshakeResponse {
            capabilities: caps::BACKEND | caps::CONNECT_ATTRS | caps::CONNECT_WITH_DB,
            max_packet: 1 << 24,
            charset: 45,
            user: "app".into(),
            auth_response: vec![1; 20],
            database: Some("shop".into()),
            auth_plugin: Some("mysql_native_password".into()),
            attributes: vec![("_client_name".into(), "sluice".into())],
        };
        assert_eq!(HandshakeResponse::parse(&h.encode()).unwrap(), h);
    }

    #[test]
    fn garbage_handshake_is_an_error() {
        assert!(HandshakeResponse::parse(&[1, 2, 3]).is_err());
        assert!(HandshakeResponse::parse(&[0u8; 32]).is_err()); // no PROTOCOL_41
        assert!(Greeting::parse(&[9, 0]).is_err());
    }

    #[test]
    fn auth_switch_round_trips() {
        let b = encode_auth_switch("caching_sha2_password", b"01234567890123456789");
        let (p, s) = parse_auth_switch(&b).unwrap();
        assert_eq!(p, "caching_sha2_password");
        assert_eq!(s, b"01234567890123456789");
    }
}
