//! Collation ids from handshakes (both directions), mapped to the four session variables a server derives from
//! them. Only the collations drivers send in practice are listed; an unknown id falls back to
//! utf8mb4_general_ci, which is also what MariaDB does with an id it does not know
//! (it uses the server default, utf8mb4 on the testbed and on Debian).

use std::collections::BTreeMap;

/// A collation and its character set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collation {
    pub id: u8,
    pub charset: &'static str,
    pub name: &'static str,
}

const TABLE: &[Collation] = &[
    Collation { id: 8, charset: "latin1", name: "latin1_swedish_ci" },
    Collation { id: 11, charset: "ascii", name: "ascii_general_ci" },
    Collation { id: 33, charset: "utf8mb3", name: "utf8mb3_general_ci" },
    Collation { id: 45, charset: "utf8mb4", name: "utf8mb4_general_ci" },
    Collation { id: 46, charset: "utf8mb4", name: "utf8mb4_bin" },
    Collation { id: 47, charset: "latin1", name: "latin1_bin" },
    Collation { id: 63, charset: "binary", name: "binary" },
    Collation { id: 83, charset: "utf8mb3", name: "utf8mb3_bin" },
    Collation { id: 192, charset: "utf8mb3", name: "utf8mb3_unicode_ci" },
    Collation { id: 224, charset: "utf8mb4", name: "utf8mb4_unicode_ci" },
];

/// The collation for a handshake id. MySQL 8's utf8mb4_0900_ai_ci (255), which MariaDB lacks,
/// becomes utf8mb4_general_ci.
pub fn by_id(id: u8) -> Collation {
    TABLE.iter().copied().find(|c| c.id == id).unwrap_or(TABLE[3])
}

impl Collation {
    /// The session variables a server sets from this handshake collation.
    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for k in ["character_set_client", "character_set_connection", "character_set_results"] {
            m.insert(k.to_string(), self.charset.to_string());
        }
        m.insert("collation_connection".to_string(), self.name.to_string());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_unknown_and_mysql8_ids() {
        assert_eq!(by_id(8).charset, "latin1");
        assert_eq!(by_id(255).name, "utf8mb4_general_ci");
        assert_eq!(by_id(200).name, "utf8mb4_general_ci");
        assert_eq!(by_id(224).vars()["collation_connection"], "utf8mb4_unicode_ci");
        assert_eq!(by_id(33).vars().len(), 4);
    }
}
