//! 干部任免审批表 forms (`.lrmx`): XML read safely into their items.

use super::malformed;
use trainhub_model::Rejection;

/// An LRMX form's items: the text of each child element of the root `Person`, by element
/// name (nested elements, such as the family table, are not items). The XML is read safely:
/// no DTD, so no external or custom entities; only the predefined and character references.
/// The declared encoding (UTF-8, GB2312/GBK, UTF-16 with a BOM) is honoured.
pub fn parse_lrmx(bytes: &[u8]) -> Result<std::collections::BTreeMap<String, String>, Rejection> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut items = std::collections::BTreeMap::new();
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut item: Option<(String, String)> = None;
    let bad = |message: String| malformed("", message);
    loop {
        let at = reader.buffer_position();
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            bad(format!(
                "not well-formed XML (byte {at}): {}",
                xml_error(&e)
            ))
        })?;
        let name_of = |e: &quick_xml::events::BytesStart<'_>| {
            reader
                .decoder()
                .decode(e.local_name().as_ref())
                .map(|n| n.into_owned())
                .map_err(|_| bad("an element name is not readable".into()))
        };
        // Text of the current item, in pieces: text, CDATA, references.
        let mut piece: Option<String> = None;
        match event {
            Event::DocType(_) => {
                return Err(bad(
                    "a DOCTYPE is not accepted in an LRMX form (no DTDs, no entities)".into(),
                ))
            }
            Event::Start(ref e) | Event::Empty(ref e) if depth == 0 => {
                let name = name_of(e)?;
                if name != "Person" {
                    return Err(bad(format!("the root element is `{name}`, not `Person`")));
                }
                if matches!(event, Event::Empty(_)) {
                    return Err(bad("the `Person` element is empty".into()));
                }
                depth = 1;
            }
            Event::Start(e) => {
                if depth == 1 {
                    item = Some((name_of(&e)?, String::new()));
                }
                depth += 1;
            }
            Event::Empty(e) if depth == 1 => {
                items.entry(name_of(&e)?).or_insert_with(String::new);
            }
            Event::Text(t) if depth == 2 => {
                let text = t
                    .xml_content()
                    .map_err(|_| bad("text not in the declared encoding".into()))?;
                piece = Some(text.into_owned());
            }
            Event::CData(c) if depth == 2 => {
                let text = c
                    .decode()
                    .map_err(|_| bad("CDATA not in the declared encoding".into()))?;
                piece = Some(text.into_owned());
            }
            Event::GeneralRef(r) if depth == 2 => {
                piece = Some(match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = r.decode().map_err(|_| bad("unreadable reference".into()))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| {
                                bad(format!(
                                    "entity `&{name};` is not one of XML's own (no custom entities)"
                                ))
                            })?
                            .to_owned()
                    }
                    Err(_) => return Err(bad("a character reference is not a character".into())),
                });
            }
            Event::End(_) => {
                if depth == 2 {
                    if let Some((name, value)) = item.take() {
                        items.insert(name, value.trim().to_owned());
                    }
                }
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(items);
                }
            }
            Event::Eof => return Err(bad("the document ends inside `Person`".into())),
            _ => {}
        }
        if let (Some(piece), Some((_, value))) = (piece, &mut item) {
            value.push_str(&piece);
        }
        buf.clear();
    }
}

/// A parser error without document text in it.
fn xml_error(e: &quick_xml::Error) -> String {
    match e {
        quick_xml::Error::Syntax(s) => s.to_string(),
        quick_xml::Error::IllFormed(i) => i.to_string(),
        quick_xml::Error::Encoding(_) => "not in the declared encoding".into(),
        quick_xml::Error::Escape(_) => "a bad escape".into(),
        _ => "unreadable".into(),
    }
}
