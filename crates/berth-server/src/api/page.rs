//! Keyset pagination for admin listings: `?limit=&after=`, the next page
//! announced in a `Link: <…>; rel="next"` header (as the registry API's
//! catalog does), so listings stay fast however far a client pages.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::HeaderValue;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Most items to return (1–1000, default 100).
    pub limit: Option<usize>,
    /// Return items after this one (the last name or id of the previous page).
    pub after: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }
}

/// A page of `items` as a JSON array; when it is full, a `Link` header
/// names the next page, continuing after `last_key` of the last item.
pub fn page<T: Serialize>(items: Vec<T>, limit: usize, path: &str, last_key: impl Fn(&T) -> String) -> Response {
    let next = (items.len() == limit).then(|| items.last().map(&last_key)).flatten();
    let mut resp = Json(items).into_response();
    if let Some(after) = next {
        let after: String = form_urlencoded::byte_serialize(after.as_bytes()).collect();
        let link = format!("</api/v1{path}?limit={limit}&after={after}>; rel=\"next\"");
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert(http::header::LINK, v);
        }
    }
    resp
}
