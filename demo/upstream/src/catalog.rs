//! The demo product catalog and its cache validators.
//!
//! The list is deliberately chatty (24 products with prose descriptions) so
//! the JSON is well over 2 KiB: large enough for the compression filter to
//! bother with, while a single product stays under 1 KiB.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use serde::Serialize;

/// A fixed date so `Last-Modified` is stable across restarts and replicas.
pub(crate) const LAST_MODIFIED: &str = "Mon, 06 Jan 2025 09:00:00 GMT";

#[derive(Debug, Serialize)]
pub(crate) struct Product {
    pub id: u32,
    pub name: &'static str,
    pub description: &'static str,
    pub price_cents: u32,
    pub currency: &'static str,
    pub tags: &'static [&'static str],
}

const fn product(
    id: u32,
    name: &'static str,
    description: &'static str,
    price_cents: u32,
    tags: &'static [&'static str],
) -> Product {
    Product {
        id,
        name,
        description,
        price_cents,
        currency: "EUR",
        tags,
    }
}

// One product per line reads better as a table than rustfmt's layout.
#[rustfmt::skip]
static PRODUCTS: [Product; 24] = [
    product(1, "Portcullis Mug", "A stoneware mug with the portcullis logo. Holds enough coffee for one long incident review.", 1499, &["kitchen", "merch"]),
    product(2, "Gatehouse Hoodie", "Heavy cotton hoodie in castle grey. Warm enough for a cold data centre aisle.", 5900, &["apparel", "merch"]),
    product(3, "Drawbridge Sticker Pack", "Ten vinyl stickers of moats, towers and rate limits. Laptop-safe adhesive.", 699, &["stickers", "merch"]),
    product(4, "Envoy Field Guide", "A pocket handbook on listeners, clusters and filter chains, with worked examples.", 2450, &["books", "envoy"]),
    product(5, "WASM Rubber Duck", "A yellow duck that patiently listens while you debug a proxy-wasm filter.", 999, &["toys", "debugging"]),
    product(6, "Token Bucket", "A small enamel bucket. Refills at a steady rate; bursts are allowed within reason.", 1850, &["kitchen", "rate-limit"]),
    product(7, "JWT Keyring", "Brass keyring engraved with a header, a payload and a signature. Expires never.", 1200, &["accessories", "auth"]),
    product(8, "Cache Hit Socks", "Comfortable socks that are served warm from memory. Sold in pairs.", 1100, &["apparel", "cache"]),
    product(9, "Audit Log Notebook", "A lined notebook for writing down who did what and when. Append-only by convention.", 1600, &["stationery", "audit"]),
    product(10, "Sanitizer Spray", "Removes stray script tags and suspicious headers from any flat surface.", 750, &["cleaning", "sanitizer"]),
    product(11, "Upstream Water Bottle", "Insulated steel bottle that keeps drinks cold for a full on-call shift.", 2900, &["outdoor", "merch"]),
    product(12, "Circuit Breaker Poster", "A print explaining outlier detection, ejection and gentle recovery.", 1999, &["posters", "envoy"]),
    product(13, "Retry Budget Planner", "A desk planner that stops you from retrying the same mistake more than twice.", 2100, &["stationery", "envoy"]),
    product(14, "Header Map Puzzle", "A 500 piece jigsaw of an HTTP header map. Case-insensitive assembly.", 2350, &["toys", "http"]),
    product(15, "Gzip Tote Bag", "A canvas tote that somehow fits more than it should. Already compressed.", 1400, &["accessories", "compression"]),
    product(16, "Moat Desk Mat", "An extended mouse mat with a blue moat border that keeps intruders off your keyboard.", 2600, &["desk", "merch"]),
    product(17, "Role Badge Set", "Enamel pins for viewer, editor and admin. Wear only the role you were granted.", 1300, &["accessories", "auth"]),
    product(18, "Latency Hourglass", "A one minute hourglass for timing slow upstreams and slower meetings.", 1750, &["desk", "debugging"]),
    product(19, "ETag Tea Towel", "A kitchen towel printed with strong and weak validators. Machine washable.", 900, &["kitchen", "cache"]),
    product(20, "Sidecar Model Kit", "A plastic kit of a motorbike with a tiny proxy riding alongside it.", 3400, &["toys", "envoy"]),
    product(21, "Problem Details Mug", "A mug that answers every question with a JSON problem document.", 1499, &["kitchen", "http"]),
    product(22, "Keep-Alive Blanket", "A soft fleece blanket that keeps connections, and people, warm between requests.", 3900, &["home", "http"]),
    product(23, "Observability Lamp", "A desk lamp with three brightness levels: logs, metrics and traces.", 4500, &["desk", "audit"]),
    product(24, "Castle Gate Coasters", "Four cork coasters shaped like portcullis gates. Stops drips, not requests.", 1050, &["kitchen", "merch"]),
];

/// A serialized catalog document with its strong validator.
pub(crate) struct Document {
    pub body: Vec<u8>,
    pub etag: String,
}

impl Document {
    fn new(value: &impl Serialize) -> Document {
        // Serializing these plain structs cannot fail.
        let body = serde_json::to_vec(value).unwrap_or_default();
        let etag = etag_for(&body);
        Document { body, etag }
    }
}

/// The whole list, serialized once on first use.
pub(crate) fn list() -> &'static Document {
    static LIST: OnceLock<Document> = OnceLock::new();
    LIST.get_or_init(|| {
        Document::new(&serde_json::json!({
            "products": &PRODUCTS[..],
        }))
    })
}

/// One product by its id as written in the URL (`None` when unknown).
pub(crate) fn product_document(id: &str) -> Option<Document> {
    let id: u32 = id.parse().ok()?;
    PRODUCTS.iter().find(|p| p.id == id).map(Document::new)
}

/// A strong ETag: a quoted hex hash of the exact bytes served.
pub(crate) fn etag_for(body: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    format!("\"{:016x}\"", hasher.finish())
}

/// Whether an `If-None-Match` value (`*`, one tag or a list, weak or strong)
/// matches `etag`. If-None-Match uses weak comparison, so `W/` is ignored.
pub(crate) fn if_none_match_hits(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_large_and_single_products_are_small() {
        let doc = list();
        assert!(doc.body.len() > 2048, "list is {} bytes", doc.body.len());
        let parsed: serde_json::Value = serde_json::from_slice(&doc.body).unwrap();
        assert_eq!(parsed["products"].as_array().unwrap().len(), 24);
        for id in 1..=24 {
            let one = product_document(&id.to_string()).unwrap();
            assert!(one.body.len() < 1024);
        }
        assert!(product_document("25").is_none());
        assert!(product_document("abc").is_none());
    }

    #[test]
    fn etags_are_quoted_and_depend_on_the_body() {
        let a = etag_for(b"a");
        assert!(a.starts_with('"') && a.ends_with('"') && a.len() == 18);
        assert_ne!(a, etag_for(b"b"));
        assert_eq!(list().etag, etag_for(&list().body));
    }

    #[test]
    fn if_none_match_handles_star_lists_and_weak_tags() {
        let tag = "\"abc\"";
        assert!(if_none_match_hits("\"abc\"", tag));
        assert!(if_none_match_hits("*", tag));
        assert!(if_none_match_hits("\"x\", W/\"abc\"", tag));
        assert!(!if_none_match_hits("\"x\", \"y\"", tag));
        assert!(!if_none_match_hits("abc", tag));
    }
}
