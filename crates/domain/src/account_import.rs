//! The CSV of an account import, read and checked line by line (nothing here touches
//! the database; the engine's `import_accounts` decides what each row changes).
//!
//! The header names the columns, in any order: `email` (required), `name`, `role`
//! (`user`, `support`, `admin`), `password_hash` (a format of
//! [`crate::password::formats`]) and `invite` (`true`, `false`, `1`, `0` or empty).
//! An empty cell means "not given". A *line* is a line of the file as an editor
//! numbers it, the header being line 1; a row is reported by the line it starts on,
//! so a quoted field with a line break in it makes the rows after it start further
//! down.

use crate::account::{Email, Role};
use crate::password::formats;
use std::collections::HashMap;

/// The columns an import knows.
pub const COLUMNS: [&str; 5] = ["email", "name", "role", "password_hash", "invite"];

/// One good row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    pub line: u64,
    pub email: Email,
    pub name: Option<String>,
    pub role: Option<Role>,
    pub password_hash: Option<String>,
    pub invite: bool,
}

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

impl LineError {
    fn new(line: u64, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

/// The good rows and the errors, each in file order.
#[derive(Debug, Default)]
pub struct ParsedImport {
    pub rows: Vec<ImportRow>,
    pub errors: Vec<LineError>,
}

/// Where each known column is in the file.
struct Header {
    positions: [Option<usize>; 5],
    width: usize,
}

impl Header {
    fn read(fields: &csv::ByteRecord) -> Result<Self, LineError> {
        let mut positions = [None; 5];
        let mut unknown = Vec::new();
        for (i, raw) in fields.iter().enumerate() {
            let name = String::from_utf8_lossy(raw).trim().to_lowercase();
            match COLUMNS.iter().position(|c| *c == name) {
                Some(k) if positions[k].is_some() => {
                    return Err(LineError::new(1, format!("column {name} appears twice")));
                }
                Some(k) => positions[k] = Some(i),
                None => unknown.push(format!("{name:?}")),
            }
        }
        if !unknown.is_empty() {
            return Err(LineError::new(
                1,
                format!(
                    "unknown column(s) {} (the columns are {})",
                    unknown.join(", "),
                    COLUMNS.join(", ")
                ),
            ));
        }
        if positions[0].is_none() {
            return Err(LineError::new(1, "the header has no email column"));
        }
        Ok(Self {
            positions,
            width: fields.len(),
        })
    }

    /// The trimmed cell of column `k`; `None` when the column is absent or the cell
    /// empty.
    fn cell<'r>(&self, record: &'r csv::ByteRecord, k: usize) -> Result<Option<&'r str>, String> {
        let Some(raw) = self.positions[k].and_then(|i| record.get(i)) else {
            return Ok(None);
        };
        let text = std::str::from_utf8(raw)
            .map_err(|_| format!("{} is not UTF-8 text", COLUMNS[k]))?
            .trim();
        Ok((!text.is_empty()).then_some(text))
    }

    fn row(&self, line: u64, record: &csv::ByteRecord) -> Result<ImportRow, String> {
        if record.len() != self.width {
            // The usual cause: a PHC hash's parameters (m=19456,t=2,p=1) unquoted.
            let hint = if record.len() > self.width && record.iter().any(|f| f.starts_with(b"$")) {
                " (quote a password hash that holds commas: \"$argon2id$v=19$m=19456,t=2,p=1$...\")"
            } else {
                ""
            };
            return Err(format!(
                "{} fields where the header has {}{hint}",
                record.len(),
                self.width
            ));
        }
        let email = match self.cell(record, 0)? {
            Some(e) => {
                Email::parse(e).map_err(|_| format!("{e:?} is not a valid e-mail address"))?
            }
            None => return Err("the e-mail address is missing".into()),
        };
        let role = match self.cell(record, 2)? {
            Some(r) => Some(r.to_lowercase().parse::<Role>().map_err(|_| {
                format!("unknown role {r:?} (the roles are user, support and admin)")
            })?),
            None => None,
        };
        let password_hash = match self.cell(record, 3)? {
            Some(h) => {
                formats::recognise(h).map_err(|e| e.to_string())?;
                Some(h.to_owned())
            }
            None => None,
        };
        let invite = match self.cell(record, 4)?.map(str::to_lowercase).as_deref() {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(other) => {
                return Err(format!(
                    "invite must be true, false, 1, 0 or empty, not {other:?}"
                ))
            }
        };
        Ok(ImportRow {
            line,
            email,
            name: self.cell(record, 1)?.map(str::to_owned),
            role,
            password_hash,
            invite,
        })
    }
}

/// Reads an import file: its header, then every row, each good one or the reason
/// it is not. An address that appears again is an error on the later line.
pub fn parse(file: &[u8]) -> ParsedImport {
    let file = file.strip_prefix(b"\xef\xbb\xbf").unwrap_or(file);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(file);
    let mut out = ParsedImport::default();
    let mut record = csv::ByteRecord::new();
    let header = match reader.read_byte_record(&mut record) {
        Ok(true) => Header::read(&record),
        Ok(false) => Err(LineError::new(
            1,
            format!(
                "the file is empty; its first line must name the columns ({})",
                COLUMNS.join(",")
            ),
        )),
        Err(e) => Err(LineError::new(1, e.to_string())),
    };
    let header = match header {
        Ok(h) => h,
        Err(e) => {
            out.errors.push(e);
            return out;
        }
    };
    let mut first_line: HashMap<Email, u64> = HashMap::new();
    let mut lines = Lines::new(file);
    loop {
        let before = reader.position().byte();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // Only broken input stops the reader (the reader is flexible and
                // reads bytes); nothing after it can be trusted to be numbered right.
                let at = e.position().map_or(before, |p| p.byte());
                out.errors
                    .push(LineError::new(lines.line_at(at), e.to_string()));
                break;
            }
        }
        let line = lines.record_line(record.position().map_or(before, |p| p.byte()));
        match header.row(line, &record) {
            Ok(row) => match first_line.get(&row.email) {
                Some(first) => out.errors.push(LineError::new(
                    line,
                    format!("{} appears again (first on line {first})", row.email),
                )),
                None => {
                    first_line.insert(row.email.clone(), line);
                    out.rows.push(row);
                }
            },
            Err(message) => out.errors.push(LineError::new(line, message)),
        }
    }
    out
}

/// Line numbers as an editor shows them: `\n`, `\r\n` and a lone `\r` each end a
/// line. (The reader counts `\n` only, so in a file saved with a classic Mac's line
/// ends, `\r`, every row would be on line 1.) Records come in order, so the count
/// goes forward only.
struct Lines<'f> {
    file: &'f [u8],
    at: usize,
    line: u64,
}

impl<'f> Lines<'f> {
    fn new(file: &'f [u8]) -> Self {
        Self {
            file,
            at: 0,
            line: 1,
        }
    }

    /// The line of the byte at `byte`.
    fn line_at(&mut self, byte: u64) -> u64 {
        let to = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.file.len());
        while self.at < to {
            let b = self.file[self.at];
            let after_cr = self.at > 0 && self.file[self.at - 1] == b'\r';
            if b == b'\r' || (b == b'\n' && !after_cr) {
                self.line += 1;
            }
            self.at += 1;
        }
        self.line
    }

    /// The line a record starts on. The reader places a record at the blank lines
    /// it skipped before it; the first byte after them is where it really starts.
    fn record_line(&mut self, placed_at: u64) -> u64 {
        let from = usize::try_from(placed_at).unwrap_or(usize::MAX);
        let skipped = self
            .file
            .get(from..)
            .unwrap_or_default()
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        self.line_at(placed_at.saturating_add(skipped as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BCRYPT: &str = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

    fn lines(p: &ParsedImport) -> Vec<u64> {
        p.errors.iter().map(|e| e.line).collect()
    }

    #[test]
    fn columns_come_in_any_order_and_only_email_is_required() {
        let csv = format!(
            "\u{feff}Invite,password_hash,EMAIL,role,name\n\
             1,{BCRYPT},An@Example.be,Admin,An Peeters\n\
             ,,bo@example.be,,\n"
        );
        let p = parse(csv.as_bytes());
        assert_eq!(p.errors, vec![]);
        assert_eq!(p.rows.len(), 2);
        let an = &p.rows[0];
        assert_eq!(
            (
                an.line,
                an.email.as_str(),
                an.name.as_deref(),
                an.role,
                an.invite
            ),
            (
                2,
                "an@example.be",
                Some("An Peeters"),
                Some(Role::Admin),
                true
            )
        );
        assert_eq!(an.password_hash.as_deref(), Some(BCRYPT));
        let bo = &p.rows[1];
        assert_eq!((bo.line, bo.name.as_deref(), bo.role), (3, None, None));
        assert_eq!((bo.password_hash.as_deref(), bo.invite), (None, false));
        assert_eq!(parse(b"email\nan@example.be\n").rows.len(), 1);
    }

    #[test]
    fn a_bad_header_is_an_error_on_line_1() {
        for (csv, says) in [
            ("", "empty"),
            ("name,role\nAn,user\n", "no email column"),
            (
                "email,mail,phone\nan@example.be,x,y\n",
                "\"mail\", \"phone\"",
            ),
            ("email,name,email\n", "twice"),
        ] {
            let p = parse(csv.as_bytes());
            assert!(p.rows.is_empty(), "{csv}");
            assert_eq!(lines(&p), vec![1], "{csv}");
            assert!(p.errors[0].message.contains(says), "{csv}: {:?}", p.errors);
        }
    }

    #[test]
    fn bad_lines_are_reported_by_their_line_in_the_file() {
        let csv = "email,name,role,password_hash,invite\n\
                   an@example.be,\"An\nPeeters\",user,,\n\
                   not-an-address,Bo,user,,\n\
                   cas@example.be,Cas,root,,\n\
                   \n\
                   dirk@example.be,Dirk,user,$md5$abc,\n\
                   eva@example.be,Eva,user,,yes\n\
                   \"fien@example.be\",Fien,user,$scrypt$ln=10,r=8,p=1$c2FsdA$aGFzaA,\n\
                   AN@example.be,An again,user,,\n\
                   fien@example.be,Fien\n\
                   ,Geen adres,user,,\n\
                   gert@example.be,Gert,support,,0\n";
        let p = parse(csv.as_bytes());
        // Line 2's quoted name spans lines 2 and 3; line 6 is blank.
        assert_eq!(lines(&p), vec![4, 5, 7, 8, 9, 10, 11, 12]);
        let says = |line: u64, what: &str| {
            let e = p.errors.iter().find(|e| e.line == line).expect("error");
            assert!(e.message.contains(what), "line {line}: {}", e.message);
        };
        says(4, "not a valid e-mail address");
        says(5, "unknown role \"root\"");
        says(7, "unknown password hash format");
        says(8, "invite must be");
        says(9, "7 fields where the header has 5 (quote a password hash");
        says(10, "appears again (first on line 2)");
        says(11, "2 fields where the header has 5");
        says(12, "missing");
        let good: Vec<(u64, &str)> = p.rows.iter().map(|r| (r.line, r.email.as_str())).collect();
        assert_eq!(good, vec![(2, "an@example.be"), (13, "gert@example.be")]);
        assert_eq!(p.rows[0].name.as_deref(), Some("An\nPeeters"));
        // Windows line ends and blank lines count the same way.
        let p = parse(b"email,role\r\n\r\n\r\nan@example.be,root\r\nbo@example.be,boss");
        assert_eq!(lines(&p), vec![4, 5]);
    }

    /// Found by fuzzing (fuzz target account_import): with a classic Mac's line ends
    /// (a lone CR) every row was reported on line 1, and two rows could share a line.
    #[test]
    fn a_lone_carriage_return_ends_a_line_too() {
        let p = parse(b"email,role\ran@example.be,user\r\rbo@example.be,boss\rcas@example.be,root");
        assert_eq!(p.rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2]);
        assert_eq!(lines(&p), vec![4, 5]);
        let p =
            parse(b"email,role\nan@example.be,user\rbo@example.be,boss\r\nAN@example.be,user\n");
        assert_eq!(lines(&p), vec![3, 4]);
        assert!(
            p.errors[1].message.contains("first on line 2"),
            "{:?}",
            p.errors
        );
    }
}
