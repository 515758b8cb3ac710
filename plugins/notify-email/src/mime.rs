//! Building the message: RFC 5322 headers with UTF-8 subjects as RFC 2047 encoded words, a
//! `text/plain; charset=utf-8` body in quoted-printable, CRLF line ends. Pure functions, so
//! they are tested natively.

/// One message, ready for SMTP `DATA` (before dot-stuffing).
pub struct Message<'a> {
    /// `From`.
    pub from: &'a str,
    /// `To`, one or more addresses.
    pub to: &'a [String],
    /// The subject, any UTF-8.
    pub subject: &'a str,
    /// The body, any UTF-8.
    pub body: &'a str,
    /// Seconds since the epoch, for `Date`.
    pub time: i64,
    /// A unique part for `Message-ID`.
    pub id: &'a str,
}

impl Message<'_> {
    /// The message's bytes, CRLF line ends, lines under 78 characters where the text allows.
    pub fn render(&self) -> Vec<u8> {
        let domain = self.from.rsplit_once('@').map_or("localhost", |(_, d)| d);
        let mut out = String::new();
        out += &format!("Date: {}\r\n", rfc5322_date(self.time));
        out += &format!("From: {}\r\n", self.from);
        out += &format!("To: {}\r\n", self.to.join(", "));
        out += &format!("Subject: {}\r\n", encode_header(self.subject));
        out += &format!("Message-ID: <{}@{domain}>\r\n", self.id);
        out += "MIME-Version: 1.0\r\n";
        out += "Content-Type: text/plain; charset=utf-8\r\n";
        out += "Content-Transfer-Encoding: quoted-printable\r\n";
        out += "Auto-Submitted: auto-generated\r\n";
        out += "\r\n";
        out += &quoted_printable(self.body);
        out.into_bytes()
    }
}

/// A header value: as is when it is short printable ASCII, else RFC 2047 `B` encoded words
/// of at most 45 input bytes each, never splitting a character.
pub fn encode_header(text: &str) -> String {
    let plain = text.bytes().all(|b| (0x20..0x7f).contains(&b)) && text.len() <= 60;
    if plain {
        return text.to_string();
    }
    let mut words = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + 45).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        words.push(format!(
            "=?UTF-8?B?{}?=",
            base64(&text.as_bytes()[start..end])
        ));
        start = end;
    }
    words.join("\r\n ")
}

/// Quoted-printable (RFC 2045) of `text` with CRLF line ends.
pub fn quoted_printable(text: &str) -> String {
    let mut out = String::new();
    for line in text.replace("\r\n", "\n").split('\n') {
        let mut current = String::new();
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let trailing_space = (b == b' ' || b == b'\t') && last;
            let piece = if trailing_space || b == b'=' || !(0x20..0x7f).contains(&b) && b != b'\t' {
                format!("={b:02X}")
            } else {
                (b as char).to_string()
            };
            if current.len() + piece.len() > 75 {
                out += &current;
                out += "=\r\n";
                current.clear();
            }
            current += &piece;
        }
        out += &current;
        out += "\r\n";
    }
    out
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Thu, 01 Jan 1970 00:00:00 +0000` for `t` seconds since the epoch, in UTC.
pub fn rfc5322_date(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let name = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!(
        "{weekday}, {day:02} {name} {year} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `data` with every line starting with `.` doubled (RFC 5321 §4.5.2) and ending in
/// CRLF `.` CRLF.
pub fn dot_stuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    let mut at_line_start = true;
    for &b in data {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_base64() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_795_613_400),
            "Wed, 25 Nov 2026 13:30:00 +0000"
        );
        assert_eq!(base64(b"hoard"), "aG9hcmQ=");
        assert_eq!(base64(b"ho"), "aG8=");
    }

    #[test]
    fn headers_and_bodies_are_encoded() {
        assert_eq!(encode_header("backup ok"), "backup ok");
        let subject = encode_header("Sauvegarde échouée : hôte « web »");
        assert!(subject.starts_with("=?UTF-8?B?") && subject.is_ascii());
        let body = quoted_printable("café = ok \nline two\t");
        assert_eq!(body, "caf=C3=A9 =3D ok=20\r\nline two=09\r\n");
        let long = quoted_printable(&"x".repeat(200));
        assert!(long.lines().all(|l| l.len() <= 76));
    }

    #[test]
    fn dots_are_stuffed() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b".x"), b"..x\r\n.\r\n");
    }
}
