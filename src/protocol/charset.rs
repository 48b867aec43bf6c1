//! Collation ids from handshakes (both directions), mapped to the four session variables a server derives from
//! them. The table is every collation MariaDB 10.11 has with an id that fits the handshake's one
//! byte, generated from the server itself:
//!
//!     mariadb -N -B -e "SELECT ID, CHARACTER_SET_NAME, COLLATION_NAME
//!                       FROM information_schema.COLLATIONS WHERE ID < 256 ORDER BY ID"
//!
//! (ids below 256 are the same in every MariaDB release). An id it does not list (MySQL 8's
//! utf8mb4_0900_ai_ci, 255) falls back to utf8mb4_general_ci, as MariaDB does with an id it
//! does not know on a utf8mb4 server.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

/// A collation and its character set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collation {
    pub id: u8,
    pub charset: &'static str,
    pub name: &'static str,
}

/// Sorted by id.
const TABLE: &[Collation] = &[
    Collation { id: 1, charset: "big5", name: "big5_chinese_ci" },
    Collation { id: 2, charset: "latin2", name: "latin2_czech_cs" },
    Collation { id: 3, charset: "dec8", name: "dec8_swedish_ci" },
    Collation { id: 4, charset: "cp850", name: "cp850_general_ci" },
    Collation { id: 5, charset: "latin1", name: "latin1_german1_ci" },
    Collation { id: 6, charset: "hp8", name: "hp8_english_ci" },
    Collation { id: 7, charset: "koi8r", name: "koi8r_general_ci" },
    Collation { id: 8, charset: "latin1", name: "latin1_swedish_ci" },
    Collation { id: 9, charset: "latin2", name: "latin2_general_ci" },
    Collation { id: 10, charset: "swe7", name: "swe7_swedish_ci" },
    Collation { id: 11, charset: "ascii", name: "ascii_general_ci" },
    Collation { id: 12, charset: "ujis", name: "ujis_japanese_ci" },
    Collation { id: 13, charset: "sjis", name: "sjis_japanese_ci" },
    Collation { id: 14, charset: "cp1251", name: "cp1251_bulgarian_ci" },
    Collation { id: 15, charset: "latin1", name: "latin1_danish_ci" },
    Collation { id: 16, charset: "hebrew", name: "hebrew_general_ci" },
    Collation { id: 18, charset: "tis620", name: "tis620_thai_ci" },
    Collation { id: 19, charset: "euckr", name: "euckr_korean_ci" },
    Collation { id: 20, charset: "latin7", name: "latin7_estonian_cs" },
    Collation { id: 21, charset: "latin2", name: "latin2_hungarian_ci" },
    Collation { id: 22, charset: "koi8u", name: "koi8u_general_ci" },
    Collation { id: 23, charset: "cp1251", name: "cp1251_ukrainian_ci" },
    Collation { id: 24, charset: "gb2312", name: "gb2312_chinese_ci" },
    Collation { id: 25, charset: "greek", name: "greek_general_ci" },
    Collation { id: 26, charset: "cp1250", name: "cp1250_general_ci" },
    Collation { id: 27, charset: "latin2", name: "latin2_croatian_ci" },
    Collation { id: 28, charset: "gbk", name: "gbk_chinese_ci" },
    Collation { id: 29, charset: "cp1257", name: "cp1257_lithuanian_ci" },
    Collation { id: 30, charset: "latin5", name: "latin5_turkish_ci" },
    Collation { id: 31, charset: "latin1", name: "latin1_german2_ci" },
    Collation { id: 32, charset: "armscii8", name: "armscii8_general_ci" },
    Collation { id: 33, charset: "utf8mb3", name: "utf8mb3_general_ci" },
    Collation { id: 34, charset: "cp1250", name: "cp1250_czech_cs" },
    Collation { id: 35, charset: "ucs2", name: "ucs2_general_ci" },
    Collation { id: 36, charset: "cp866", name: "cp866_general_ci" },
    Collation { id: 37, charset: "keybcs2", name: "keybcs2_general_ci" },
    Collation { id: 38, charset: "macce", name: "macce_general_ci" },
    Collation { id: 39, charset: "macroman", name: "macroman_general_ci" },
    Collation { id: 40, charset: "cp852", name: "cp852_general_ci" },
    Collation { id: 41, charset: "latin7", name: "latin7_general_ci" },
    Collation { id: 42, charset: "latin7", name: "latin7_general_cs" },
    Collation { id: 43, charset: "macce", name: "macce_bin" },
    Collation { id: 44, charset: "cp1250", name: "cp1250_croatian_ci" },
    Collation { id: 45, charset: "utf8mb4", name: "utf8mb4_general_ci" },
    Collation { id: 46, charset: "utf8mb4", name: "utf8mb4_bin" },
    Collation { id: 47, charset: "latin1", name: "latin1_bin" },
    Collation { id: 48, charset: "latin1", name: "latin1_general_ci" },
    Collation { id: 49, charset: "latin1", name: "latin1_general_cs" },
    Collation { id: 50, charset: "cp1251", name: "cp1251_bin" },
    Collation { id: 51, charset: "cp1251", name: "cp1251_general_ci" },
    Collation { id: 52, charset: "cp1251", name: "cp1251_general_cs" },
    Collation { id: 53, charset: "macroman", name: "macroman_bin" },
    Collation { id: 54, charset: "utf16", name: "utf16_general_ci" },
    Collation { id: 55, charset: "utf16", name: "utf16_bin" },
    Collation { id: 56, charset: "utf16le", name: "utf16le_general_ci" },
    Collation { id: 57, charset: "cp1256", name: "cp1256_general_ci" },
    Collation { id: 58, charset: "cp1257", name: "cp1257_bin" },
    Collation { id: 59, charset: "cp1257", name: "cp1257_general_ci" },
    Collation { id: 60, charset: "utf32", name: "utf32_general_ci" },
    Collation { id: 61, charset: "utf32", name: "utf32_bin" },
    Collation { id: 62, charset: "utf16le", name: "utf16le_bin" },
    Collation { id: 63, charset: "binary", name: "binary" },
    Collation { id: 64, charset: "armscii8", name: "armscii8_bin" },
    Collation { id: 65, charset: "ascii", name: "ascii_bin" },
    Collation { id: 66, charset: "cp1250", name: "cp1250_bin" },
    Collation { id: 67, charset: "cp1256", name: "cp1256_bin" },
    Collation { id: 68, charset: "cp866", name: "cp866_bin" },
    Collation { id: 69, charset: "dec8", name: "dec8_bin" },
    Collation { id: 70, charset: "greek", name: "greek_bin" },
    Collation { id: 71, charset: "hebrew", name: "hebrew_bin" },
    Collation { id: 72, charset: "hp8", name: "hp8_bin" },
    Collation { id: 73, charset: "keybcs2", name: "keybcs2_bin" },
    Collation { id: 74, charset: "koi8r", name: "koi8r_bin" },
    Collation { id: 75, charset: "koi8u", name: "koi8u_bin" },
    Collation { id: 77, charset: "latin2", name: "latin2_bin" },
    Collation { id: 78, charset: "latin5", name: "latin5_bin" },
    Collation { id: 79, charset: "latin7", name: "latin7_bin" },
    Collation { id: 80, charset: "cp850", name: "cp850_bin" },
    Collation { id: 81, charset: "cp852", name: "cp852_bin" },
    Collation { id: 82, charset: "swe7", name: "swe7_bin" },
    Collation { id: 83, charset: "utf8mb3", name: "utf8mb3_bin" },
    Collation { id: 84, charset: "big5", name: "big5_bin" },
    Collation { id: 85, charset: "euckr", name: "euckr_bin" },
    Collation { id: 86, charset: "gb2312", name: "gb2312_bin" },
    Collation { id: 87, charset: "gbk", name: "gbk_bin" },
    Collation { id: 88, charset: "sjis", name: "sjis_bin" },
    Collation { id: 89, charset: "tis620", name: "tis620_bin" },
    Collation { id: 90, charset: "ucs2", name: "ucs2_bin" },
    Collation { id: 91, charset: "ujis", name: "ujis_bin" },
    Collation { id: 92, charset: "geostd8", name: "geostd8_general_ci" },
    Collation { id: 93, charset: "geostd8", name: "geostd8_bin" },
    Collation { id: 94, charset: "latin1", name: "latin1_spanish_ci" },
    Collation { id: 95, charset: "cp932", name: "cp932_japanese_ci" },
    Collation { id: 96, charset: "cp932", name: "cp932_bin" },
    Collation { id: 97, charset: "eucjpms", name: "eucjpms_japanese_ci" },
    Collation { id: 98, charset: "eucjpms", name: "eucjpms_bin" },
    Collation { id: 99, charset: "cp1250", name: "cp1250_polish_ci" },
    Collation { id: 101, charset: "utf16", name: "utf16_unicode_ci" },
    Collation { id: 102, charset: "utf16", name: "utf16_icelandic_ci" },
    Collation { id: 103, charset: "utf16", name: "utf16_latvian_ci" },
    Collation { id: 104, charset: "utf16", name: "utf16_romanian_ci" },
    Collation { id: 105, charset: "utf16", name: "utf16_slovenian_ci" },
    Collation { id: 106, charset: "utf16", name: "utf16_polish_ci" },
    Collation { id: 107, charset: "utf16", name: "utf16_estonian_ci" },
    Collation { id: 108, charset: "utf16", name: "utf16_spanish_ci" },
    Collation { id: 109, charset: "utf16", name: "utf16_swedish_ci" },
    Collation { id: 110, charset: "utf16", name: "utf16_turkish_ci" },
    Collation { id: 111, charset: "utf16", name: "utf16_czech_ci" },
    Collation { id: 112, charset: "utf16", name: "utf16_danish_ci" },
    Collation { id: 113, charset: "utf16", name: "utf16_lithuanian_ci" },
    Collation { id: 114, charset: "utf16", name: "utf16_slovak_ci" },
    Collation { id: 115, charset: "utf16", name: "utf16_spanish2_ci" },
    Collation { id: 116, charset: "utf16", name: "utf16_roman_ci" },
    Collation { id: 117, charset: "utf16", name: "utf16_persian_ci" },
    Collation { id: 118, charset: "utf16", name: "utf16_esperanto_ci" },
    Collation { id: 119, charset: "utf16", name: "utf16_hungarian_ci" },
    Collation { id: 120, charset: "utf16", name: "utf16_sinhala_ci" },
    Collation { id: 121, charset: "utf16", name: "utf16_german2_ci" },
    Collation { id: 122, charset: "utf16", name: "utf16_croatian_mysql561_ci" },
    Collation { id: 123, charset: "utf16", name: "utf16_unicode_520_ci" },
    Collation { id: 124, charset: "utf16", name: "utf16_vietnamese_ci" },
    Collation { id: 128, charset: "ucs2", name: "ucs2_unicode_ci" },
    Collation { id: 129, charset: "ucs2", name: "ucs2_icelandic_ci" },
    Collation { id: 130, charset: "ucs2", name: "ucs2_latvian_ci" },
    Collation { id: 131, charset: "ucs2", name: "ucs2_romanian_ci" },
    Collation { id: 132, charset: "ucs2", name: "ucs2_slovenian_ci" },
    Collation { id: 133, charset: "ucs2", name: "ucs2_polish_ci" },
    Collation { id: 134, charset: "ucs2", name: "ucs2_estonian_ci" },
    Collation { id: 135, charset: "ucs2", name: "ucs2_spanish_ci" },
    Collation { id: 136, charset: "ucs2", name: "ucs2_swedish_ci" },
    Collation { id: 137, charset: "ucs2", name: "ucs2_turkish_ci" },
    Collation { id: 138, charset: "ucs2", name: "ucs2_czech_ci" },
    Collation { id: 139, charset: "ucs2", name: "ucs2_danish_ci" },
    Collation { id: 140, charset: "ucs2", name: "ucs2_lithuanian_ci" },
    Collation { id: 141, charset: "ucs2", name: "ucs2_slovak_ci" },
    Collation { id: 142, charset: "ucs2", name: "ucs2_spanish2_ci" },
    Collation { id: 143, charset: "ucs2", name: "ucs2_roman_ci" },
    Collation { id: 144, charset: "ucs2", name: "ucs2_persian_ci" },
    Collation { id: 145, charset: "ucs2", name: "ucs2_esperanto_ci" },
    Collation { id: 146, charset: "ucs2", name: "ucs2_hungarian_ci" },
    Collation { id: 147, charset: "ucs2", name: "ucs2_sinhala_ci" },
    Collation { id: 148, charset: "ucs2", name: "ucs2_german2_ci" },
    Collation { id: 149, charset: "ucs2", name: "ucs2_croatian_mysql561_ci" },
    Collation { id: 150, charset: "ucs2", name: "ucs2_unicode_520_ci" },
    Collation { id: 151, charset: "ucs2", name: "ucs2_vietnamese_ci" },
    Collation { id: 159, charset: "ucs2", name: "ucs2_general_mysql500_ci" },
    Collation { id: 160, charset: "utf32", name: "utf32_unicode_ci" },
    Collation { id: 161, charset: "utf32", name: "utf32_icelandic_ci" },
    Collation { id: 162, charset: "utf32", name: "utf32_latvian_ci" },
    Collation { id: 163, charset: "utf32", name: "utf32_romanian_ci" },
    Collation { id: 164, charset: "utf32", name: "utf32_slovenian_ci" },
    Collation { id: 165, charset: "utf32", name: "utf32_polish_ci" },
    Collation { id: 166, charset: "utf32", name: "utf32_estonian_ci" },
    Collation { id: 167, charset: "utf32", name: "utf32_spanish_ci" },
    Collation { id: 168, charset: "utf32", name: "utf32_swedish_ci" },
    Collation { id: 169, charset: "utf32", name: "utf32_turkish_ci" },
    Collation { id: 170, charset: "utf32", name: "utf32_czech_ci" },
    Collation { id: 171, charset: "utf32", name: "utf32_danish_ci" },
    Collation { id: 172, charset: "utf32", name: "utf32_lithuanian_ci" },
    Collation { id: 173, charset: "utf32", name: "utf32_slovak_ci" },
    Collation { id: 174, charset: "utf32", name: "utf32_spanish2_ci" },
    Collation { id: 175, charset: "utf32", name: "utf32_roman_ci" },
    Collation { id: 176, charset: "utf32", name: "utf32_persian_ci" },
    Collation { id: 177, charset: "utf32", name: "utf32_esperanto_ci" },
    Collation { id: 178, charset: "utf32", name: "utf32_hungarian_ci" },
    Collation { id: 179, charset: "utf32", name: "utf32_sinhala_ci" },
    Collation { id: 180, charset: "utf32", name: "utf32_german2_ci" },
    Collation { id: 181, charset: "utf32", name: "utf32_croatian_mysql561_ci" },
    Collation { id: 182, charset: "utf32", name: "utf32_unicode_520_ci" },
    Collation { id: 183, charset: "utf32", name: "utf32_vietnamese_ci" },
    Collation { id: 192, charset: "utf8mb3", name: "utf8mb3_unicode_ci" },
    Collation { id: 193, charset: "utf8mb3", name: "utf8mb3_icelandic_ci" },
    Collation { id: 194, charset: "utf8mb3", name: "utf8mb3_latvian_ci" },
    Collation { id: 195, charset: "utf8mb3", name: "utf8mb3_romanian_ci" },
    Collation { id: 196, charset: "utf8mb3", name: "utf8mb3_slovenian_ci" },
    Collation { id: 197, charset: "utf8mb3", name: "utf8mb3_polish_ci" },
    Collation { id: 198, charset: "utf8mb3", name: "utf8mb3_estonian_ci" },
    Collation { id: 199, charset: "utf8mb3", name: "utf8mb3_spanish_ci" },
    Collation { id: 200, charset: "utf8mb3", name: "utf8mb3_swedish_ci" },
    Collation { id: 201, charset: "utf8mb3", name: "utf8mb3_turkish_ci" },
    Collation { id: 202, charset: "utf8mb3", name: "utf8mb3_czech_ci" },
    Collation { id: 203, charset: "utf8mb3", name: "utf8mb3_danish_ci" },
    Collation { id: 204, charset: "utf8mb3", name: "utf8mb3_lithuanian_ci" },
    Collation { id: 205, charset: "utf8mb3", name: "utf8mb3_slovak_ci" },
    Collation { id: 206, charset: "utf8mb3", name: "utf8mb3_spanish2_ci" },
    Collation { id: 207, charset: "utf8mb3", name: "utf8mb3_roman_ci" },
    Collation { id: 208, charset: "utf8mb3", name: "utf8mb3_persian_ci" },
    Collation { id: 209, charset: "utf8mb3", name: "utf8mb3_esperanto_ci" },
    Collation { id: 210, charset: "utf8mb3", name: "utf8mb3_hungarian_ci" },
    Collation { id: 211, charset: "utf8mb3", name: "utf8mb3_sinhala_ci" },
    Collation { id: 212, charset: "utf8mb3", name: "utf8mb3_german2_ci" },
    Collation { id: 213, charset: "utf8mb3", name: "utf8mb3_croatian_mysql561_ci" },
    Collation { id: 214, charset: "utf8mb3", name: "utf8mb3_unicode_520_ci" },
    Collation { id: 215, charset: "utf8mb3", name: "utf8mb3_vietnamese_ci" },
    Collation { id: 223, charset: "utf8mb3", name: "utf8mb3_general_mysql500_ci" },
    Collation { id: 224, charset: "utf8mb4", name: "utf8mb4_unicode_ci" },
    Collation { id: 225, charset: "utf8mb4", name: "utf8mb4_icelandic_ci" },
    Collation { id: 226, charset: "utf8mb4", name: "utf8mb4_latvian_ci" },
    Collation { id: 227, charset: "utf8mb4", name: "utf8mb4_romanian_ci" },
    Collation { id: 228, charset: "utf8mb4", name: "utf8mb4_slovenian_ci" },
    Collation { id: 229, charset: "utf8mb4", name: "utf8mb4_polish_ci" },
    Collation { id: 230, charset: "utf8mb4", name: "utf8mb4_estonian_ci" },
    Collation { id: 231, charset: "utf8mb4", name: "utf8mb4_spanish_ci" },
    Collation { id: 232, charset: "utf8mb4", name: "utf8mb4_swedish_ci" },
    Collation { id: 233, charset: "utf8mb4", name: "utf8mb4_turkish_ci" },
    Collation { id: 234, charset: "utf8mb4", name: "utf8mb4_czech_ci" },
    Collation { id: 235, charset: "utf8mb4", name: "utf8mb4_danish_ci" },
    Collation { id: 236, charset: "utf8mb4", name: "utf8mb4_lithuanian_ci" },
    Collation { id: 237, charset: "utf8mb4", name: "utf8mb4_slovak_ci" },
    Collation { id: 238, charset: "utf8mb4", name: "utf8mb4_spanish2_ci" },
    Collation { id: 239, charset: "utf8mb4", name: "utf8mb4_roman_ci" },
    Collation { id: 240, charset: "utf8mb4", name: "utf8mb4_persian_ci" },
    Collation { id: 241, charset: "utf8mb4", name: "utf8mb4_esperanto_ci" },
    Collation { id: 242, charset: "utf8mb4", name: "utf8mb4_hungarian_ci" },
    Collation { id: 243, charset: "utf8mb4", name: "utf8mb4_sinhala_ci" },
    Collation { id: 244, charset: "utf8mb4", name: "utf8mb4_german2_ci" },
    Collation { id: 245, charset: "utf8mb4", name: "utf8mb4_croatian_mysql561_ci" },
    Collation { id: 246, charset: "utf8mb4", name: "utf8mb4_unicode_520_ci" },
    Collation { id: 247, charset: "utf8mb4", name: "utf8mb4_vietnamese_ci" },
];

/// Session variables by name, shared copy-on-write (see `backend::ConnState::vars`).
pub type Vars = Arc<BTreeMap<String, String>>;

/// utf8mb4_general_ci, the fallback.
const FALLBACK: Collation = Collation { id: 45, charset: "utf8mb4", name: "utf8mb4_general_ci" };

/// The collation for a handshake id. MySQL 8's utf8mb4_0900_ai_ci (255), which MariaDB lacks,
/// becomes utf8mb4_general_ci.
pub fn by_id(id: u8) -> Collation {
    TABLE.binary_search_by_key(&id, |c| c.id).map_or(FALLBACK, |i| TABLE[i])
}

impl Collation {
    /// The session variables a server sets from this handshake collation.
    ///
    /// # Performance
    /// One shared map per collation: sessions and connections that start from the same
    /// collation and never change a variable hold the same allocation, so the reconcile at
    /// each checkout is one pointer comparison ([`crate::backend::lease::set_statement`]).
    pub fn vars(&self) -> Vars {
        static INTERNED: OnceLock<Mutex<HashMap<u8, Vars>>> = OnceLock::new();
        let mut interned = INTERNED.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        interned
            .entry(self.id)
            .or_insert_with(|| {
                let mut m = BTreeMap::new();
                for k in ["character_set_client", "character_set_connection", "character_set_results"] {
                    m.insert(k.to_string(), self.charset.to_string());
                }
                m.insert("collation_connection".to_string(), self.name.to_string());
                Arc::new(m)
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_unknown_and_mysql8_ids() {
        assert_eq!(by_id(8).charset, "latin1");
        assert_eq!(by_id(255).name, "utf8mb4_general_ci");
        assert_eq!(by_id(17).name, "utf8mb4_general_ci");
        assert_eq!(by_id(200).name, "utf8mb3_swedish_ci");
        assert_eq!(by_id(224).vars()["collation_connection"], "utf8mb4_unicode_ci");
        assert_eq!(by_id(33).vars().len(), 4);
        assert!(TABLE.windows(2).all(|w| w[0].id < w[1].id), "TABLE must stay sorted by id");
        for (id, charset, name) in [
            (51, "cp1251", "cp1251_general_ci"),
            (7, "koi8r", "koi8r_general_ci"),
            (48, "latin1", "latin1_general_ci"),
            (9, "latin2", "latin2_general_ci"),
            (13, "sjis", "sjis_japanese_ci"),
            (28, "gbk", "gbk_chinese_ci"),
            (246, "utf8mb4", "utf8mb4_unicode_520_ci"),
        ] {
            assert_eq!((by_id(id).charset, by_id(id).name), (charset, name));
        }
    }
}
