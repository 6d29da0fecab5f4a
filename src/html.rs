//! Text for HTML and SVG written by hand (the dashboards' charts, the alert emails): one
//! escaping function, so a campaign or creative name from imported data stays text wherever
//! it is shown. Templates (askama) escape on their own; this is for markup built in code.
//!
//! A toolkit module: it imports nothing of the crate, so any domain may use it.

/// `&`, `<`, `>`, `"` and `'` escaped: safe in element text and in quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_are_escaped() {
        assert_eq!(
            escape("<b>\"Tom\" & 'Jerry'</b>"),
            "&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;"
        );
        assert_eq!(escape("Email & SMS"), "Email &amp; SMS");
    }
}
