//! Plain aligned text tables for human output: columns padded to their
//! widest cell, two spaces apart, no trailing spaces.

/// A table with a header row.
#[derive(Debug)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Table {
        Table { rows: vec![headers.iter().map(|h| h.to_string()).collect()] }
    }

    /// Adds a row; missing cells are blank, extra cells are kept.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The rendered table, one line per row, each ending in a newline.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map_or("", String::as_str);
                line.push_str(cell);
                if i + 1 < columns {
                    line.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `KEY  value` lines with the values aligned.
pub fn pairs(items: &[(&str, String)]) -> String {
    let width = items.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    items.iter().map(|(k, v)| format!("{k:<width$}  {v}").trim_end().to_string() + "\n").collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_without_trailing_spaces() {
        let mut t = Table::new(&["TOPIC", "PARTITION", "LAG"]);
        t.row(vec!["orders".into(), "0".into(), "12".into()]);
        t.row(vec!["ü".into(), "10".into(), String::new()]);
        assert_eq!(t.render(), "TOPIC   PARTITION  LAG\norders  0          12\nü       10\n");
    }

    #[test]
    fn pairs_align() {
        assert_eq!(
            pairs(&[("GROUP", "g".into()), ("STATE", "Empty".into()), ("COORDINATOR", "1".into())]),
            "GROUP        g\nSTATE        Empty\nCOORDINATOR  1\n"
        );
    }
}
