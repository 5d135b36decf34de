//! Table rows as jobs: the cells of a CSV record or a Parquet row written as one JSON job
//! text, which the workers then parse and score like a JSONL line (so a row and the same job
//! in JSONL are scored by the same code, byte for byte).
//!
//! Columns map to job fields by name; a dotted name (`model_input.SD.width`) is a path into
//! nested objects, and a Parquet struct column is a nested object itself. A null cell (an
//! empty CSV cell) is an absent field, and an object whose fields are all absent is absent
//! too, so one table can hold image and LLM jobs side by side.

/// How a row's cells nest into a job: built once from the column names.
#[derive(Debug)]
pub struct Plan {
    root: Vec<(String, Node)>,
}

#[derive(Debug)]
enum Node {
    /// The cell of this column.
    Leaf(usize),
    Object(Vec<(String, Node)>),
}

/// Why a cell cannot be part of a job: its column and what is wrong.
#[derive(Debug)]
pub struct CellError {
    pub column: usize,
    pub message: String,
}

/// The cells of one row, written on demand.
pub trait Cells {
    /// Writes the JSON value of column `col` to `out`; `false` (writing nothing) when the cell
    /// is null or empty.
    fn write(&mut self, col: usize, out: &mut Vec<u8>) -> Result<bool, CellError>;
}

impl Plan {
    /// From the column names, in order. Two columns that give the same field, or a column
    /// that is both a field and a prefix of another (`a` and `a.b`), are refused.
    pub fn new(names: &[String]) -> Result<Plan, String> {
        let mut root: Vec<(String, Node)> = Vec::new();
        for (col, name) in names.iter().enumerate() {
            let path: Vec<&str> = name.split('.').collect();
            let mut level = &mut root;
            for (depth, key) in path.iter().enumerate() {
                let last = depth + 1 == path.len();
                let at = level.iter().position(|(k, _)| k == key);
                match (at, last) {
                    (None, true) => {
                        level.push((key.to_string(), Node::Leaf(col)));
                    }
                    (None, false) => {
                        level.push((key.to_string(), Node::Object(Vec::new())));
                        let end = level.len() - 1;
                        level = match &mut level[end].1 {
                            Node::Object(children) => children,
                            Node::Leaf(_) => unreachable!("just pushed an object"),
                        };
                    }
                    (Some(i), false) if matches!(level[i].1, Node::Object(_)) => {
                        level = match &mut level[i].1 {
                            Node::Object(children) => children,
                            Node::Leaf(_) => unreachable!("matched an object"),
                        };
                    }
                    (Some(i), _) => {
                        let other = first_leaf(&level[i].1)
                            .map_or_else(|| path[..=depth].join("."), |c| names[c].clone());
                        return Err(format!(
                            "columns `{other}` and `{name}` both give the field `{}`",
                            path[..=depth].join(".")
                        ));
                    }
                }
            }
        }
        Ok(Plan { root })
    }

    /// Writes the row as a JSON object (`{}` when every cell is empty).
    pub fn write_job(&self, cells: &mut impl Cells, out: &mut Vec<u8>) -> Result<(), CellError> {
        if !write_object(&self.root, cells, out)? {
            out.extend_from_slice(b"{}");
        }
        Ok(())
    }
}

fn first_leaf(node: &Node) -> Option<usize> {
    match node {
        Node::Leaf(c) => Some(*c),
        Node::Object(children) => children.iter().find_map(|(_, n)| first_leaf(n)),
    }
}

/// Writes `{...}` with the fields that are present; nothing (and `false`) when none is.
fn write_object(
    children: &[(String, Node)],
    cells: &mut impl Cells,
    out: &mut Vec<u8>,
) -> Result<bool, CellError> {
    let start = out.len();
    out.push(b'{');
    let mut any = false;
    for (key, node) in children {
        let mark = out.len();
        if any {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        let wrote = match node {
            Node::Leaf(col) => cells.write(*col, out)?,
            Node::Object(inner) => write_object(inner, cells, out)?,
        };
        if wrote {
            any = true;
        } else {
            out.truncate(mark);
        }
    }
    if any {
        out.push(b'}');
    } else {
        out.truncate(start);
    }
    Ok(any)
}

/// `s` as a JSON string.
pub fn write_string(s: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// Whether `s` is a JSON number literal exactly (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`).
pub fn is_json_number(s: &[u8]) -> bool {
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < s.len() && s[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if s.get(i) == Some(&b'-') {
        i += 1;
    }
    match s.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == s.len()
}

/// Fields that are always text in a CSV ledger (a model named `123` is still a name); any
/// other cell that is a JSON number literal is a number, and the rest is text.
pub const TEXT_FIELDS: [&str; 7] = [
    "id",
    "job_id",
    "model",
    "model_id",
    "miner",
    "miner_id",
    "completed_at",
];

/// The cells of a CSV record.
pub struct CsvCells<'a> {
    pub record: &'a csv::ByteRecord,
    /// Per column: always text.
    pub text: &'a [bool],
}

impl Cells for CsvCells<'_> {
    fn write(&mut self, col: usize, out: &mut Vec<u8>) -> Result<bool, CellError> {
        let cell = self.record.get(col).unwrap_or_default();
        if cell.is_empty() {
            return Ok(false);
        }
        let text = std::str::from_utf8(cell).map_err(|e| CellError {
            column: col,
            message: format!("is not valid UTF-8 (at byte {})", e.valid_up_to() + 1),
        })?;
        if !self.text[col] && is_json_number(cell) {
            out.extend_from_slice(cell);
        } else {
            write_string(text, out);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Texts(Vec<Option<&'static str>>);

    impl Cells for Texts {
        fn write(&mut self, col: usize, out: &mut Vec<u8>) -> Result<bool, CellError> {
            match self.0[col] {
                None => Ok(false),
                Some(v) => {
                    out.extend_from_slice(v.as_bytes());
                    Ok(true)
                }
            }
        }
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dotted_names_nest_and_empty_objects_vanish() {
        let plan = Plan::new(&names(&[
            "id",
            "model_input.SD.width",
            "model_input.SD.height",
            "tokens",
        ]))
        .unwrap();
        let mut out = Vec::new();
        plan.write_job(&mut Texts(vec![Some("1"), Some("2"), None, None]), &mut out)
            .unwrap();
        assert_eq!(out, br#"{"id":1,"model_input":{"SD":{"width":2}}}"#);
        out.clear();
        plan.write_job(&mut Texts(vec![None, None, None, Some("5")]), &mut out)
            .unwrap();
        assert_eq!(out, br#"{"tokens":5}"#);
        out.clear();
        plan.write_job(&mut Texts(vec![None; 4]), &mut out).unwrap();
        assert_eq!(out, b"{}");
    }

    #[test]
    fn clashing_columns_are_refused() {
        let e = Plan::new(&names(&["a", "a"])).unwrap_err();
        assert!(e.contains("`a` and `a`"), "{e}");
        let e = Plan::new(&names(&["a.b", "a"])).unwrap_err();
        assert!(e.contains("`a.b` and `a`"), "{e}");
        let e = Plan::new(&names(&["a", "a.b"])).unwrap_err();
        assert!(e.contains("`a` and `a.b`"), "{e}");
    }

    #[test]
    fn json_numbers_exactly() {
        for ok in ["0", "-0", "12", "-1.5", "1e9", "2.5E-3", "1e400"] {
            assert!(is_json_number(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "1e", "+1", " 1", "1 ", "0x10", "NaN", "1_000",
        ] {
            assert!(!is_json_number(bad.as_bytes()), "{bad}");
        }
    }
}
