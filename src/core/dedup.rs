//! The dedup window: exactly-once by frame id, in memory that does not grow with the stream.
//!
//! Ordered ids (numeric, redis) need one number: the high-water mark. A journal delivers in id
//! order, so an id at or below the mark was delivered already, whether it comes back from a replay,
//! a seam or a second leader. Opaque ids have no order, so the window remembers the last
//! `capacity` ids it admitted; an id older than that is no longer recognised (documented limit).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use super::cursor::{check_len, position, CursorError, CursorOrder, Position, ResolvedOrder};

/// Default number of opaque ids remembered.
pub const DEFAULT_DEDUP_WINDOW: usize = 4096;

/// Whether a frame id is seen for the first time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// First time: deliver it.
    New,
    /// Delivered before: drop it.
    Duplicate,
}

/// Exactly-once admission of frame ids within one epoch.
#[derive(Clone, Debug)]
pub struct DedupWindow {
    configured: CursorOrder,
    capacity: usize,
    state: WindowState,
}

#[derive(Clone, Debug)]
enum WindowState {
    /// Nothing admitted in this epoch; for `auto` the order is not known yet.
    Empty,
    Ordered {
        order: ResolvedOrder,
        high: Position,
    },
    Opaque(RecentIds),
}

impl DedupWindow {
    /// A window for ids of `order`, remembering up to `capacity` opaque ids (at least one).
    pub fn new(order: CursorOrder, capacity: usize) -> Self {
        DedupWindow {
            configured: order,
            capacity: capacity.max(1),
            state: WindowState::Empty,
        }
    }

    /// Admits `id`: [`Verdict::New`] the first time (and records it), [`Verdict::Duplicate`]
    /// after. An id that cannot be read in the stream's order is an error and changes nothing.
    pub fn admit(&mut self, id: &str) -> Result<Verdict, CursorError> {
        check_len(id)?;
        match &mut self.state {
            WindowState::Empty => {
                let order = self.configured.resolve(id);
                self.state = match position(order, id)? {
                    Some(high) => WindowState::Ordered { order, high },
                    None => {
                        let mut recent = RecentIds::new(self.capacity);
                        recent.insert(id);
                        WindowState::Opaque(recent)
                    }
                };
                Ok(Verdict::New)
            }
            WindowState::Ordered { order, high } => match position(*order, id)? {
                Some(p) if p > *high => {
                    *high = p;
                    Ok(Verdict::New)
                }
                _ => Ok(Verdict::Duplicate),
            },
            WindowState::Opaque(recent) => {
                if recent.contains(id) {
                    Ok(Verdict::Duplicate)
                } else {
                    recent.insert(id);
                    Ok(Verdict::New)
                }
            }
        }
    }

    /// Forgets everything (a new epoch: ids may restart); `auto` decides the order afresh.
    pub fn clear(&mut self) {
        self.state = WindowState::Empty;
    }

    /// The order in force, once an id has been admitted.
    pub fn order(&self) -> Option<ResolvedOrder> {
        match &self.state {
            WindowState::Empty => None,
            WindowState::Ordered { order, .. } => Some(*order),
            WindowState::Opaque(_) => Some(ResolvedOrder::Opaque),
        }
    }

    /// How many ids the window holds: 1 for an ordered stream (the mark), at most `capacity`
    /// for an opaque one.
    pub fn retained(&self) -> usize {
        match &self.state {
            WindowState::Empty => 0,
            WindowState::Ordered { .. } => 1,
            WindowState::Opaque(recent) => recent.len(),
        }
    }

    /// The configured capacity for opaque ids.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// The last `capacity` opaque ids, oldest evicted first.
#[derive(Clone, Debug)]
struct RecentIds {
    capacity: usize,
    arrival: VecDeque<Arc<str>>,
    members: HashSet<Arc<str>>,
}

impl RecentIds {
    fn new(capacity: usize) -> Self {
        RecentIds {
            capacity,
            arrival: VecDeque::new(),
            members: HashSet::new(),
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.members.contains(id)
    }

    fn insert(&mut self, id: &str) {
        if self.arrival.len() == self.capacity {
            if let Some(oldest) = self.arrival.pop_front() {
                self.members.remove(&oldest);
            }
        }
        let id: Arc<str> = Arc::from(id);
        self.members.insert(Arc::clone(&id));
        self.arrival.push_back(id);
    }

    fn len(&self) -> usize {
        self.arrival.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_ids_use_a_high_water_mark() {
        let mut w = DedupWindow::new(CursorOrder::Auto, 8);
        assert_eq!(w.admit("3"), Ok(Verdict::New));
        assert_eq!(w.order(), Some(ResolvedOrder::Numeric));
        assert_eq!(w.admit("3"), Ok(Verdict::Duplicate));
        assert_eq!(w.admit("2"), Ok(Verdict::Duplicate));
        assert_eq!(w.admit("10"), Ok(Verdict::New));
        assert_eq!(w.admit("0010"), Ok(Verdict::Duplicate));
        assert_eq!(
            w.admit("x"),
            Err(CursorError::NotNumeric { id: "x".into() })
        );
        assert_eq!(w.admit("11"), Ok(Verdict::New), "an error changes nothing");
        assert_eq!(w.retained(), 1);
    }

    #[test]
    fn redis_ids_compare_as_pairs() {
        let mut w = DedupWindow::new(CursorOrder::Redis, 8);
        assert_eq!(w.admit("100-5"), Ok(Verdict::New));
        assert_eq!(w.admit("100-4"), Ok(Verdict::Duplicate));
        assert_eq!(w.admit("99-9"), Ok(Verdict::Duplicate));
        assert_eq!(w.admit("101-0"), Ok(Verdict::New));
        assert!(w.admit("101").is_err());
    }

    #[test]
    fn opaque_ids_are_remembered_up_to_capacity() {
        let mut w = DedupWindow::new(CursorOrder::Opaque, 2);
        assert_eq!(w.admit("a"), Ok(Verdict::New));
        assert_eq!(w.admit("b"), Ok(Verdict::New));
        assert_eq!(w.admit("a"), Ok(Verdict::Duplicate));
        assert_eq!(w.admit("c"), Ok(Verdict::New)); // evicts "a"
        assert_eq!(w.retained(), 2);
        assert_eq!(w.admit("b"), Ok(Verdict::Duplicate));
        assert_eq!(
            w.admit("a"),
            Ok(Verdict::New),
            "past the window an id is new again"
        );
    }

    #[test]
    fn clear_forgets_the_epoch_and_the_order() {
        let mut w = DedupWindow::new(CursorOrder::Auto, 4);
        w.admit("5").unwrap();
        w.clear();
        assert_eq!(w.order(), None);
        assert_eq!(w.admit("1-1"), Ok(Verdict::New));
        assert_eq!(w.order(), Some(ResolvedOrder::Redis));
    }

    #[test]
    fn zero_capacity_is_raised_to_one() {
        let w = DedupWindow::new(CursorOrder::Opaque, 0);
        assert_eq!(w.capacity(), 1);
    }
}
