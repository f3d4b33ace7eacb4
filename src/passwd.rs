//! User names, read from `/etc/passwd` by hand: the C library's getpwuid
//! would double the size of withlock for this one lookup.

use crate::proc;

/// Call `found` with the user name for `uid` from /etc/passwd; false if it
/// has no entry there. Read by hand: the C library's getpwuid would double
/// the size of withlock for this one lookup.
pub fn user_name(uid: u32, found: impl FnOnce(&[u8])) -> bool {
    let mut found = Some(found);
    proc::each_line_of(b"/etc/passwd\0", &mut |line| {
        // name:password:uid:...
        let mut fields = line.split(|&b| b == b':');
        let (name, uid_field) = (fields.next(), fields.nth(1));
        if let (Some(name), Some(field)) = (name, uid_field)
            && !name.is_empty()
            && proc::parse_u32(field) == Some(uid)
            && let Some(found) = found.take()
        {
            found(name);
        }
    });
    found.is_none()
}
