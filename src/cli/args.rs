//! Argument parsers shared by several commands, so a bad value gets the same helpful error
//! wherever it is given.

use lux::ids::CompanyId;

/// A company id (`--company`, `COMPANY_ID`): a UUID, with an error that says where to find one.
pub fn company_id(text: &str) -> Result<CompanyId, String> {
    text.parse().map_err(|_| {
        format!(
            "{text:?} is not a company id: expected a UUID such as \
             0193a0b4-7c1e-7d2a-9f00-5b1c9b2f6a11 (`lux company list` shows your companies' ids)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_company_id_that_is_not_a_uuid_says_where_to_find_one() {
        let error = company_id("acme").unwrap_err();
        assert!(error.contains("lux company list"), "{error}");
        assert!(company_id(" 0193a0b4-7c1e-7d2a-9f00-5b1c9b2f6a11 ").is_ok());
    }

    /// Every command that takes a company id reads it into the type its field has: clap
    /// checks that only when the command runs, so each one is parsed here.
    #[test]
    fn every_company_argument_parses_into_its_field() {
        use clap::Parser as _;
        let id = "0193a0b4-7c1e-7d2a-9f00-5b1c9b2f6a11";
        let commands: [&[&str]; 10] = [
            &[
                "report",
                "roas",
                "--company",
                id,
                "--from",
                "2025-01-01",
                "--to",
                "2025-01-31",
            ],
            &["import", "stripe", "events.json", "--company", id],
            &["jobs", "run", "attribution", "--company", id],
            &["company", "keys", id],
            &["company", "attribution", id],
            &["company", "rollups", id],
            &[
                "company",
                "reader-login",
                id,
                "--login",
                "metabase",
                "--password",
                "p",
            ],
            &[
                "company",
                "set-secret",
                id,
                "--provider",
                "stripe",
                "--secret",
                "s",
            ],
            &["privacy", "suppress", id, "--company"],
            &["jobs", "run", "rollups"],
        ];
        for args in commands {
            let argv = std::iter::once("lux").chain(args.iter().copied());
            if let Err(error) = super::super::Cli::try_parse_from(argv) {
                panic!("{args:?}: {error}");
            }
        }
    }
}
