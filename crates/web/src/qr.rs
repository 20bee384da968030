//! QR codes of the otpauth URI: inline SVG for the page, PNG for saving (the first
//! manual has people save the QR as an image and import it into a browser extension).

use image::{ImageEncoder, Luma};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("cannot encode QR code: {0}")]
    Encode(String),
}

fn code(data: &str) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|e| QrError::Encode(e.to_string()))
}

pub fn svg(data: &str) -> Result<String, QrError> {
    let s = code(data)?
        .render::<svg::Color<'_>>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    // Inline SVG must not carry an XML declaration.
    Ok(match s.find("<svg") {
        Some(i) => s[i..].to_owned(),
        None => s,
    })
}

pub fn png(data: &str) -> Result<Vec<u8>, QrError> {
    let img = code(data)?
        .render::<Luma<u8>>()
        .min_dimensions(300, 300)
        .quiet_zone(true)
        .build();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::L8,
        )
        .map_err(|e| QrError::Encode(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_svg_and_png() {
        let uri = "otpauth://totp/tweestap:an%40x.be?secret=JBSWY3DPEHPK3PXP&issuer=tweestap";
        let s = super::svg(uri).unwrap();
        assert!(s.starts_with("<svg") && s.contains("</svg>"));
        let p = super::png(uri).unwrap();
        assert_eq!(&p[..8], b"\x89PNG\r\n\x1a\n");
    }
}
