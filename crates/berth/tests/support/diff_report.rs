//! The differential test's comparison table: the order of its fields and
//! its printing.

pub const FIELD_ORDER: &[&str] = &[
    "status",
    "code",
    "docker-content-digest",
    "api-version",
    "content-length",
    "content-type",
    "location",
    "range",
    "content-range",
    "docker-upload-uuid",
    "link",
    "body",
];

pub fn print_table(rows: &[[String; 5]]) {
    let clip = |s: &str, n: usize| {
        if s.chars().count() > n {
            format!("{}…", s.chars().take(n - 1).collect::<String>())
        } else {
            s.to_owned()
        }
    };
    let widths = [58, 21, 40, 40];
    for row in rows {
        let cells: Vec<String> = (0..4).map(|i| format!("{:<w$}", clip(&row[i], widths[i]), w = widths[i])).collect();
        println!("{} | {} | {} | {} | {}", cells[0], cells[1], cells[2], cells[3], row[4]);
    }
}
