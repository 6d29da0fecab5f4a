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
}
