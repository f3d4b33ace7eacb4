//! A small, strict JSON reader for etcd's replies, without allocation.
//!
//! etcd's gateway answers in JSON, and withlock needs a handful of values
//! from each reply (`header.revision`, `responses[1].response_range.kvs[0]
//! .create_revision`, ...). Building a tree would need an allocator, so this
//! is a cursor over the reply's bytes: [`parse`] checks the whole document
//! once (grammar, escapes, numbers, nesting at most [`MAX_DEPTH`] deep, no
//! trailing bytes), and a [`Value`] is the exact slice of one value, which
//! lookups walk by skipping the values they do not want. Every step consumes
//! input, so malformed or hostile input ends in an error, never in a panic or
//! a loop; nesting is tracked in a bit stack, not by recursion.
//!
//! What it does not do: decode numbers other than integers, or check that
//! strings are valid UTF-8 (bytes above 0x7f pass through; etcd's strings are
//! base64 or ASCII messages). Object keys are compared as written, escapes
//! and all: the keys etcd sends and we look up are plain ASCII.

/// How deep objects and arrays may nest (etcd's replies use about 6).
pub const MAX_DEPTH: u32 = 64;

/// Why a document or a lookup was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

type Result<T> = core::result::Result<T, Malformed>;

/// What a value is, by its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

/// One JSON value: the exact bytes it spans in a checked document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value<'a> {
    raw: &'a [u8],
}

/// Check that `doc` is exactly one JSON value (with optional whitespace
/// around it) and return it.
pub fn parse(doc: &[u8]) -> Result<Value<'_>> {
    let mut c = Cursor { src: doc, pos: 0 };
    c.ws();
    let start = c.pos;
    c.skip_value()?;
    let end = c.pos;
    c.ws();
    if c.pos != doc.len() {
        return Err(Malformed("trailing bytes after the JSON value"));
    }
    Ok(Value { raw: &doc[start..end] })
}

/// A position in a document, and the grammar's small steps.
struct Cursor<'a> {
    src: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consume `b` (after whitespace), or fail with `what`.
    fn expect(&mut self, b: u8, what: &'static str) -> Result<()> {
        self.ws();
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Malformed(what))
        }
    }

    /// Consume `b` if it comes next (after whitespace).
    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        let found = self.peek() == Some(b);
        if found {
            self.pos += 1;
        }
        found
    }

    /// A string, from its opening quote: returns its contents as written.
    fn string(&mut self) -> Result<&'a [u8]> {
        if self.peek() != Some(b'"') {
            return Err(Malformed("expected a string"));
        }
        self.pos += 1;
        let start = self.pos;
        loop {
            let Some(b) = self.peek() else { return Err(Malformed("unterminated string")) };
            self.pos += 1;
            match b {
                b'"' => return Ok(&self.src[start..self.pos - 1]),
                b'\\' => match self.peek() {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 1,
                    Some(b'u') => {
                        self.pos += 1;
                        let hex = self.src.get(self.pos..self.pos + 4);
                        if hex.is_none_or(|h| !h.iter().all(u8::is_ascii_hexdigit)) {
                            return Err(Malformed("bad \\u escape"));
                        }
                        self.pos += 4;
                    }
                    _ => return Err(Malformed("bad escape in string")),
                },
                0..0x20 => return Err(Malformed("control character in string")),
                _ => {}
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// A number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Result<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(Malformed("bad number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(Malformed("bad number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(Malformed("bad number"));
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self.src.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Malformed("unknown literal"))
        }
    }

    /// An object key and its colon, from the key's opening quote.
    fn key(&mut self) -> Result<&'a [u8]> {
        self.ws();
        let key = self.string()?;
        self.expect(b':', "expected ':' after an object key")?;
        Ok(key)
    }

    /// Check and pass over one whole value (after whitespace). Iterative:
    /// `open` is a stack of the enclosing containers, one bit each (1 for
    /// an object), `depth` its height.
    fn skip_value(&mut self) -> Result<()> {
        let mut open: u64 = 0;
        let mut depth: u32 = 0;
        loop {
            // A value is expected here.
            self.ws();
            let Some(b) = self.peek() else { return Err(Malformed("unexpected end of input")) };
            match b {
                b'{' | b'[' => {
                    self.pos += 1;
                    let object = b == b'{';
                    if depth == MAX_DEPTH {
                        return Err(Malformed("nested too deeply"));
                    }
                    if self.eat(if object { b'}' } else { b']' }) {
                        // Empty: a complete value; fall through to what follows it.
                    } else {
                        open = (open << 1) | u64::from(object);
                        depth += 1;
                        if object {
                            self.key()?;
                        }
                        continue;
                    }
                }
                b'"' => {
                    self.string()?;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return Err(Malformed("expected a value")),
            }
            // A value ended: close containers until one continues.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let object = open & 1 == 1;
                if self.eat(b',') {
                    if object {
                        self.key()?;
                    }
                    break;
                }
                self.expect(if object { b'}' } else { b']' }, "expected ',' or the container's end")?;
                open >>= 1;
                depth -= 1;
            }
        }
    }
}

impl<'a> Value<'a> {
    pub fn kind(&self) -> Kind {
        match self.raw.first() {
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            Some(b'"') => Kind::String,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'n') => Kind::Null,
            _ => Kind::Number,
        }
    }

    /// The member `key` of an object; `None` if there is none (etcd leaves
    /// out fields that hold their zero value). Not an object: an error.
    pub fn get(&self, key: &[u8]) -> Result<Option<Value<'a>>> {
        let mut members = self.members()?;
        for member in &mut members {
            let (name, value) = member?;
            if name == key {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    /// The element `index` of an array; `None` past its end.
    pub fn index(&self, index: usize) -> Result<Option<Value<'a>>> {
        let mut elements = self.elements()?;
        for (i, element) in (&mut elements).enumerate() {
            let element = element?;
            if i == index {
                return Ok(Some(element));
            }
        }
        Ok(None)
    }

    /// The value at `path`, a chain of object keys and array indices such as
    /// `responses[1].response_range.kvs[0].key`; `None` if a key or index is
    /// missing on the way.
    pub fn at(&self, path: &[u8]) -> Result<Option<Value<'a>>> {
        let mut here = *self;
        let mut rest = path;
        while !rest.is_empty() {
            let next;
            if let Some(after) = rest.strip_prefix(b"[") {
                let close = after.iter().position(|&b| b == b']').ok_or(Malformed("bad path"))?;
                let index = crate::text::parse_u64(&after[..close]).ok_or(Malformed("bad path"))?;
                let index = usize::try_from(index).map_err(|_| Malformed("bad path"))?;
                rest = &after[close + 1..];
                next = here.index(index)?;
            } else {
                let rest_key = rest.strip_prefix(b".").unwrap_or(rest);
                let end = rest_key.iter().position(|&b| b == b'.' || b == b'[').unwrap_or(rest_key.len());
                if end == 0 {
                    return Err(Malformed("bad path"));
                }
                rest = &rest_key[end..];
                next = here.get(&rest_key[..end])?;
            }
            match next {
                Some(value) => here = value,
                None => return Ok(None),
            }
        }
        Ok(Some(here))
    }

    /// The members of an object, in order.
    pub fn members(&self) -> Result<Members<'a>> {
        if self.kind() != Kind::Object {
            return Err(Malformed("expected an object"));
        }
        Ok(Members(Items::new(self.raw, b'}')))
    }

    /// The elements of an array, in order.
    pub fn elements(&self) -> Result<Elements<'a>> {
        if self.kind() != Kind::Array {
            return Err(Malformed("expected an array"));
        }
        Ok(Elements(Items::new(self.raw, b']')))
    }

    /// A string's contents as written, escapes and all.
    pub fn str_raw(&self) -> Result<&'a [u8]> {
        match self.raw {
            [b'"', inner @ .., b'"'] => Ok(inner),
            _ => Err(Malformed("expected a string")),
        }
    }

    /// A string, unescaped into `out` (as UTF-8); the bytes written.
    /// A string longer than `out` is an error.
    pub fn unescape_into<'o>(&self, out: &'o mut [u8]) -> Result<&'o [u8]> {
        let mut src = self.str_raw()?;
        let mut len = 0;
        let mut put = |bytes: &[u8]| -> Result<()> {
            let dst = out.get_mut(len..len + bytes.len()).ok_or(Malformed("string too long"))?;
            dst.copy_from_slice(bytes);
            len += bytes.len();
            Ok(())
        };
        while let Some((&b, rest)) = src.split_first() {
            src = rest;
            if b != b'\\' {
                put(&[b])?;
                continue;
            }
            let (&e, rest) = src.split_first().ok_or(Malformed("bad escape in string"))?;
            src = rest;
            let simple = match e {
                b'"' => b'"',
                b'\\' => b'\\',
                b'/' => b'/',
                b'b' => 8,
                b'f' => 12,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'u' => 0,
                _ => return Err(Malformed("bad escape in string")),
            };
            if e != b'u' {
                put(&[simple])?;
                continue;
            }
            let mut unit = hex4(&mut src)?;
            // A high surrogate followed by `\u` and a low one: one character.
            if (0xd800..0xdc00).contains(&unit) && src.starts_with(b"\\u") {
                let mut after = &src[2..];
                let low = hex4(&mut after)?;
                if (0xdc00..0xe000).contains(&low) {
                    unit = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                    src = after;
                }
            }
            // A lone surrogate is not a character: U+FFFD, as Go decodes it.
            let c = char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER);
            put(c.encode_utf8(&mut [0; 4]).as_bytes())?;
        }
        Ok(&out[..len])
    }

    /// An integer, written as a JSON number (`123`) or, as etcd writes its
    /// 64-bit fields, as a string of one (`"123"`). Fractions, exponents and
    /// out-of-range values are errors.
    pub fn as_i64(&self) -> Result<i64> {
        let digits = match self.kind() {
            Kind::String => self.str_raw()?,
            Kind::Number => self.raw,
            _ => return Err(Malformed("expected an integer")),
        };
        let (negative, magnitude) = match digits.strip_prefix(b"-") {
            Some(rest) => (true, rest),
            None => (false, digits),
        };
        let canonical = magnitude == b"0" || !magnitude.starts_with(b"0");
        let n = crate::text::parse_u64(magnitude)
            .filter(|_| canonical)
            .ok_or(Malformed("expected an integer"))?;
        let n = if negative { 0i64.checked_sub_unsigned(n) } else { i64::try_from(n).ok() };
        n.ok_or(Malformed("integer out of range"))
    }

    pub fn as_bool(&self) -> Result<bool> {
        match self.raw {
            b"true" => Ok(true),
            b"false" => Ok(false),
            _ => Err(Malformed("expected true or false")),
        }
    }
}

/// Four hex digits off the front of `src`, as a UTF-16 unit.
fn hex4(src: &mut &[u8]) -> Result<u32> {
    let digits = src.get(..4).ok_or(Malformed("bad \\u escape"))?;
    let mut unit = 0;
    for &d in digits {
        let v = char::from(d).to_digit(16).ok_or(Malformed("bad \\u escape"))?;
        unit = unit * 16 + v;
    }
    *src = &src[4..];
    Ok(unit)
}

/// The walk over an object's members or an array's elements.
struct Items<'a> {
    cursor: Cursor<'a>,
    close: u8,
    first: bool,
    done: bool,
}

impl<'a> Items<'a> {
    fn new(raw: &'a [u8], close: u8) -> Items<'a> {
        Items { cursor: Cursor { src: raw, pos: 1 }, close, first: true, done: false }
    }

    /// The next item: `Ok(None)` at the container's end. After an error
    /// the walk is over.
    fn next_item(&mut self, keyed: bool) -> Result<Option<(&'a [u8], Value<'a>)>> {
        if self.done {
            return Ok(None);
        }
        let c = &mut self.cursor;
        let step = (|| {
            if c.eat(self.close) {
                return Ok(None);
            }
            if !self.first {
                c.expect(b',', "expected ','")?;
            }
            let key = if keyed { c.key()? } else { &[][..] };
            c.ws();
            let start = c.pos;
            c.skip_value()?;
            Ok(Some((key, Value { raw: &c.src[start..c.pos] })))
        })();
        self.first = false;
        if !matches!(step, Ok(Some(_))) {
            self.done = true;
        }
        step
    }
}

/// An object's members: `(key as written, value)`.
pub struct Members<'a>(Items<'a>);

impl<'a> Iterator for Members<'a> {
    type Item = Result<(&'a [u8], Value<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_item(true).transpose()
    }
}

/// An array's elements.
pub struct Elements<'a>(Items<'a>);

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Value<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_item(false).map(|item| item.map(|(_, value)| value)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    /// Real replies from etcd 3.4.23's gateway (Debian 12), captured with curl.
    const GRANT: &[u8] = br#"{"header":{"cluster_id":"7801232528081817440","member_id":"13458989633860879742","revision":"1","raft_term":"2"},"ID":"5007618062041693190","TTL":"10"}"#;
    const TXN_WON: &[u8] = br#"{"header":{"cluster_id":"7801232528081817440","member_id":"13458989633860879742","revision":"4","raft_term":"2"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"4"}}},{"response_range":{"header":{"revision":"4"},"kvs":[{"key":"d2wtdGVzdC80NTdlYTIxODhlZDMzYzFm","create_revision":"4","mod_revision":"4","version":"1","value":"aGVsbG8gdmFsdWU=","lease":"5007618062041693215"}],"count":"1"}}]}"#;
    const TXN_AGAIN: &[u8] = br#"{"header":{"cluster_id":"7801232528081817440","member_id":"13458989633860879742","revision":"4","raft_term":"2"},"responses":[{"response_range":{"header":{"revision":"4"},"kvs":[{"key":"d2wtdGVzdC80NTdlYTIxODhlZDMzYzFm","create_revision":"4","mod_revision":"4","version":"1","value":"aGVsbG8gdmFsdWU=","lease":"5007618062041693215"}],"count":"1"}},{"response_range":{"header":{"revision":"4"},"kvs":[{"key":"d2wtdGVzdC80NTdlYTIxODhlZDMzYzFm","create_revision":"4","mod_revision":"4","version":"1","value":"aGVsbG8gdmFsdWU=","lease":"5007618062041693215"}],"count":"1"}}]}"#;
    const KEEPALIVE_GONE: &[u8] = br#"{"result":{"header":{"cluster_id":"7801232528081817440","member_id":"13458989633860879742","revision":"1","raft_term":"2"},"ID":"5007618062041693198"}}"#;
    const ERROR: &[u8] = br#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#;
    /// etcdctl's `-w json` (numbers as numbers).
    const ETCDCTL: &[u8] = br#"{"header":{"cluster_id":7801232528081817440,"member_id":13458989633860879742,"revision":2,"raft_term":2},"kvs":[{"key":"d2wtdGVzdC80NTdlYTIxODhlZDMzYzE3","create_revision":2,"mod_revision":2,"version":1,"lease":5007618062041693207}],"count":1}"#;

    fn at<'a>(doc: &'a [u8], path: &str) -> Option<Value<'a>> {
        parse(doc).unwrap().at(path.as_bytes()).unwrap()
    }

    fn int(doc: &[u8], path: &str) -> i64 {
        at(doc, path).unwrap().as_i64().unwrap()
    }

    #[test]
    fn real_replies() {
        assert_eq!(int(GRANT, "header.revision"), 1);
        assert_eq!(int(GRANT, "ID"), 5007618062041693190);
        assert_eq!(int(GRANT, "TTL"), 10);
        assert!(at(TXN_WON, "succeeded").unwrap().as_bool().unwrap());
        assert!(at(TXN_AGAIN, "succeeded").is_none());
        assert_eq!(int(TXN_WON, "responses[1].response_range.kvs[0].create_revision"), 4);
        let key = at(TXN_WON, "responses[1].response_range.kvs[0].key").unwrap();
        assert_eq!(key.str_raw().unwrap(), b"d2wtdGVzdC80NTdlYTIxODhlZDMzYzFm");
        assert_eq!(int(TXN_AGAIN, "responses[0].response_range.kvs[0].lease"), 5007618062041693215);
        assert!(at(TXN_AGAIN, "responses[2]").is_none());
        assert!(at(TXN_AGAIN, "responses[0].response_put").is_none());
        assert!(at(KEEPALIVE_GONE, "result.TTL").is_none());
        assert_eq!(int(KEEPALIVE_GONE, "result.ID"), 5007618062041693198);
        let mut out = [0u8; 64];
        let message = at(ERROR, "message").unwrap().unescape_into(&mut out).unwrap();
        assert_eq!(message, b"etcdserver: requested lease not found");
        assert_eq!(int(ERROR, "code"), 5);
        assert_eq!(int(ETCDCTL, "kvs[0].lease"), 5007618062041693207);
        assert_eq!(int(ETCDCTL, "count"), 1);
        // Type errors along the path are errors, not "missing".
        assert!(parse(GRANT).unwrap().at(b"ID.x").is_err());
        assert!(parse(GRANT).unwrap().at(b"header[0]").is_err());
        assert!(at(ETCDCTL, "header.member_id").unwrap().as_i64().is_err()); // > i64::MAX
    }

    #[test]
    fn iteration() {
        let doc = parse(br#" { "a" : [1, "2", {"x": []}, null] , "b":{} } "#).unwrap();
        let names: std::vec::Vec<_> = doc.members().unwrap().map(|m| m.unwrap().0).collect();
        assert_eq!(names, [&b"a"[..], b"b"]);
        let a = doc.get(b"a").unwrap().unwrap();
        let kinds: std::vec::Vec<_> = a.elements().unwrap().map(|e| e.unwrap().kind()).collect();
        assert_eq!(kinds, [Kind::Number, Kind::String, Kind::Object, Kind::Null]);
        assert_eq!(a.index(1).unwrap().unwrap().as_i64(), Ok(2));
        assert_eq!(doc.get(b"b").unwrap().unwrap().members().unwrap().count(), 0);
        assert_eq!(doc.at(b"a[2].x").unwrap().unwrap().elements().unwrap().count(), 0);
        assert_eq!(parse(b"[]").unwrap().index(0), Ok(None));
    }

    #[test]
    fn integers() {
        let i = |s: &str| parse(s.as_bytes()).unwrap().as_i64();
        assert_eq!(i("0"), Ok(0));
        assert_eq!(i("\"-12\""), Ok(-12));
        assert_eq!(i("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(i("\"-9223372036854775808\""), Ok(i64::MIN));
        for bad in [
            "9223372036854775808",
            "1.5",
            "1e3",
            "\"\"",
            "\"01\"",
            "\"+1\"",
            "\" 1\"",
            "\"1x\"",
            "true",
            "\"-\"",
        ] {
            assert!(i(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escapes() {
        let s = |doc: &str| {
            let mut out = [0u8; 32];
            parse(doc.as_bytes()).unwrap().unescape_into(&mut out).map(|b| b.to_vec())
        };
        assert_eq!(s(r#""a\"b\\c\/d\n\t""#).unwrap(), b"a\"b\\c/d\n\t");
        assert_eq!(s(r#""\u00e9\u003c""#).unwrap(), "é<".as_bytes());
        assert_eq!(s(r#""\ud83d\ude00""#).unwrap(), "😀".as_bytes());
        assert_eq!(s(r#""\ud83dx""#).unwrap(), "\u{fffd}x".as_bytes());
        assert_eq!(s(r#""\ude00\u0041""#).unwrap(), "\u{fffd}A".as_bytes());
        assert!(s(r#""0123456789012345678901234567890123""#).is_err()); // no room
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            " ",
            "{",
            "}",
            "[",
            "[1,]",
            "[,1]",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{a:1}",
            "{\"a\" 1}",
            "[1 2]",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "+1",
            "tru",
            "nul",
            "\"abc",
            "\"a\\x\"",
            "\"\\u12g4\"",
            "\"\x01\"",
            "{} {}",
            "[1]]",
            "{\"a\":1]",
            "[1}",
            "'a'",
            "[\"a\",]",
            "\u{feff}{}",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "accepted {bad:?}");
        }
        for good in ["{}", "[]", " 0 ", "-0.5e+3", "\"\"", "[[],[{}]]", "{\"\":null}", "true"] {
            assert!(parse(good.as_bytes()).is_ok(), "refused {good:?}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = "[".repeat(MAX_DEPTH as usize) + &"]".repeat(MAX_DEPTH as usize);
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = "[".repeat(MAX_DEPTH as usize + 1) + &"]".repeat(MAX_DEPTH as usize + 1);
        assert_eq!(parse(deep.as_bytes()), Err(Malformed("nested too deeply")));
        let hostile = "{\"a\":".repeat(100_000);
        assert!(parse(hostile.as_bytes()).is_err());
        // Mixed containers must close in order.
        let mixed = "{\"a\":[{\"b\":[]}]}";
        assert_eq!(parse(mixed.as_bytes()).unwrap().at(b"a[0].b").unwrap().unwrap().kind(), Kind::Array);
    }

    #[test]
    fn bad_paths() {
        let doc = parse(TXN_WON).unwrap();
        for bad in [
            "responses[",
            "responses[x]",
            "responses[1]..kvs",
            ".",
            "header..revision",
            "responses[99999999999999999999]",
        ] {
            assert!(doc.at(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    /// Every lookup we make, on a possibly damaged document: errors are fine,
    /// panics and hangs are not.
    fn exercise(doc: &[u8]) {
        let Ok(root) = parse(doc) else { return };
        for path in
            ["header.revision", "responses[1].response_range.kvs[0].key", "result.TTL", "message", "kvs[0]"]
        {
            if let Ok(Some(v)) = root.at(path.as_bytes()) {
                let _ = v.as_i64();
                let _ = v.unescape_into(&mut [0u8; 64]);
                if let Ok(items) = v.elements() {
                    items.for_each(drop);
                }
                if let Ok(items) = v.members() {
                    items.for_each(drop);
                }
            }
        }
    }

    #[test]
    fn truncated_and_flipped_replies() {
        let mut rng = Rng(0x7a57_0fc0_ffee);
        for sample in [GRANT, TXN_WON, TXN_AGAIN, KEEPALIVE_GONE, ERROR, ETCDCTL] {
            for cut in 0..sample.len() {
                assert!(parse(&sample[..cut]).is_err(), "a cut document parsed");
            }
            for _ in 0..3000 {
                let mut doc = sample.to_vec();
                rng.damage(&mut doc, 3, b"{}[]\",:\\0-e.");
                let cut = rng.below(doc.len() as u64 + 1) as usize;
                exercise(&doc[..cut]);
                exercise(&doc);
            }
        }
    }
}
