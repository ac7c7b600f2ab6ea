//! A table of the console: a caption, header cells, rows of cells already
//! HTML (values escaped by the caller), in a wrapper that scrolls sideways
//! on a narrow screen.

use crate::web::html::escape;

pub(crate) struct Table {
    head: Vec<&'static str>,
    rows: Vec<String>,
    /// Columns aligned as numbers.
    numeric: Vec<usize>,
}

impl Table {
    pub fn new(head: &[&'static str]) -> Table {
        Table {
            head: head.to_vec(),
            rows: Vec::new(),
            numeric: Vec::new(),
        }
    }

    /// These columns hold numbers (right-aligned, tabular figures).
    pub fn numeric(mut self, columns: &[usize]) -> Table {
        self.numeric = columns.to_vec();
        self
    }

    pub fn row(&mut self, cells: &[String]) {
        let mut tr = String::from("<tr>");
        for (i, cell) in cells.iter().enumerate() {
            let class = if self.numeric.contains(&i) {
                " class=\"num\""
            } else {
                ""
            };
            tr.push_str(&format!("<td{class}>{cell}</td>"));
        }
        tr.push_str("</tr>\n");
        self.rows.push(tr);
    }

    #[allow(dead_code)] // the views use it
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table, captioned; `None` rows: a row saying there is nothing.
    pub fn html(&self, caption: &str) -> String {
        let mut out = format!(
            "<div class=\"scroll\"><table>\n<caption>{}</caption>\n<thead><tr>",
            escape(caption)
        );
        for (i, h) in self.head.iter().enumerate() {
            let class = if self.numeric.contains(&i) {
                " class=\"num\""
            } else {
                ""
            };
            out.push_str(&format!("<th scope=\"col\"{class}>{}</th>", escape(h)));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for r in &self.rows {
            out.push_str(r);
        }
        if self.rows.is_empty() {
            out.push_str(&format!(
                "<tr><td colspan=\"{}\" class=\"muted\">—</td></tr>\n",
                self.head.len().max(1)
            ));
        }
        out.push_str("</tbody></table></div>\n");
        out
    }
}
