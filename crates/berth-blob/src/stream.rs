use bytes::Bytes;
use futures_util::stream::BoxStream;

/// A request body as the store consumes it. Errors are the client's
/// (disconnects, malformed chunked encoding), reported as `StoreError::Body`.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;
