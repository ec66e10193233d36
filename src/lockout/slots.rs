//! The lockout counter every backend shares: one slot per account with recent failures or an
//! attempt in progress, in shared memory, so no snapshot, isolation level or rollback can hide a
//! failure from another attempt.
//!
//! An attempt reserves its place before the hash is checked (`reserve`) and settles it after
//! (`settle`). A reservation counts as a failure until it settles, so however many attempts run
//! at once, at most `max_failed` wrong passwords per account and window are ever checked. When no
//! slot is free the attempt is refused: a failure that could not be counted is never verified.

/// Accounts with recent failures that one server tracks at once (40 bytes each: 2.5 MiB).
pub const SLOTS: usize = 1 << 16;
/// An account's slot is one of this many, starting at its hash: a lookup reads at most these.
const PROBE: usize = 32;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
struct Slot {
    /// Database oid; 0 marks a slot never used.
    database: u32,
    /// Attempts between `reserve` and `settle`.
    in_flight: u16,
    /// Wrong passwords in the current window (or that caused the current lock).
    failures: u16,
    account: [u8; 16],
    /// Unix milliseconds; 0 for none.
    last_failure: i64,
    locked_until: i64,
}

/// What the settings and the clock say when a slot is used (the settings are superuser-only).
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub max_failed: u16,
    pub window_ms: i64,
    pub duration_ms: i64,
    pub now_ms: i64,
}

/// The account's failures as last written to nile_auth.login_failures: the starting point when
/// the account has no slot (after a restart, or once its old slot was reused).
#[derive(Clone, Copy, Debug, Default)]
pub struct Persisted {
    pub failures: i32,
    pub last_failure_ms: i64,
    pub locked_until_ms: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Locked, or so many failures and attempts in flight that one more could exceed the limit.
    Locked,
    /// Every slot is taken by an account with recent failures: the attempt cannot be counted.
    Full,
}

/// What a wrong password left behind, to be written to nile_auth.login_failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    pub failures: u16,
    pub locked_until_ms: i64,
    /// This failure is the one that locked the account.
    pub locked_now: bool,
}

/// A reservation: the slot's index, valid until settled (a slot in flight is never reused).
#[derive(Debug)]
#[must_use = "a reservation counts as a failure until it is settled"]
pub struct Ticket(usize);

/// All-zero bytes are an empty table (database 0 marks a free slot): shared memory is
/// initialised by zeroing it, never built on a stack.
#[repr(C)]
pub struct Table {
    slots: [Slot; SLOTS],
}

impl Table {
    /// Where the account's probe sequence starts. Registered users' ids end in 62 random bits
    /// the server chose, so nobody can pick accounts that crowd one sequence.
    fn home(database: u32, account: &[u8; 16]) -> usize {
        let tail = u64::from_le_bytes(account[8..16].try_into().unwrap_or_default());
        let mixed = (tail ^ u64::from(database).rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> (64 - SLOTS.trailing_zeros())) as usize
    }

    fn probe(database: u32, account: &[u8; 16]) -> impl Iterator<Item = usize> {
        let home = Self::home(database, account);
        (0..PROBE).map(move |i| (home + i) % SLOTS)
    }

    fn find(&self, database: u32, account: &[u8; 16]) -> Option<usize> {
        Self::probe(database, account).find(|&i| self.slots[i].database == database && self.slots[i].account == *account)
    }

    /// A slot whose account has nothing left to remember: no attempt in flight, no lock, no
    /// failure inside the window.
    fn reusable(slot: &Slot, p: &Policy) -> bool {
        slot.database == 0
            || (slot.in_flight == 0
                && slot.locked_until <= p.now_ms
                && (slot.failures == 0 || slot.last_failure + p.window_ms <= p.now_ms))
    }

    /// Ends an expired lock and a window without failures, so the slot shows only what still
    /// counts. The count clears only with the window: a lock shorter than the window that
    /// cleared it would grant a fresh `max_failed` guesses per lock.
    fn age(slot: &mut Slot, p: &Policy) {
        if slot.locked_until != 0 && slot.locked_until <= p.now_ms {
            slot.locked_until = 0;
        }
        if slot.last_failure + p.window_ms <= p.now_ms {
            slot.failures = 0;
        }
    }

    pub fn reserve(&mut self, database: u32, account: &[u8; 16], persisted: Persisted, p: &Policy) -> Result<Ticket, Refusal> {
        let index = match self.find(database, account) {
            Some(i) => i,
            None => {
                let i = Self::probe(database, account).find(|&i| Self::reusable(&self.slots[i], p)).ok_or(Refusal::Full)?;
                self.slots[i] = Slot {
                    database,
                    in_flight: 0,
                    failures: u16::try_from(persisted.failures.max(0)).unwrap_or(u16::MAX),
                    account: *account,
                    last_failure: persisted.last_failure_ms,
                    locked_until: persisted.locked_until_ms,
                };
                i
            }
        };
        let slot = &mut self.slots[index];
        Self::age(slot, p);
        if slot.locked_until > p.now_ms || u32::from(slot.failures) + u32::from(slot.in_flight) >= u32::from(p.max_failed) {
            return Err(Refusal::Locked);
        }
        slot.in_flight += 1;
        Ok(Ticket(index))
    }

    /// Settles a reservation: a right password clears the account's count, a wrong one adds to
    /// it and locks the account at the limit.
    pub fn settle(&mut self, ticket: Ticket, right: bool, p: &Policy) -> Count {
        let slot = &mut self.slots[ticket.0];
        slot.in_flight = slot.in_flight.saturating_sub(1);
        if right {
            (slot.failures, slot.last_failure) = (0, 0);
            return Count { failures: 0, locked_until_ms: slot.locked_until, locked_now: false };
        }
        Self::age(slot, p);
        slot.failures = slot.failures.saturating_add(1);
        slot.last_failure = p.now_ms;
        let locked_now = slot.failures >= p.max_failed && slot.locked_until <= p.now_ms;
        if locked_now {
            slot.locked_until = p.now_ms + p.duration_ms;
        }
        Count { failures: slot.failures, locked_until_ms: slot.locked_until, locked_now }
    }

    /// Clears the account's count and lock (unlock, password reset); attempts in flight stay
    /// counted as such.
    pub fn forget(&mut self, database: u32, account: &[u8; 16]) {
        if let Some(i) = self.find(database, account) {
            let slot = &mut self.slots[i];
            (slot.failures, slot.last_failure, slot.locked_until) = (0, 0, 0);
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn policy(now_ms: i64) -> Policy {
        Policy { max_failed: 3, window_ms: 1000, duration_ms: 5000, now_ms }
    }

    fn table() -> Box<Table> {
        // SAFETY: all-zero is an empty table (see Table).
        unsafe { Box::<Table>::new_zeroed().assume_init() }
    }

    const A: [u8; 16] = [1; 16];
    const B: [u8; 16] = [2; 16];

    #[test]
    fn concurrent_attempts_never_exceed_the_limit() {
        let mut t = table();
        let p = policy(10_000);
        let tickets: Vec<_> = (0..3).map(|_| t.reserve(1, &A, Persisted::default(), &p).unwrap()).collect();
        // A fourth attempt while three are in flight could be a fourth wrong password.
        assert_eq!(t.reserve(1, &A, Persisted::default(), &p).unwrap_err(), Refusal::Locked);
        let counts: Vec<_> = tickets.into_iter().map(|k| t.settle(k, false, &p)).collect();
        assert_eq!(counts.iter().filter(|c| c.locked_now).count(), 1);
        assert_eq!(counts.last().unwrap().locked_until_ms, 15_000);
        // Locked until the duration ends, even for the right password; then a fresh count.
        assert_eq!(t.reserve(1, &A, Persisted::default(), &policy(14_999)).unwrap_err(), Refusal::Locked);
        let k = t.reserve(1, &A, Persisted::default(), &policy(15_000)).unwrap();
        assert_eq!(t.settle(k, true, &policy(15_000)).failures, 0);
    }

    #[test]
    fn a_lock_shorter_than_the_window_does_not_clear_the_count() {
        let mut t = table();
        let p = Policy { max_failed: 2, window_ms: 10_000, duration_ms: 1000, now_ms: 10_000 };
        for _ in 0..2 {
            let k = t.reserve(1, &A, Persisted::default(), &p).unwrap();
            t.settle(k, false, &p);
        }
        // The lock has ended, the window has not: no more guesses.
        let later = Policy { now_ms: 12_000, ..p };
        assert_eq!(t.reserve(1, &A, Persisted::default(), &later).unwrap_err(), Refusal::Locked);
        let after_window = Policy { now_ms: 20_000, ..p };
        assert!(t.reserve(1, &A, Persisted::default(), &after_window).is_ok());
    }

    #[test]
    fn the_same_account_in_another_database_is_another_slot() {
        let mut t = table();
        let p = policy(10_000);
        for _ in 0..3 {
            let k = t.reserve(1, &A, Persisted::default(), &p).unwrap();
            t.settle(k, false, &p);
        }
        assert_eq!(t.reserve(1, &A, Persisted::default(), &p).unwrap_err(), Refusal::Locked);
        assert!(t.reserve(2, &A, Persisted::default(), &p).is_ok());
    }

    #[test]
    fn failures_outside_the_window_start_a_new_count() {
        let mut t = table();
        for now in [10_000, 10_500] {
            let k = t.reserve(1, &A, Persisted::default(), &policy(now)).unwrap();
            t.settle(k, false, &policy(now));
        }
        let k = t.reserve(1, &A, Persisted::default(), &policy(11_600)).unwrap();
        assert_eq!(t.settle(k, false, &policy(11_600)).failures, 1);
    }

    #[test]
    fn a_persisted_lock_holds_after_a_restart() {
        let mut t = table();
        let persisted = Persisted { failures: 3, last_failure_ms: 9_000, locked_until_ms: 14_000 };
        assert_eq!(t.reserve(1, &A, persisted, &policy(10_000)).unwrap_err(), Refusal::Locked);
        // Persisted failures inside the window count too.
        let mut t = table();
        let persisted = Persisted { failures: 2, last_failure_ms: 9_500, locked_until_ms: 0 };
        let k = t.reserve(1, &A, persisted, &policy(10_000)).unwrap();
        assert!(t.settle(k, false, &policy(10_000)).locked_now);
    }

    #[test]
    fn a_full_table_refuses_and_reuses_only_slots_with_nothing_to_remember() {
        let mut t = table();
        let p = policy(10_000);
        // Fill B's probe sequence (the test knows the hash; an attacker cannot choose user ids).
        let mut filled = 0;
        for i in 0u64.. {
            let mut account = [0u8; 16];
            account[8..].copy_from_slice(&i.to_le_bytes());
            if Table::probe(1, &account).next() != Table::probe(1, &B).next() {
                continue;
            }
            let k = t.reserve(1, &account, Persisted::default(), &p).unwrap();
            t.settle(k, false, &p);
            filled += 1;
            if filled == PROBE {
                break;
            }
        }
        assert_eq!(t.reserve(1, &B, Persisted::default(), &p).unwrap_err(), Refusal::Full);
        // Once the window has passed, the old slots are free again.
        assert!(t.reserve(1, &B, Persisted::default(), &policy(11_000)).is_ok());
    }

    #[test]
    fn forget_clears_a_lock() {
        let mut t = table();
        let p = policy(10_000);
        for _ in 0..3 {
            let k = t.reserve(1, &A, Persisted::default(), &p).unwrap();
            t.settle(k, false, &p);
        }
        t.forget(1, &A);
        assert!(t.reserve(1, &A, Persisted::default(), &p).is_ok());
    }
}
