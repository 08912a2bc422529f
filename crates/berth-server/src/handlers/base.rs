//! `GET /v2/`: the API version check every client starts with.

use super::json_response;
use axum::response::Response;
use http::StatusCode;

pub fn get() -> Response {
    json_response(StatusCode::OK, "application/json; charset=utf-8", &serde_json::json!({}))
}
