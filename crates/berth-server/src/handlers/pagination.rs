//! `n` and `last` for `_catalog` and `tags/list`, and the `Link` header
//! that points at the next page.

use super::Ctx;
use crate::error::{ApiError, ApiResult};
use berth_oci::ErrorCode;
use http::HeaderValue;

pub struct Page {
    /// Entries to return; the store is asked for one more to learn whether
    /// another page follows.
    pub n: usize,
    pub last: Option<String>,
}

impl Page {
    /// `n` is clamped to `max`; a missing `n` means `max`.
    pub fn from_query(ctx: &Ctx<'_>, max: usize) -> ApiResult<Page> {
        // An empty `n` is no `n`, as in Distribution (`if n != ""`).
        let n = match ctx.query_param("n").filter(|s| !s.is_empty()) {
            None => max,
            Some(s) => s.parse::<usize>().map_err(|_| {
                ApiError::new(ErrorCode::PaginationNumberInvalid)
                    .message(format!("n must be a non-negative integer, not {s:?}"))
            })?,
        };
        Ok(Page { n: n.min(max), last: ctx.query_param("last").filter(|l| !l.is_empty()) })
    }

    /// Trims the extra entry and builds the `Link` to the next page, if any.
    pub fn finish(&self, ctx: &Ctx<'_>, path: &str, mut items: Vec<String>) -> (Vec<String>, Option<HeaderValue>) {
        if items.len() <= self.n {
            return (items, None);
        }
        items.truncate(self.n);
        let link = items.last().map(|last| {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("last", last)
                .append_pair("n", &self.n.to_string())
                .finish();
            let url = crate::urls::location(&ctx.app.settings, &ctx.parts.headers, &format!("{path}?{query}"));
            super::header_value(&format!("<{url}>; rel=\"next\""))
        });
        (items, link)
    }
}
