//! Sensor Data Records (full and compact sensor records) and sensor readings.
//!
//! The parser is bounds-checked and never panics (ipmi-rs-core 0.6's
//! `Record::parse` panics on some malformed records; see the README). Sensor type
//! and unit names come from ipmi-rs-core's tables.

use ipmi_rs_core::storage::sdr::{SensorType, Unit};
use serde_json::{Map, Value};

/// A sensor found in the SDR repository.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SensorRecord {
    /// Record ID.
    pub record_id: u16,
    /// Owner (slave address).
    pub owner: u8,
    /// LUN.
    pub lun: u8,
    /// Sensor number.
    pub number: u8,
    /// Entity ID.
    pub entity_id: u8,
    /// Entity instance.
    pub entity_instance: u8,
    /// Sensor type code.
    pub sensor_type: u8,
    /// Event/reading type code (0x01 = threshold).
    pub event_type: u8,
    /// ID string.
    pub name: String,
    /// Conversion to a value, for full records with an analog reading.
    pub analog: Option<Analog>,
}

/// How a full sensor record converts raw readings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Analog {
    format: u8,
    base_unit: u8,
    percentage: bool,
    linearization: u8,
    m: i16,
    b: i16,
    b_exp: i8,
    r_exp: i8,
    /// Raw thresholds: unr, uc, unc, lnr, lc, lnc.
    thresholds: [u8; 6],
    readable_thresholds: u8,
}

fn signed(v: u16, bits: u32) -> i16 {
    let shift = 16 - bits;
    ((v << shift) as i16) >> shift
}

fn id_string(type_len: u8, bytes: &[u8]) -> String {
    let len = (type_len & 0x1F) as usize;
    let bytes = &bytes[..len.min(bytes.len())];
    match type_len >> 6 {
        // 6-bit packed ASCII
        0b10 => {
            let mut out = String::new();
            let mut acc: u32 = 0;
            let mut nbits = 0;
            for b in bytes {
                acc |= (*b as u32) << nbits;
                nbits += 8;
                while nbits >= 6 {
                    out.push(char::from(0x20 + (acc & 0x3F) as u8));
                    acc >>= 6;
                    nbits -= 6;
                }
            }
            out.trim_end().to_owned()
        }
        // BCD plus
        0b01 => bytes
            .iter()
            .flat_map(|b| [b & 0x0F, b >> 4])
            .map(|n| match n {
                0..=9 => char::from(b'0' + n),
                0xA => ' ',
                0xB => '-',
                0xC => '.',
                0xD => ':',
                0xE => ',',
                _ => '_',
            })
            .collect(),
        // 8-bit ASCII + Latin 1, or unicode (shown as Latin 1)
        _ => bytes
            .iter()
            .take_while(|b| **b != 0)
            .map(|b| char::from(*b))
            .collect(),
    }
}

/// Parse one SDR (header included). `Ok(None)` for records that are not sensors.
pub(crate) fn parse_record(rec: &[u8]) -> Result<Option<SensorRecord>, String> {
    if rec.len() < 5 {
        return Err(format!(
            "SDR of {} bytes is shorter than its header",
            rec.len()
        ));
    }
    let record_id = u16::from_le_bytes([rec[0], rec[1]]);
    let rtype = rec[3];
    let body = &rec[5..];
    if body.len() < rec[4] as usize {
        return Err(format!(
            "SDR {record_id:#06x}: {} body bytes, header says {}",
            body.len(),
            rec[4]
        ));
    }
    let body = &body[..rec[4] as usize];
    let (min, id_at) = match rtype {
        0x01 => (43, 42),
        0x02 => (27, 26),
        _ => return Ok(None),
    };
    if body.len() < min {
        return Err(format!(
            "SDR {record_id:#06x} (type {rtype:#04x}): {} bytes, need {min}",
            body.len()
        ));
    }
    let analog = if rtype == 0x01 && body[15] >> 6 != 0b11 {
        let m = signed(body[19] as u16 | ((body[20] as u16 & 0xC0) << 2), 10);
        let b = signed(body[21] as u16 | ((body[22] as u16 & 0xC0) << 2), 10);
        Some(Analog {
            format: body[15] >> 6,
            base_unit: body[16],
            percentage: body[15] & 1 == 1,
            linearization: body[18] & 0x7F,
            m,
            b,
            r_exp: signed((body[24] >> 4) as u16, 4) as i8,
            b_exp: signed((body[24] & 0x0F) as u16, 4) as i8,
            thresholds: [body[31], body[32], body[33], body[34], body[35], body[36]],
            readable_thresholds: body[13] & 0x3F,
        })
    } else {
        None
    };
    Ok(Some(SensorRecord {
        record_id,
        owner: body[0],
        lun: body[1] & 0x03,
        number: body[2],
        entity_id: body[3],
        entity_instance: body[4],
        sensor_type: body[7],
        event_type: body[8],
        name: id_string(body[id_at], &body[id_at + 1..]),
        analog,
    }))
}

impl Analog {
    /// Convert a raw reading (IPMI v2.0 36.3).
    pub fn convert(&self, raw: u8) -> Option<f64> {
        let x = match self.format {
            0b00 => raw as f64,
            0b01 => {
                let v = raw as i8;
                (if v < 0 { v + 1 } else { v }) as f64
            }
            0b10 => (raw as i8) as f64,
            _ => return None,
        };
        let y = (self.m as f64 * x + self.b as f64 * 10f64.powi(self.b_exp as i32))
            * 10f64.powi(self.r_exp as i32);
        let v = match self.linearization {
            0 => y,
            1 => y.ln(),
            2 => y.log10(),
            3 => y.log2(),
            4 => y.exp(),
            5 => 10f64.powf(y),
            6 => 2f64.powf(y),
            7 => 1.0 / y,
            8 => y * y,
            9 => y * y * y,
            10 => y.sqrt(),
            11 => y.cbrt(),
            _ => return None,
        };
        v.is_finite().then_some(v)
    }

    fn unit(&self) -> String {
        if self.percentage {
            return "percent".into();
        }
        let u = Unit::from(self.base_unit);
        // "1.00 Degrees Celsius" -> "Degrees Celsius"
        let s = u.display(false, 2.0f32);
        s.split_once(' ').map(|(_, n)| n.to_owned()).unwrap_or(s)
    }
}

const THRESHOLD_NAMES: [(&str, usize, u8); 6] = [
    // (name, index into Analog::thresholds, bit in reading byte 3 / readable mask)
    ("Lower Non-Critical", 5, 0x01),
    ("Lower Critical", 4, 0x02),
    ("Lower Non-Recoverable", 3, 0x04),
    ("Upper Non-Critical", 2, 0x08),
    ("Upper Critical", 1, 0x10),
    ("Upper Non-Recoverable", 0, 0x20),
];

/// Ironic's per-sensor dictionary (after `ipmitool sdr -v`), from the record and
/// the Get Sensor Reading response data (after the completion code).
pub(crate) fn sensor_entry(rec: &SensorRecord, reading: Option<&[u8]>) -> Map<String, Value> {
    let mut m = Map::new();
    let kind = if rec.event_type == 0x01 {
        "Threshold"
    } else {
        "Discrete"
    };
    m.insert(
        "Sensor ID".into(),
        format!("{} ({:#x})", rec.name, rec.number).into(),
    );
    m.insert(
        "Entity ID".into(),
        format!("{}.{}", rec.entity_id, rec.entity_instance & 0x7F).into(),
    );
    m.insert(
        format!("Sensor Type ({kind})"),
        format!(
            "{} ({:#04x})",
            sensor_type_name(rec.sensor_type),
            rec.sensor_type
        )
        .into(),
    );
    let (text, status) = match reading {
        Some(r) if r.len() >= 2 && r[1] & 0x20 == 0 && r[1] & 0x40 != 0 => {
            let value = rec
                .analog
                .as_ref()
                .and_then(|a| Some((a, a.convert(r[0])?)));
            let text = match value {
                Some((a, v)) => format!("{} (+/- 0) {}", trim_float(v), a.unit()),
                None => match (r.get(2), r.get(3)) {
                    (Some(a), Some(b)) => format!("{:#06x}", u16::from_le_bytes([*a, *b])),
                    (Some(a), None) => format!("{a:#06x}"),
                    _ => format!("{:#04x}", r[0]),
                },
            };
            let status = if rec.event_type == 0x01 {
                let bits = r.get(2).copied().unwrap_or(0);
                THRESHOLD_NAMES
                    .iter()
                    .rev()
                    .find(|(_, _, bit)| bits & bit != 0)
                    .map(|(n, _, _)| *n)
                    .unwrap_or("ok")
            } else {
                "ok"
            };
            (text, status)
        }
        _ => ("No Reading".to_owned(), "Not Available"),
    };
    m.insert("Sensor Reading".into(), text.into());
    m.insert("Status".into(), status.into());
    if let Some(a) = &rec.analog {
        for (name, idx, bit) in THRESHOLD_NAMES {
            if a.readable_thresholds & bit != 0
                && let Some(v) = a.convert(a.thresholds[idx])
            {
                m.insert(name.into(), trim_float(v).into());
            }
        }
    }
    m
}

/// Ironic groups sensors by type name.
pub(crate) fn sensor_type_name(code: u8) -> String {
    match SensorType::from(code) {
        SensorType::Reserved(c) => format!("Reserved {c:#04x}"),
        SensorType::OemReserved(c) => format!("OEM {c:#04x}"),
        t => t.to_string(),
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The full record the ipmi_sim test BMC carries (CPU Temp, degrees C).
    pub(crate) const CPU_TEMP: &[u8] = &[
        0x01, 0x00, 0x51, 0x01, 0x33, 0x20, 0x00, 0x01, 0x03, 0x01, 0x67, 0x68, 0x01, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x07, 0x28, 0x50, 0x0a, 0xff, 0x00, 0x64, 0x5a, 0x50, 0x00, 0x05, 0x0a, 0x02, 0x02, 0x00,
        0x00, 0x00, 0xc8, 0x43, 0x50, 0x55, 0x20, 0x54, 0x65, 0x6d, 0x70,
    ];

    #[test]
    fn full_record_parses_and_converts() {
        let r = parse_record(CPU_TEMP).unwrap().unwrap();
        assert_eq!(r.name, "CPU Temp");
        assert_eq!((r.number, r.sensor_type, r.event_type), (1, 1, 1));
        let e = sensor_entry(&r, Some(&[45, 0xC0, 0x00]));
        assert_eq!(e["Sensor Reading"], "45 (+/- 0) Degrees Celsius");
        assert_eq!(e["Status"], "ok");
        assert_eq!(e["Sensor Type (Threshold)"], "Temperature (0x01)");
        assert_eq!(e["Upper Critical"], "90");
        let e = sensor_entry(&r, Some(&[95, 0xC0, 0x18]));
        assert_eq!(e["Status"], "Upper Critical");
        let e = sensor_entry(&r, Some(&[0, 0xE0]));
        assert_eq!(e["Sensor Reading"], "No Reading");
    }

    #[test]
    fn conversion_with_exponents_and_signs() {
        let a = Analog {
            format: 0b10,
            base_unit: 4,
            percentage: false,
            linearization: 0,
            m: 5,
            b: -3,
            b_exp: 1,
            r_exp: -2,
            thresholds: [0; 6],
            readable_thresholds: 0,
        };
        // (5 * -2 + -3 * 10) * 0.01 = -0.4
        assert!((a.convert(0xFE).unwrap() + 0.4).abs() < 1e-9);
        assert_eq!(signed(0x3FF, 10), -1);
        assert_eq!(signed(0x1FF, 10), 511);
    }

    #[test]
    fn six_bit_and_bcd_id_strings() {
        // "ABC" in 6-bit packed: A=0x21, B=0x22, C=0x23
        let packed = (0x21u32) | (0x22 << 6) | (0x23 << 12);
        let b = packed.to_le_bytes();
        assert_eq!(id_string(0x80 | 3, &b[..3]), "ABC");
        assert_eq!(id_string(0x40 | 1, &[0x21]), "12");
    }

    proptest! {
        #[test]
        fn parse_record_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..90)) {
            if let Ok(Some(r)) = parse_record(&bytes) {
                let _ = sensor_entry(&r, Some(&bytes));
                let _ = sensor_entry(&r, None);
            }
        }

        #[test]
        fn sensor_records_with_valid_headers_never_panic(t in 1u8..3, body in proptest::collection::vec(any::<u8>(), 0..70)) {
            let mut rec = vec![1, 0, 0x51, t, body.len() as u8];
            rec.extend_from_slice(&body);
            if let Ok(Some(r)) = parse_record(&rec) {
                for raw in [0u8, 1, 127, 128, 255] {
                    let _ = sensor_entry(&r, Some(&[raw, 0xC0, raw, raw]));
                }
            }
        }
    }
}
