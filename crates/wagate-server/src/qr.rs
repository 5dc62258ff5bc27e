//! QR codes rendered for people: PNG and SVG.

use std::io::Cursor;

use qrcode::render::svg;
use qrcode::QrCode;

/// Why a code could not be drawn.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QrError {
    #[error("cannot encode the code as a QR code: {0}")]
    Encode(#[from] qrcode::types::QrError),
    #[error("cannot write the PNG: {0}")]
    Png(#[from] image::ImageError),
}

pub(crate) fn png(code: &str) -> Result<Vec<u8>, QrError> {
    let image = QrCode::new(code.as_bytes())?.render::<image::Luma<u8>>().min_dimensions(264, 264).build();
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)?;
    Ok(bytes)
}

pub(crate) fn svg(code: &str) -> Result<String, QrError> {
    Ok(QrCode::new(code.as_bytes())?.render::<svg::Color<'_>>().min_dimensions(264, 264).build())
}
