//! Images a runner attaches to a session (the browser tool's screenshots): what an
//! upload may be, and the one check of a PNG's header that both the runner (before
//! it uploads) and the Worker (before it stores) make.
//!
//! The Worker trusts nothing a runner sends, because what a runner sends comes out
//! of the sandbox: a browser's screenshot is pixels an attacker's page chose. The
//! check reads only the fixed-size header (signature and `IHDR`), so it costs the
//! same whatever the upload holds; the size cap bounds the rest.

/// The largest image a runner may upload, in bytes.
pub const MAX_ARTIFACT_BYTES: usize = 8 * 1024 * 1024;

/// The largest width or height an uploaded image may claim, in pixels.
pub const MAX_ARTIFACT_SIDE: u32 = 8192;

/// The largest pixel count an uploaded image may claim (a 4K screen, twice over).
pub const MAX_ARTIFACT_PIXELS: u64 = 2 * 3840 * 2160;

/// The only media type stored and served.
pub const PNG_MEDIA_TYPE: &str = "image/png";

/// `POST /api/sessions/{id}/artifacts` answers this (201).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArtifactCreated {
    /// The artifact's id (a UUID), served at `GET /api/sessions/{id}/artifacts/{artifact}`.
    pub artifact: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

/// Why bytes are not an image the platform stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PngRefusal {
    /// Empty, or larger than [`MAX_ARTIFACT_BYTES`].
    Size,
    /// No PNG signature, or no `IHDR` chunk first.
    NotPng,
    /// A width or height of 0, above [`MAX_ARTIFACT_SIDE`], or too many pixels.
    Dimensions,
}

impl PngRefusal {
    pub fn message(self) -> &'static str {
        match self {
            PngRefusal::Size => "the image is empty or larger than 8 MiB",
            PngRefusal::NotPng => "the body is not a PNG image",
            PngRefusal::Dimensions => {
                "the image's dimensions are zero or larger than 8192 pixels a side (or 16.6 megapixels)"
            }
        }
    }
}

const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// Reads the width and height of a PNG from its header, refusing anything that is
/// not a PNG of a size and shape the platform keeps.
pub fn png_dimensions(bytes: &[u8]) -> Result<(u32, u32), PngRefusal> {
    if bytes.is_empty() || bytes.len() > MAX_ARTIFACT_BYTES {
        return Err(PngRefusal::Size);
    }
    // Signature, then the first chunk: length 13, type IHDR, width, height.
    if bytes.len() < 33 || bytes[..8] != SIGNATURE {
        return Err(PngRefusal::NotPng);
    }
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if be(8) != 13 || &bytes[12..16] != b"IHDR" {
        return Err(PngRefusal::NotPng);
    }
    let (width, height) = (be(16), be(20));
    let pixels = u64::from(width) * u64::from(height);
    if width == 0
        || height == 0
        || width > MAX_ARTIFACT_SIDE
        || height > MAX_ARTIFACT_SIDE
        || pixels > MAX_ARTIFACT_PIXELS
    {
        return Err(PngRefusal::Dimensions);
    }
    Ok((width, height))
}

/// Whether `id` has the shape of an artifact id (a UUID as the Worker writes it:
/// lowercase hex with hyphens), so nothing else is ever made into a storage key.
pub fn is_artifact_id(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(at, c)| match at {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header for a `width` x `height` PNG (what the check reads, nothing more).
    fn header(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = SIGNATURE.to_vec();
        bytes.extend(13u32.to_be_bytes());
        bytes.extend(b"IHDR");
        bytes.extend(width.to_be_bytes());
        bytes.extend(height.to_be_bytes());
        bytes.extend([8, 6, 0, 0, 0, 0, 0, 0, 0]);
        bytes
    }

    #[test]
    fn a_png_header_gives_its_dimensions() {
        assert_eq!(png_dimensions(&header(1280, 800)), Ok((1280, 800)));
    }

    #[test]
    fn anything_but_a_png_of_a_sane_size_is_refused() {
        assert_eq!(png_dimensions(b""), Err(PngRefusal::Size));
        assert_eq!(
            png_dimensions(b"GIF89a......................................"),
            Err(PngRefusal::NotPng)
        );
        assert_eq!(png_dimensions(&header(1, 1)[..20]), Err(PngRefusal::NotPng));
        let mut wrong_chunk = header(10, 10);
        wrong_chunk[12..16].copy_from_slice(b"tEXt");
        assert_eq!(png_dimensions(&wrong_chunk), Err(PngRefusal::NotPng));
        assert_eq!(png_dimensions(&header(0, 10)), Err(PngRefusal::Dimensions));
        assert_eq!(
            png_dimensions(&header(8193, 10)),
            Err(PngRefusal::Dimensions)
        );
        assert_eq!(
            png_dimensions(&header(8000, 8000)),
            Err(PngRefusal::Dimensions)
        );
        let mut huge = header(10, 10);
        huge.resize(MAX_ARTIFACT_BYTES + 1, 0);
        assert_eq!(png_dimensions(&huge), Err(PngRefusal::Size));
    }

    #[test]
    fn only_lowercase_uuids_are_artifact_ids() {
        assert!(is_artifact_id("0f8e2a4c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"));
        for id in [
            "",
            "../../other-session/artifacts/x",
            "0F8E2A4C-1B2D-4E5F-8A9B-0C1D2E3F4A5B",
            "0f8e2a4c1b2d4e5f8a9b0c1d2e3f4a5b",
            "0f8e2a4c-1b2d-4e5f-8a9b-0c1d2e3f4a5/",
        ] {
            assert!(!is_artifact_id(id), "{id}");
        }
    }
}
