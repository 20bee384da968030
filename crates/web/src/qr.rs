//! QR codes of the otpauth URI: inline SVG for the page, PNG for saving (the first
//! manual has people save the QR as an image and import it into a browser extension).

use qrcode::render::svg;
use qrcode::{Color, EcLevel, QrCode};

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("cannot encode QR code: {0}")]
    Encode(String),
}

/// Modules of white border on each side, as the QR standard asks.
const QUIET_ZONE: usize = 4;
/// The PNG is at least this many pixels wide, so that a saved screenshot scans.
const MIN_PNG_SIZE: usize = 300;

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

/// A greyscale PNG: whole pixels per module (no blurred edges), quiet zone included.
pub fn png(data: &str) -> Result<Vec<u8>, QrError> {
    let code = code(data)?;
    let modules = code.width();
    let colors = code.to_colors();
    let span = modules + 2 * QUIET_ZONE;
    let scale = MIN_PNG_SIZE.div_ceil(span);
    let size = span * scale;
    let mut pixels = vec![u8::MAX; size * size];
    for (i, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (x0, y0) = (
            (i % modules + QUIET_ZONE) * scale,
            (i / modules + QUIET_ZONE) * scale,
        );
        for row in pixels.chunks_mut(size).skip(y0).take(scale) {
            row[x0..x0 + scale].fill(0);
        }
    }
    let side = u32::try_from(size).map_err(|e| QrError::Encode(e.to_string()))?;
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut w| w.write_image_data(&pixels))
        .map_err(|e| QrError::Encode(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "otpauth://totp/tweestap:an%40x.be?secret=JBSWY3DPEHPK3PXP&issuer=tweestap";

    #[test]
    fn renders_svg() {
        let s = svg(URI).unwrap();
        assert!(s.starts_with("<svg") && s.contains("</svg>"));
    }

    /// Decodes the PNG again and compares every module with the code's own matrix,
    /// quiet zone included.
    #[test]
    fn png_holds_the_code_module_for_module() {
        let bytes = png(URI).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(info.width, info.height);
        let size = info.width as usize;
        assert!(size >= MIN_PNG_SIZE);

        let code = code(URI).unwrap();
        let modules = code.width();
        let span = modules + 2 * QUIET_ZONE;
        assert_eq!(size % span, 0);
        let scale = size / span;
        let colors = code.to_colors();
        for my in 0..span {
            for mx in 0..span {
                let dark = (QUIET_ZONE..QUIET_ZONE + modules).contains(&mx)
                    && (QUIET_ZONE..QUIET_ZONE + modules).contains(&my)
                    && colors[(my - QUIET_ZONE) * modules + mx - QUIET_ZONE] == Color::Dark;
                // Every pixel of the module, not just one.
                for y in my * scale..(my + 1) * scale {
                    for x in mx * scale..(mx + 1) * scale {
                        assert_eq!(
                            pixels[y * size + x],
                            if dark { 0 } else { 255 },
                            "({x},{y})"
                        );
                    }
                }
            }
        }
    }
}
