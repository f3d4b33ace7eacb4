//! A strict little JSON reader for the tests: `--status --json` output, and what etcd and
//! etcdctl print (`-w json`). Numbers are kept as written, so 64-bit ids and revisions
//! (which etcdctl prints as bare numbers) lose nothing.

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The number as written.
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// One JSON text, and nothing else (whitespace around it aside).
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = JsonParser { text, at: 0 };
        p.ws();
        let value = p.value()?;
        p.ws();
        if p.at != text.len() {
            return Err(format!("trailing garbage at byte {}: {:?}", p.at, &text[p.at..]));
        }
        Ok(value)
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The field `key`, which must be there.
    #[track_caller]
    pub fn at(&self, key: &str) -> &Json {
        self.get(key).unwrap_or_else(|| panic!("no field {key:?} in {self:?}"))
    }

    #[track_caller]
    pub fn str_at(&self, key: &str) -> &str {
        match self.at(key) {
            Json::Str(s) => s,
            other => panic!("field {key:?} is not a string but {other:?} in {self:?}"),
        }
    }

    #[track_caller]
    pub fn u64_at(&self, key: &str) -> u64 {
        match self.at(key) {
            Json::Num(n) => {
                n.parse().unwrap_or_else(|_| panic!("field {key:?} = {n} is not a u64 in {self:?}"))
            }
            other => panic!("field {key:?} is not a number but {other:?} in {self:?}"),
        }
    }

    #[track_caller]
    pub fn is_null_at(&self, key: &str) -> bool {
        *self.at(key) == Json::Null
    }
}

struct JsonParser<'a> {
    text: &'a str,
    at: usize,
}

impl JsonParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, word: &str) -> Result<(), String> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(format!("expected {word:?} at byte {}", self.at))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') => self.expect("true").map(|()| Json::Bool(true)),
            Some(b'f') => self.expect("false").map(|()| Json::Bool(false)),
            Some(b'n') => self.expect("null").map(|()| Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            other => Err(format!("unexpected {:?} at byte {}", other.map(char::from), self.at)),
        }
    }

    fn object(&mut self) -> Result<Json, String> {
        self.expect("{")?;
        let mut fields: Vec<(String, Json)> = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Json::Obj(fields));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(format!("expected a key at byte {}", self.at));
            }
            let key = self.string()?;
            if fields.iter().any(|(k, _)| *k == key) {
                return Err(format!("duplicate key {key:?}"));
            }
            self.ws();
            self.expect(":")?;
            self.ws();
            let value = self.value()?;
            fields.push((key, value));
            self.ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Json::Obj(fields));
                }
                _ => return Err(format!("expected ',' or '}}' at byte {}", self.at)),
            }
        }
    }

    fn array(&mut self) -> Result<Json, String> {
        self.expect("[")?;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Json::Arr(items));
        }
        loop {
            self.ws();
            items.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Json::Arr(items));
                }
                _ => return Err(format!("expected ',' or ']' at byte {}", self.at)),
            }
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.at;
        let digits = |p: &mut Self| {
            let from = p.at;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.at += 1;
            }
            p.at - from
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        if self.peek() == Some(b'0') {
            self.at += 1;
        } else if digits(self) == 0 {
            return Err(format!("bad number at byte {start}"));
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if digits(self) == 0 {
                return Err(format!("bad fraction at byte {start}"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return Err(format!("bad exponent at byte {start}"));
            }
        }
        Ok(Json::Num(self.text[start..self.at].to_string()))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self.text.get(self.at..self.at + 4).ok_or("short \\u escape")?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("bad \\u escape {digits:?}"));
        }
        self.at += 4;
        Ok(u32::from_str_radix(digits, 16).unwrap())
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect("\"")?;
        let mut out = String::new();
        loop {
            let c = self.text[self.at..].chars().next().ok_or("unterminated string")?;
            self.at += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let e = self.peek().ok_or("unterminated escape")?;
                    self.at += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let high = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&high) {
                                self.expect("\\u")?;
                                let low = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&low) {
                                    return Err(format!("bad low surrogate {low:#x}"));
                                }
                                0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
                            } else {
                                high
                            };
                            out.push(char::from_u32(code).ok_or(format!("lone surrogate {code:#x}"))?);
                        }
                        other => return Err(format!("bad escape \\{}", char::from(other))),
                    }
                }
                c if u32::from(c) < 0x20 => return Err(format!("raw control character {c:?} in a string")),
                c => out.push(c),
            }
        }
    }
}

/// The reader is strict: the checks built on it would be worthless otherwise.
#[test]
fn the_tests_json_reader_is_strict() {
    let ok = Json::parse(r#" {"a":[1,-2.5e3,true,false,null],"b":"x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"} "#)
        .unwrap();
    assert_eq!(ok.str_at("b"), "x\"\\/\u{8}\u{c}\n\r\té\u{1f600}");
    assert_eq!(
        *ok.at("a"),
        Json::Arr(vec![
            Json::Num("1".into()),
            Json::Num("-2.5e3".into()),
            Json::Bool(true),
            Json::Bool(false),
            Json::Null
        ])
    );
    for bad in [
        "",
        "{}x",
        "{} {}",
        r#"{"a":1,}"#,
        r#"{"a":1 "b":2}"#,
        r#"{"a":1,"a":2}"#,
        r#"{a:1}"#,
        r#"["a\x"]"#,
        "[\"a\u{1}\"]",
        r#"["\ud800"]"#,
        r#"["\u12"]"#,
        "[01]",
        "[1.]",
        "[.5]",
        "[+1]",
        "[tru]",
        "[\"open]",
        "[1,]",
    ] {
        assert!(Json::parse(bad).is_err(), "accepted {bad:?}");
    }
}

/// A `--status --json` line longer than withlock's 12 KiB line buffer (a LOCK of 3000
/// control bytes, each escaped as `\u0001`) is still one whole JSON object, never cut.
#[test]
fn status_json_lines_are_never_cut() {
    use std::os::unix::ffi::OsStrExt;
    let lock = std::ffi::OsStr::from_bytes(&[1u8; 3000]);
    let out = crate::support::run(crate::support::withlock().args(["--status", "--json"]).arg(lock));
    let text = out.stdout_str();
    assert_eq!(text.lines().count(), 1, "{}", out.describe());
    let o = Json::parse(text.trim()).unwrap_or_else(|e| panic!("{e}\n{}", out.describe()));
    assert_eq!(o.str_at("lock"), "\u{1}".repeat(3000));
    assert_eq!(o.str_at("state"), "error");
}
