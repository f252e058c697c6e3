//! A call's recording over HTTP: the WAV whole, or one byte range of it (players seek with
//! `Range`, and a long call is hundreds of megabytes). No route here: recordings are personal
//! data, so the operator console mounts [`serve_recording`] behind its own login.
//!
//! One range per request is enough for players; a request for several gets the whole file,
//! which HTTP allows. The file is streamed in pieces, never read whole into memory.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{AppError, AppState};

/// Bytes read from disk per piece of the body.
const PIECE: usize = 64 * 1024;

/// The WAV of `call_sid`'s recording: 200 with the whole file, 206 with the one range asked
/// for (`Range: bytes=a-b`, `a-`, `-n`), 416 for a range past its end, 404 when the call has
/// no recording (none was made, the retention sweep deleted it, or it is on another
/// appliance's disk).
pub async fn serve_recording(state: &AppState, call_sid: &str, headers: &HeaderMap) -> Response {
    match respond(state, call_sid, headers).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn respond(
    state: &AppState,
    call_sid: &str,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let missing = || AppError::NotFound(format!("a recording of call {call_sid}"));
    if !super::v1::is_call_sid(call_sid) {
        return Err(missing());
    }
    let store = state.store.as_ref().ok_or(AppError::NoStore)?;
    let rec = store.recording(call_sid).await?.ok_or_else(missing)?;
    let mut file = match tokio::fs::File::open(&rec.path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Err(e) => return Err(io_error(call_sid, e)),
    };
    let len = file
        .metadata()
        .await
        .map_err(|e| io_error(call_sid, e))?
        .len();
    // `If-Range` names a version we cannot compare (we send no validators): the whole file.
    let range = match (headers.get(header::RANGE), headers.get(header::IF_RANGE)) {
        (Some(r), None) => parse_range(r.to_str().unwrap_or_default(), len),
        _ => Ok(None),
    };
    let mut response = match range {
        Err(Unsatisfiable) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            set(&mut r, header::CONTENT_RANGE, format!("bytes */{len}"));
            return Ok(r);
        }
        Ok(None) => {
            let mut r = Response::new(stream(file, len));
            set(&mut r, header::CONTENT_LENGTH, len.to_string());
            r
        }
        Ok(Some((start, end))) => {
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(|e| io_error(call_sid, e))?;
            let n = end - start + 1;
            let mut r = Response::new(stream(file, n));
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            set(&mut r, header::CONTENT_LENGTH, n.to_string());
            set(
                &mut r,
                header::CONTENT_RANGE,
                format!("bytes {start}-{end}/{len}"),
            );
            r
        }
    };
    set(&mut response, header::CONTENT_TYPE, "audio/wav".into());
    set(&mut response, header::ACCEPT_RANGES, "bytes".into());
    // Personal data: no cache on the way keeps a copy.
    set(&mut response, header::CACHE_CONTROL, "no-store".into());
    set(
        &mut response,
        header::CONTENT_DISPOSITION,
        format!("inline; filename=\"{call_sid}.wav\""),
    );
    Ok(response)
}

fn set(response: &mut Response, name: header::HeaderName, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(name, v);
    }
}

fn io_error(call_sid: &str, e: std::io::Error) -> AppError {
    tracing::error!(call_sid, error = %e, "cannot read a recording");
    AppError::Internal("cannot read the recording (see the server log)".into())
}

/// `n` bytes of `file` from where it stands, in pieces.
fn stream(file: tokio::fs::File, n: u64) -> Body {
    let pieces = futures::stream::unfold(file.take(n), |mut file| async move {
        let mut buf = vec![0u8; PIECE];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(read) => {
                buf.truncate(read);
                Some((Ok(Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file.into_inner().take(0))),
        }
    });
    Body::from_stream(pieces)
}

/// A range that starts past the end of the file.
#[derive(Debug, PartialEq, Eq)]
struct Unsatisfiable;

/// The one range of a `Range` header, as inclusive offsets into `len` bytes. `Ok(None)`: serve
/// the whole file (no byte range, several, or one that does not parse, which HTTP says to
/// ignore).
fn parse_range(value: &str, len: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let value = value.trim();
    let Some(spec) = value
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .map(|_| value[6..].trim())
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let number = |s: &str| s.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), number(first), number(last)) {
        // The last `n` bytes.
        (true, None, Some(n)) if n > 0 && len > 0 => Ok(Some((len.saturating_sub(n), len - 1))),
        (true, None, Some(_)) => Err(Unsatisfiable),
        (false, Some(start), _) if start >= len => Err(Unsatisfiable),
        (false, Some(start), None) if last.trim().is_empty() => Ok(Some((start, len - 1))),
        (false, Some(start), Some(end)) if start <= end => Ok(Some((start, end.min(len - 1)))),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_range, Unsatisfiable};

    #[test]
    fn one_byte_range_is_read_every_way_http_writes_it() {
        let r = |v: &str| parse_range(v, 1000);
        assert_eq!(r("bytes=0-99"), Ok(Some((0, 99))));
        assert_eq!(r("bytes=100-"), Ok(Some((100, 999))));
        assert_eq!(r("bytes=-100"), Ok(Some((900, 999))));
        assert_eq!(r("bytes=-5000"), Ok(Some((0, 999))));
        assert_eq!(
            r("bytes=990-5000"),
            Ok(Some((990, 999))),
            "clamped to the end"
        );
        assert_eq!(r("Bytes= 5 - 9"), Ok(Some((5, 9))));
        assert_eq!(r("bytes=999-999"), Ok(Some((999, 999))));
    }

    #[test]
    fn past_the_end_is_unsatisfiable_and_nonsense_is_ignored() {
        let r = |v: &str| parse_range(v, 1000);
        assert_eq!(r("bytes=1000-"), Err(Unsatisfiable));
        assert_eq!(r("bytes=1000-1001"), Err(Unsatisfiable));
        assert_eq!(r("bytes=-0"), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=-10", 0), Err(Unsatisfiable));
        for whole in [
            "",
            "items=0-1",
            "bytes=0-1,5-9",
            "bytes=9-5",
            "bytes=x-",
            "bytes=-",
            "bytes=5",
        ] {
            assert_eq!(r(whole), Ok(None), "{whole}");
        }
    }
}
