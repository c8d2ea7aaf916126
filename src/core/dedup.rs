//! The dedup window: exactly-once by frame id, in memory that does not grow with the stream.
//!
//! Ordered ids (numeric, redis) need one number: the high-water mark. A journal delivers in id
//! order, so an id at or below the mark was delivered already, whether it comes back from a replay,
//! a seam or a second leader. Opaque ids have no order, so the window remembers the last
//! `capacity` ids it admitted; an id older than that is no longer recognised (documented limit).
//!
//! Only delivered ids make a frame a duplicate. Where a stream started without delivering
//! anything (`from=now`: at the tail the server snapshotted) is a separate mark, the start: an id
//! at or before it is [`Verdict::BeforeStart`], never a duplicate, so a start taken from the wrong
//! place can never pass off an undelivered frame as delivered.

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
    /// At or before where the stream started without delivering ([`DedupWindow::start_after`]):
    /// not part of the stream, and not a duplicate either.
    BeforeStart,
}

/// Exactly-once admission of frame ids within one epoch.
#[derive(Clone, Debug)]
pub struct DedupWindow {
    configured: CursorOrder,
    capacity: usize,
    /// `None` until the epoch's first id fixed the order (`auto` decides then).
    state: Option<WindowState>,
}

#[derive(Clone, Debug)]
enum WindowState {
    Ordered {
        order: ResolvedOrder,
        /// Where the stream started without delivering, if it did.
        start: Option<Position>,
        /// The highest id delivered.
        high: Option<Position>,
    },
    Opaque {
        /// Where the stream started without delivering, if it did.
        start: Option<Box<str>>,
        recent: RecentIds,
    },
}

impl DedupWindow {
    /// A window for ids of `order`, remembering up to `capacity` opaque ids (at least one).
    pub fn new(order: CursorOrder, capacity: usize) -> Self {
        DedupWindow {
            configured: order,
            capacity: capacity.max(1),
            state: None,
        }
    }

    /// Admits `id`: [`Verdict::New`] the first time (and records it as delivered),
    /// [`Verdict::Duplicate`] after, [`Verdict::BeforeStart`] at or before the start. An id that
    /// cannot be read in the stream's order is an error and changes nothing.
    pub fn admit(&mut self, id: &str) -> Result<Verdict, CursorError> {
        match self.resolved(id)? {
            WindowState::Ordered { order, start, high } => {
                // `Some` for every ordered id, so `None` (nothing yet) compares below it.
                let p = position(*order, id)?;
                if start.is_some() && p <= *start {
                    Ok(Verdict::BeforeStart)
                } else if high.is_some() && p <= *high {
                    Ok(Verdict::Duplicate)
                } else {
                    *high = p;
                    Ok(Verdict::New)
                }
            }
            WindowState::Opaque { start, recent } => {
                if start.as_deref() == Some(id) {
                    Ok(Verdict::BeforeStart)
                } else if recent.contains(id) {
                    Ok(Verdict::Duplicate)
                } else {
                    recent.insert(id);
                    Ok(Verdict::New)
                }
            }
        }
    }

    /// The stream starts after `id` without having delivered it (the `ready.tail` of a `from=now`
    /// join): ids at or before it are [`Verdict::BeforeStart`]. Nothing counts as delivered.
    pub fn start_after(&mut self, id: &str) -> Result<(), CursorError> {
        match self.resolved(id)? {
            WindowState::Ordered { order, start, .. } => *start = position(*order, id)?,
            WindowState::Opaque { start, .. } => *start = Some(id.into()),
        }
        Ok(())
    }

    /// The state for the epoch; the epoch's first id fixes the order (for `auto`) and must fit it.
    /// Later ids are checked by the caller's `position`.
    fn resolved(&mut self, id: &str) -> Result<&mut WindowState, CursorError> {
        check_len(id)?;
        let state = match self.state.take() {
            Some(state) => state,
            None => {
                let order = self.configured.resolve(id);
                position(order, id)?;
                match order {
                    ResolvedOrder::Opaque => WindowState::Opaque {
                        start: None,
                        recent: RecentIds::new(self.capacity),
                    },
                    order => WindowState::Ordered {
                        order,
                        start: None,
                        high: None,
                    },
                }
            }
        };
        Ok(self.state.insert(state))
    }

    /// Forgets everything (a new epoch: ids may restart); `auto` decides the order afresh.
    pub fn clear(&mut self) {
        self.state = None;
    }

    /// The order in force, once an id has been admitted.
    pub fn order(&self) -> Option<ResolvedOrder> {
        match &self.state {
            None => None,
            Some(WindowState::Ordered { order, .. }) => Some(*order),
            Some(WindowState::Opaque { .. }) => Some(ResolvedOrder::Opaque),
        }
    }

    /// How many ids the window holds: 1 for an ordered stream (the mark), at most `capacity`
    /// for an opaque one.
    pub fn retained(&self) -> usize {
        match &self.state {
            None => 0,
            Some(WindowState::Ordered { .. }) => 1,
            Some(WindowState::Opaque { recent, .. }) => recent.len(),
        }
    }

    /// The configured capacity for opaque ids.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// The last `capacity` opaque ids, oldest evicted first.
///
/// A ring of the ids in arrival order plus an open-addressing index over it (linear probing,
/// backward-shift deletion), written here rather than `HashSet`: hashbrown and SipHash cost
/// about 4 KB of wasm. Lookups, inserts and evictions are O(1) expected. The index grows with the
/// ring (at most half full), so a large `capacity` costs memory only once it fills.
#[derive(Clone, Debug)]
struct RecentIds {
    capacity: usize,
    /// The ids, oldest at `next` once the ring is full.
    ring: Vec<Box<str>>,
    /// The hash of each ring entry, for probing and rehashing without hashing again.
    hashes: Vec<u32>,
    /// Where the next id goes once the ring is full (the oldest entry).
    next: usize,
    /// Ring position + 1 of the id in each slot; 0 is an empty slot. Its length is a power of two.
    slots: Vec<u32>,
}

/// FNV-1a, 32 bits: small and good enough for ids (the server chooses them).
fn hash(id: &str) -> u32 {
    id.bytes().fold(0x811c_9dc5, |h: u32, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

impl RecentIds {
    fn new(capacity: usize) -> Self {
        RecentIds {
            capacity,
            ring: Vec::new(),
            hashes: Vec::new(),
            next: 0,
            slots: Vec::new(),
        }
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    fn contains(&self, id: &str) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let mask = self.mask();
        let mut i = hash(id) as usize & mask;
        loop {
            match self.slots[i] {
                0 => return false,
                at if *self.ring[at as usize - 1] == *id => return true,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Records `id`, which is not in the window, evicting the oldest id if it is full.
    fn insert(&mut self, id: &str) {
        let h = hash(id);
        let at = if self.ring.len() < self.capacity {
            self.ring.push(id.into());
            self.hashes.push(h);
            if self.ring.len() * 2 > self.slots.len() {
                self.rehash();
                return;
            }
            self.ring.len() - 1
        } else {
            let at = self.next;
            self.unindex(at);
            self.ring[at] = id.into();
            self.hashes[at] = h;
            self.next = if at + 1 == self.capacity { 0 } else { at + 1 };
            at
        };
        self.index(at);
    }

    /// Puts ring position `at` into the first free slot from its hash.
    fn index(&mut self, at: usize) {
        let mask = self.mask();
        let mut i = self.hashes[at] as usize & mask;
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = at as u32 + 1;
    }

    /// Removes ring position `at` from the index, shifting back the entries probed past it.
    fn unindex(&mut self, at: usize) {
        let mask = self.mask();
        let mut hole = self.hashes[at] as usize & mask;
        while self.slots[hole] != at as u32 + 1 {
            hole = (hole + 1) & mask;
        }
        let mut i = hole;
        loop {
            i = (i + 1) & mask;
            let entry = self.slots[i];
            if entry == 0 {
                break;
            }
            // The entry may move into the hole if its home slot is not after the hole (cyclically
            // from the hole to `i`).
            let home = self.hashes[entry as usize - 1] as usize & mask;
            if (i.wrapping_sub(home) & mask) >= (i.wrapping_sub(hole) & mask) {
                self.slots[hole] = entry;
                hole = i;
            }
        }
        self.slots[hole] = 0;
    }

    /// Doubles the index (at least 16 slots) and indexes every ring entry again.
    fn rehash(&mut self) {
        let len = (self.ring.len() * 2).next_power_of_two().max(16);
        self.slots.clear();
        self.slots.resize(len, 0);
        for at in 0..self.ring.len() {
            self.index(at);
        }
    }

    fn len(&self) -> usize {
        self.ring.len()
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

    /// The hand-written index against a model (the last `capacity` admitted ids, by scanning),
    /// with few distinct ids so that repeats, evictions and probe chains are frequent.
    #[test]
    fn opaque_window_matches_a_model() {
        for capacity in [1, 2, 3, 7, 8, 9, 16, 17, 100] {
            let mut w = DedupWindow::new(CursorOrder::Opaque, capacity);
            let mut model: std::collections::VecDeque<String> = Default::default();
            let mut seed = 0x2545_f491_u32 ^ capacity as u32;
            for step in 0..20_000 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let id = format!("o{}", seed % (capacity as u32 * 3 + 2));
                let expected = if model.contains(&id) {
                    Verdict::Duplicate
                } else {
                    if model.len() == capacity {
                        model.pop_front();
                    }
                    model.push_back(id.clone());
                    Verdict::New
                };
                assert_eq!(
                    w.admit(&id),
                    Ok(expected),
                    "capacity {capacity}, step {step}"
                );
                assert_eq!(w.retained(), model.len());
            }
        }
    }

    #[test]
    fn the_start_is_not_a_delivery() {
        for (order, start, before, after) in [
            (CursorOrder::Auto, "42", "41", "43"),
            (CursorOrder::Redis, "100-5", "100-4", "100-6"),
        ] {
            let mut w = DedupWindow::new(order, 8);
            w.start_after(start).unwrap();
            assert_eq!(w.admit(start), Ok(Verdict::BeforeStart));
            assert_eq!(w.admit(before), Ok(Verdict::BeforeStart));
            assert_eq!(w.admit(after), Ok(Verdict::New));
            assert_eq!(w.admit(after), Ok(Verdict::Duplicate));
            assert_eq!(
                w.admit(start),
                Ok(Verdict::BeforeStart),
                "still not a duplicate"
            );
        }
        let mut w = DedupWindow::new(CursorOrder::Opaque, 8);
        w.start_after("t").unwrap();
        assert_eq!(w.admit("t"), Ok(Verdict::BeforeStart));
        assert_eq!(w.admit("u"), Ok(Verdict::New));
        assert_eq!(w.admit("u"), Ok(Verdict::Duplicate));
        let mut w = DedupWindow::new(CursorOrder::Numeric, 8);
        assert!(w.start_after("x").is_err(), "a start must fit the order");
        assert_eq!(w.order(), None, "an error changes nothing");
        w.clear();
        assert_eq!(w.admit("3"), Ok(Verdict::New), "clear forgets the start");
    }

    #[test]
    fn zero_capacity_is_raised_to_one() {
        let w = DedupWindow::new(CursorOrder::Opaque, 0);
        assert_eq!(w.capacity(), 1);
    }
}
