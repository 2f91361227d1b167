//! The `{success, errors, messages, result, result_info}` envelope.

use serde::Serialize;
use serde_json::{json, Value};

/// Paging of a list response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ResultInfo {
    pub page: usize,
    pub per_page: usize,
    pub count: usize,
    pub total_count: usize,
    pub total_pages: usize,
}

/// A page request, already bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: usize,
    pub per_page: usize,
}

impl Page {
    pub const MAX_PER_PAGE: usize = 1000;
    /// Cloudflare lists load-balancing objects unpaged; Vantage does the same unless asked.
    pub const ALL: Page = Page {
        page: 1,
        per_page: usize::MAX,
    };

    /// Slices `items` to this page and describes the slice.
    pub fn apply<T>(self, items: Vec<T>) -> (Vec<T>, ResultInfo) {
        let total = items.len();
        let per_page = self.per_page.max(1);
        let start = (self.page.max(1) - 1).saturating_mul(per_page);
        let page_items: Vec<T> = items.into_iter().skip(start).take(per_page).collect();
        let shown_per_page = if per_page == usize::MAX {
            total.max(1)
        } else {
            per_page
        };
        let info = ResultInfo {
            page: self.page.max(1),
            per_page: shown_per_page,
            count: page_items.len(),
            total_count: total,
            total_pages: total.div_ceil(shown_per_page).max(1),
        };
        (page_items, info)
    }
}

pub fn success(result: Value) -> Value {
    json!({"success": true, "errors": [], "messages": [], "result": result})
}

pub fn success_list(result: Vec<Value>, info: ResultInfo) -> Value {
    json!({"success": true, "errors": [], "messages": [], "result": result, "result_info": info})
}

/// A single result object that is itself a page of something (as `search` answers).
pub fn success_paged(result: Value, info: ResultInfo) -> Value {
    json!({"success": true, "errors": [], "messages": [], "result": result, "result_info": info})
}

pub fn success_with_message(result: Value, code: u32, message: &str) -> Value {
    json!({"success": true, "errors": [], "messages": [{"code": code, "message": message}], "result": result})
}

/// `DELETE` answers with the identifier of what was removed.
pub fn deleted(id: impl ToString) -> Value {
    success(json!({"id": id.to_string()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging() {
        let (items, info) = Page {
            page: 2,
            per_page: 2,
        }
        .apply(vec![1, 2, 3, 4, 5]);
        assert_eq!(items, [3, 4]);
        assert_eq!((info.count, info.total_count, info.total_pages), (2, 5, 3));
        let (items, info) = Page::ALL.apply(vec![1, 2, 3]);
        assert_eq!(items.len(), 3);
        assert_eq!((info.per_page, info.total_pages), (3, 1));
        let (items, info) = Page {
            page: 9,
            per_page: 2,
        }
        .apply(vec![1]);
        assert!(items.is_empty());
        assert_eq!(info.count, 0);
    }
}
