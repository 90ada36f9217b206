//! Splitting a users CSV into chunk descriptors, and reading one chunk back.
//!
//! The loader parses the whole file once (in the `load_csv_chunks` activity) and returns small
//! [`ChunkDescriptor`]s: a byte range of the file plus row numbers. Rows never travel through
//! workflow histories; the enrichment activity re-reads its chunk's byte range.
//!
//! Both passes apply the same [`validate`] function, so a row found malformed while loading is
//! skipped again when its chunk is read back.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Columns a users CSV must have (in any order, case-insensitive).
pub const REQUIRED_COLUMNS: [&str; 4] = ["id", "name", "email", "country"];

/// How many malformed rows a load result lists in full; the rest are only counted, so that a
/// hopelessly broken file does not bloat the workflow history.
pub const MAX_LISTED_MALFORMED: usize = 100;

/// Positions of the required columns in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Columns {
    /// Index of `id`.
    pub id: usize,
    /// Index of `name`.
    pub name: usize,
    /// Index of `email`.
    pub email: usize,
    /// Index of `country`.
    pub country: usize,
    /// Number of fields in the header: every row must have exactly this many.
    pub width: usize,
}

/// A chunk of the input: which bytes of which file, and which rows they hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkDescriptor {
    /// Position of the chunk, from 0.
    pub index: u32,
    /// The CSV file.
    pub path: PathBuf,
    /// Byte offset of the chunk's first record.
    pub start: u64,
    /// Byte offset just past the chunk's last record.
    pub end: u64,
    /// Data row number (1-based, header excluded) of the chunk's first record.
    pub first_row: u64,
    /// Line number (1-based, header is line 1) where the chunk's first record starts.
    pub first_line: u64,
    /// Valid rows in the chunk (malformed ones are skipped).
    pub rows: u64,
    /// Where the columns are.
    pub columns: Columns,
}

/// A row that cannot be enriched, with where it is and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MalformedRow {
    /// Line number (1-based) where the record starts.
    pub line: u64,
    /// Data row number (1-based).
    pub row: u64,
    /// What is wrong.
    pub reason: String,
}

/// What loading a CSV found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadResult {
    /// Data records in the file (valid and malformed).
    pub rows: u64,
    /// Valid rows.
    pub valid_rows: u64,
    /// The chunks, in file order.
    pub chunks: Vec<ChunkDescriptor>,
    /// Malformed rows in total.
    pub malformed_count: u64,
    /// The first [`MAX_LISTED_MALFORMED`] malformed rows.
    pub malformed: Vec<MalformedRow>,
}

/// A valid user row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Data row number (1-based).
    pub row: u64,
    /// The user's id.
    pub id: String,
    /// The user's name.
    pub name: String,
    /// The user's email.
    pub email: String,
    /// The user's country code.
    pub country: String,
}

/// Why a CSV cannot be loaded at all (as opposed to single malformed rows).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsvError {
    /// The file cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The header lacks a required column.
    #[error(
        "{path}: the header has no {column:?} column (found: {found}); the CSV needs columns id, name, email, country"
    )]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The missing column.
        column: &'static str,
        /// The header's columns.
        found: String,
    },
    /// A record (line) is longer than the limit: not a CSV file, or a broken one.
    #[error(
        "{path}: line {line} is longer than {limit} bytes, the limit for one record (--max-record-bytes); is this a CSV file?"
    )]
    RecordTooLong {
        /// The file.
        path: PathBuf,
        /// The line (from 1).
        line: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The CSV reader failed.
    #[error("{path}: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        source: csv::Error,
    },
}

impl CsvError {
    /// Whether reading again later can succeed (an I/O hiccup), as opposed to bad content.
    pub fn retryable(&self) -> bool {
        match self {
            CsvError::Io { source, .. } => {
                !matches!(source.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied)
            }
            CsvError::Csv { source, .. } => source.is_io_error(),
            CsvError::MissingColumn { .. } | CsvError::RecordTooLong { .. } => false,
        }
    }
}

fn reader<R: Read>(r: R, has_headers: bool) -> csv::Reader<R> {
    // Flexible: a row with the wrong number of fields is a malformed row we report, not an
    // error that stops the whole file.
    csv::ReaderBuilder::new().has_headers(has_headers).flexible(true).from_reader(r)
}

fn find_columns(path: &Path, header: &csv::ByteRecord) -> Result<Columns, CsvError> {
    let names: Vec<String> = header
        .iter()
        .map(|f| String::from_utf8_lossy(f).trim().trim_start_matches('\u{feff}').to_lowercase())
        .collect();
    let find = |column: &'static str| {
        names.iter().position(|n| n == column).ok_or_else(|| CsvError::MissingColumn {
            path: path.to_path_buf(),
            column,
            found: names.join(", "),
        })
    };
    Ok(Columns {
        id: find("id")?,
        name: find("name")?,
        email: find("email")?,
        country: find("country")?,
        width: names.len(),
    })
}

/// Checks an email address the way a CRM import would: one `@`, a non-empty local part, a
/// domain with a dot, no spaces.
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

/// Validates one record: the number of fields, UTF-8, a non-empty id, a valid email.
pub fn validate(record: &csv::ByteRecord, columns: &Columns, row: u64) -> Result<User, String> {
    if record.len() != columns.width {
        return Err(format!("expected {} fields, found {}", columns.width, record.len()));
    }
    let field = |i: usize, name: &str| {
        std::str::from_utf8(&record[i]).map(|s| s.trim().to_string()).map_err(|_| format!("{name} is not valid UTF-8"))
    };
    let user = User {
        row,
        id: field(columns.id, "id")?,
        name: field(columns.name, "name")?,
        email: field(columns.email, "email")?,
        country: field(columns.country, "country")?,
    };
    if user.id.is_empty() {
        return Err("id is empty".into());
    }
    if !is_valid_email(&user.email) {
        return Err(format!("invalid email {:?}", user.email));
    }
    Ok(user)
}

/// The longest record (line) the loader reads by default: 1 MiB. A longer one stops the load
/// with [`CsvError::RecordTooLong`], so that a file with no line breaks (`/dev/zero`, a
/// binary file) never grows the process's memory without bound.
pub const DEFAULT_MAX_RECORD_BYTES: u64 = 1 << 20;

/// Fails a read once a line grows past `limit` bytes, remembering where.
struct LineLimit<R> {
    inner: R,
    limit: u64,
    since_newline: u64,
    line: u64,
    exceeded: std::rc::Rc<std::cell::Cell<Option<u64>>>,
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for b in &buf[..n] {
            if *b == b'\n' {
                self.since_newline = 0;
                self.line += 1;
            } else {
                self.since_newline += 1;
                if self.since_newline > self.limit {
                    self.exceeded.set(Some(self.line));
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "record too long"));
                }
            }
        }
        Ok(n)
    }
}

/// Parses `path` and splits it into chunks of `chunk_size` valid rows. `progress` is called
/// every few thousand rows with the number of records read so far (the activity heartbeats
/// from it). An empty file, or one with only a header, gives zero chunks.
pub fn load_chunks(path: &Path, chunk_size: u64, progress: impl FnMut(u64)) -> Result<LoadResult, CsvError> {
    load_chunks_limited(path, chunk_size, DEFAULT_MAX_RECORD_BYTES, progress)
}

/// [`load_chunks`] with a limit on the length of one record (line), in bytes.
pub fn load_chunks_limited(
    path: &Path,
    chunk_size: u64,
    max_record_bytes: u64,
    mut progress: impl FnMut(u64),
) -> Result<LoadResult, CsvError> {
    let chunk_size = chunk_size.max(1);
    let io = |source| CsvError::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let exceeded = std::rc::Rc::new(std::cell::Cell::new(None));
    let limited = LineLimit {
        inner: BufReader::with_capacity(1 << 16, file),
        limit: max_record_bytes.max(1),
        since_newline: 0,
        line: 1,
        exceeded: exceeded.clone(),
    };
    let mut rdr = reader(limited, true);
    let csv_err = |source| match exceeded.get() {
        Some(line) => CsvError::RecordTooLong { path: path.to_path_buf(), line, limit: max_record_bytes },
        None => CsvError::Csv { path: path.to_path_buf(), source },
    };
    let header = rdr.byte_headers().map_err(&csv_err)?.clone();
    let mut out = LoadResult::default();
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        return Ok(out);
    }
    let columns = find_columns(path, &header)?;
    let mut record = csv::ByteRecord::new();
    let mut current: Option<ChunkDescriptor> = None;
    loop {
        let pos = rdr.position().clone();
        if !rdr.read_byte_record(&mut record).map_err(&csv_err)? {
            break;
        }
        out.rows += 1;
        let row = out.rows;
        if row % 4096 == 0 {
            progress(row);
        }
        // A record's own position is where it starts; `pos` (the reader's position before
        // reading it) may still sit before blank lines, which are harmless in a byte range.
        let start = record.position().map_or(pos.byte(), |p| p.byte());
        let line = record.position().map_or(pos.line(), |p| p.line());
        let valid = match validate(&record, &columns, row) {
            Ok(_) => true,
            Err(reason) => {
                out.malformed_count += 1;
                if out.malformed.len() < MAX_LISTED_MALFORMED {
                    out.malformed.push(MalformedRow { line, row, reason });
                }
                false
            }
        };
        let full = current.as_ref().is_some_and(|c| c.rows >= chunk_size);
        if valid && full {
            let mut done = current.take().expect("checked above");
            done.end = start;
            out.chunks.push(done);
        }
        match current.as_mut() {
            Some(c) => c.rows += u64::from(valid),
            None if valid => {
                current = Some(ChunkDescriptor {
                    index: out.chunks.len() as u32,
                    path: path.to_path_buf(),
                    start,
                    end: len,
                    first_row: row,
                    first_line: line,
                    rows: 1,
                    columns,
                });
            }
            // Malformed rows before the first valid one belong to no chunk.
            None => {}
        }
        out.valid_rows += u64::from(valid);
    }
    if let Some(mut last) = current {
        last.end = rdr.position().byte().max(last.start);
        out.chunks.push(last);
    }
    Ok(out)
}

/// Reads the valid rows of one chunk back from its byte range.
pub fn read_chunk(chunk: &ChunkDescriptor) -> Result<Vec<User>, CsvError> {
    let io = |source| CsvError::Io { path: chunk.path.clone(), source };
    let mut file = File::open(&chunk.path).map_err(io)?;
    file.seek(SeekFrom::Start(chunk.start)).map_err(io)?;
    let mut rdr = reader(BufReader::new(file.take(chunk.end.saturating_sub(chunk.start))), false);
    let mut record = csv::ByteRecord::new();
    let mut users = Vec::with_capacity(chunk.rows as usize);
    let mut row = chunk.first_row;
    while rdr.read_byte_record(&mut record).map_err(|source| CsvError::Csv { path: chunk.path.clone(), source })? {
        if let Ok(user) = validate(&record, &chunk.columns, row) {
            users.push(user);
        }
        row += 1;
    }
    Ok(users)
}

/// A small deterministic pseudo-random generator (splitmix64), so the sample file is the same
/// on every machine and a resumed batch reads the same data.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const FIRST: [&str; 16] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Radia", "Linus", "Frances", "John",
    "Hedy", "Dennis", "Sophie", "Tim",
];
const LAST: [&str; 16] = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Perlman",
    "Torvalds",
    "Allen",
    "McCarthy",
    "Lamarr",
    "Ritchie",
    "Wilson",
    "Berners-Lee",
];
const COUNTRIES: [&str; 20] = [
    "US", "CA", "MX", "BR", "AR", "GB", "DE", "FR", "ES", "IT", "NL", "SE", "PL", "IN", "JP", "SG", "AU", "ZA", "NG",
    "KE",
];

/// Writes a sample users CSV with `rows` data rows (id, name, email, country) to `path`,
/// atomically. The content depends only on `rows`. About one row in a thousand is deliberately
/// malformed (a bad email or a missing field) so that a default run shows how they are
/// reported; some names contain commas and quotes to exercise CSV quoting.
pub fn generate_sample(path: &Path, rows: u64) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("csv.tmp");
    let mut out = std::io::BufWriter::new(File::create(&tmp)?);
    let mut rng = SplitMix(0x5eed_u64 ^ rows);
    writeln!(out, "id,name,email,country")?;
    for i in 1..=rows {
        let first = rng.pick(&FIRST);
        let last = rng.pick(&LAST);
        let country = rng.pick(&COUNTRIES);
        let id = format!("u{i:07}");
        let email = format!("{}.{}{}@example.com", first.to_lowercase(), last.to_lowercase(), i);
        let roll = rng.next() % 1000;
        match roll {
            0 => writeln!(out, "{id},{first} {last},{}.at.example.com,{country}", first.to_lowercase())?,
            1 => writeln!(out, "{id},{first} {last},{email}")?,
            2..=40 => writeln!(out, "{id},\"{last}, {first}\",{email},{country}")?,
            41..=45 => writeln!(out, "{id},\"{first} \"\"the {last}\"\"\",{email},{country}")?,
            _ => writeln!(out, "{id},{first} {last},{email},{country}")?,
        }
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(content: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.csv");
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    fn ids(chunk: &ChunkDescriptor) -> Vec<String> {
        read_chunk(chunk).unwrap().into_iter().map(|u| u.id).collect()
    }

    fn rows(n: u64) -> String {
        let mut s = String::from("id,name,email,country\n");
        for i in 1..=n {
            s.push_str(&format!("u{i},User {i},u{i}@example.com,DE\n"));
        }
        s
    }

    #[test]
    fn chunk_boundaries_and_last_partial_chunk() {
        let (_d, path) = write(rows(10).as_bytes());
        let r = load_chunks(&path, 4, |_| {}).unwrap();
        assert_eq!((r.rows, r.valid_rows, r.malformed_count), (10, 10, 0));
        assert_eq!(r.chunks.iter().map(|c| c.rows).collect::<Vec<_>>(), [4, 4, 2]);
        assert_eq!(r.chunks.iter().map(|c| c.first_row).collect::<Vec<_>>(), [1, 5, 9]);
        assert_eq!(r.chunks.iter().map(|c| c.first_line).collect::<Vec<_>>(), [2, 6, 10]);
        // Ranges tile the data without gaps or overlaps and end at the end of the file.
        assert_eq!(r.chunks[0].end, r.chunks[1].start);
        assert_eq!(r.chunks[1].end, r.chunks[2].start);
        assert_eq!(r.chunks[2].end, std::fs::metadata(&path).unwrap().len());
        assert_eq!(ids(&r.chunks[0]), ["u1", "u2", "u3", "u4"]);
        assert_eq!(ids(&r.chunks[2]), ["u9", "u10"]);
        let users = read_chunk(&r.chunks[1]).unwrap();
        assert_eq!(users[0].row, 5);
    }

    #[test]
    fn exact_multiple_has_no_empty_chunk() {
        let (_d, path) = write(rows(8).as_bytes());
        let r = load_chunks(&path, 4, |_| {}).unwrap();
        assert_eq!(r.chunks.len(), 2);
        assert_eq!(ids(&r.chunks[1]), ["u5", "u6", "u7", "u8"]);
    }

    #[test]
    fn header_columns_in_any_order_and_case() {
        let (_d, path) = write(b"Country,EMAIL,id,Name\nDE,a@example.com,u1,Ann\n");
        let r = load_chunks(&path, 10, |_| {}).unwrap();
        let users = read_chunk(&r.chunks[0]).unwrap();
        assert_eq!(
            users[0],
            User { row: 1, id: "u1".into(), name: "Ann".into(), email: "a@example.com".into(), country: "DE".into() }
        );
    }

    #[test]
    fn missing_column_is_a_clear_error() {
        let (_d, path) = write(b"id,name,mail\nu1,Ann,a@example.com\n");
        let err = load_chunks(&path, 10, |_| {}).unwrap_err();
        assert!(err.to_string().contains("no \"email\" column"), "{err}");
        assert!(!err.retryable());
    }

    #[test]
    fn quoting_and_embedded_newlines() {
        let csv = "id,name,email,country\n\
                   u1,\"Lovelace, Ada\",ada@example.com,GB\n\
                   u2,\"Grace\nHopper\",grace@example.com,US\n\
                   u3,\"Alan \"\"the\"\" Turing\",alan@example.com,GB\n\
                   u4,Plain,p@example.com,DE\n";
        let (_d, path) = write(csv.as_bytes());
        let r = load_chunks(&path, 2, |_| {}).unwrap();
        assert_eq!(r.chunks.len(), 2);
        // The record with the embedded newline spans lines 3-4, so the next chunk starts on 5.
        assert_eq!(r.chunks[1].first_line, 5);
        let a = read_chunk(&r.chunks[0]).unwrap();
        assert_eq!(a[0].name, "Lovelace, Ada");
        assert_eq!(a[1].name, "Grace\nHopper");
        let b = read_chunk(&r.chunks[1]).unwrap();
        assert_eq!(b[0].name, "Alan \"the\" Turing");
        assert_eq!(b[1].id, "u4");
    }

    #[test]
    fn malformed_rows_are_reported_with_line_numbers_and_skipped() {
        let mut csv = b"id,name,email,country\n".to_vec();
        csv.extend_from_slice(b"u1,Ann,ann@example.com,DE\n");
        csv.extend_from_slice(b"u2,Bob,bob@example.com\n"); // wrong column count
        csv.extend_from_slice(b"u3,Cy,not-an-email,DE\n"); // invalid email
        csv.extend_from_slice(b"u4,D\xffn,d@example.com,DE\n"); // invalid UTF-8
        csv.extend_from_slice(b"u5,Eve,eve@example.com,FR\n");
        let (_d, path) = write(&csv);
        let r = load_chunks(&path, 10, |_| {}).unwrap();
        assert_eq!((r.rows, r.valid_rows, r.malformed_count), (5, 2, 3));
        let lines: Vec<u64> = r.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, [3, 4, 5]);
        assert!(r.malformed[0].reason.contains("expected 4 fields, found 3"));
        assert!(r.malformed[1].reason.contains("invalid email"));
        assert!(r.malformed[2].reason.contains("UTF-8"));
        assert_eq!(r.chunks[0].rows, 2);
        assert_eq!(ids(&r.chunks[0]), ["u1", "u5"]);
    }

    #[test]
    fn empty_file_and_header_only_give_zero_chunks() {
        for content in [&b""[..], b"id,name,email,country\n"] {
            let (_d, path) = write(content);
            let r = load_chunks(&path, 10, |_| {}).unwrap();
            assert_eq!(r, LoadResult::default());
        }
    }

    #[test]
    fn an_overlong_record_stops_the_load_with_its_line_and_bounded_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.csv");
        let mut text = String::from("id,name,email,country\nu1,Ann,ann@example.com,DE\n");
        text.push_str(&"x".repeat(5_000));
        text.push_str("\nu2,Bob,bob@example.com,US\n");
        std::fs::write(&path, text).unwrap();
        let err = load_chunks_limited(&path, 10, 4_096, |_| {}).unwrap_err();
        assert!(matches!(err, CsvError::RecordTooLong { line: 3, limit: 4_096, .. }), "{err:?}");
        assert!(!err.retryable());
        assert!(err.to_string().contains("line 3 is longer than 4096 bytes"), "{err}");
        // The same file within a larger limit loads (the long line is a malformed row).
        let r = load_chunks_limited(&path, 10, 10_000, |_| {}).unwrap();
        assert_eq!((r.valid_rows, r.malformed_count), (2, 1));
        // A file with no line breaks at all: stops after the limit, not at the end of memory.
        if Path::new("/dev/zero").exists() {
            let err = load_chunks_limited(Path::new("/dev/zero"), 10, 1 << 20, |_| {}).unwrap_err();
            assert!(matches!(err, CsvError::RecordTooLong { line: 1, .. }), "{err:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 96, ..Default::default() })]

        /// Any bytes as an input file: the loader and the chunk reader answer with chunks or a
        /// typed error, never a panic.
        #[test]
        fn arbitrary_files_never_panic_the_loader(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("fuzz.csv");
            let mut text = b"id,name,email,country\n".to_vec();
            text.extend_from_slice(&bytes);
            std::fs::write(&path, &text).unwrap();
            for raw in [&bytes[..], &text[..]] {
                std::fs::write(&path, raw).unwrap();
                if let Ok(r) = load_chunks_limited(&path, 3, 256, |_| {}) {
                    for c in &r.chunks {
                        let _ = read_chunk(c);
                    }
                }
            }
        }
    }

    #[test]
    fn missing_file_is_not_retryable() {
        let err = load_chunks(Path::new("/nonexistent/users.csv"), 10, |_| {}).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/users.csv"));
        assert!(!err.retryable());
    }

    #[test]
    fn sample_is_deterministic_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        let b = dir.path().join("b.csv");
        generate_sample(&a, 3000).unwrap();
        generate_sample(&b, 3000).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let r = load_chunks(&a, 500, |_| {}).unwrap();
        assert_eq!(r.rows, 3000);
        assert!(r.malformed_count > 0 && r.malformed_count < 20, "{}", r.malformed_count);
        let total: usize = r.chunks.iter().map(|c| read_chunk(c).unwrap().len()).sum();
        assert_eq!(total as u64, r.valid_rows);
    }
}
