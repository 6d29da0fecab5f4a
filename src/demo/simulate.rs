//! Playing out a world: people planned by [`World`], their visits written by the [`Emitter`]
//! in time order. Above both, so the world never needs the emitter that reads it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;

use super::emit::{Counts, Emitter, Sink};
use super::world::{DAY, Person, Visit, World};

struct Pending {
    start: i64,
    seq: u64,
    person: Rc<Person>,
    visit: Visit,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.start, self.seq) == (other.start, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.start, self.seq).cmp(&(other.start, other.seq))
    }
}

impl World {
    /// Plays out `persons` people (numbered from 0 in `stream`) and writes their data to
    /// `sink`, in time order.
    pub fn simulate(&self, persons: u64, stream: u64, sink: Sink) -> anyhow::Result<Counts> {
        let persons = u32::try_from(persons)
            .map_err(|_| anyhow::anyhow!("{persons} people are more than the demo can make"))?;
        let slots = self.slot_weights.len();
        // Who arrives on which day of the window: the first people on the first day, as many
        // each day as its weight says.
        let total: f64 = self.slot_weights.iter().sum();
        let mut cumulative = 0.0;
        let bounds: Vec<u32> = (self.slot_weights.iter().enumerate())
            .map(|(k, weight)| {
                cumulative += weight;
                if k + 1 == slots {
                    persons
                } else {
                    (f64::from(persons) * cumulative / total).round() as u32
                }
            })
            .collect();
        let arrival =
            |person: u32| self.start + bounds.partition_point(|b| *b <= person) as i64 * DAY;
        // First pass: the day of each person's earliest visit, which can come before the
        // arrival (a visit planned after the window's end comes round to its start). Writing
        // people from the day of their earliest visit keeps everything in time order.
        let mut starting: Vec<Vec<u32>> = vec![Vec::new(); slots];
        for person in 0..persons {
            let (_, visits) = self.plan_person(person, stream, arrival(person));
            let first = visits
                .iter()
                .map(|v| v.start)
                .min()
                .expect("one visit at least");
            starting[((first - self.start) / DAY).clamp(0, slots as i64 - 1) as usize].push(person);
        }
        // Second pass: the same plans again, day by day, each visit written when its time
        // comes.
        let mut emitter = Emitter::new(self, sink);
        let mut queue: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
        let mut seq = 0u64;
        for (k, people) in starting.into_iter().enumerate() {
            for index in people {
                let (person, visits) = self.plan_person(index, stream, arrival(index));
                let person = Rc::new(person);
                for visit in visits {
                    seq += 1;
                    queue.push(Reverse(Pending {
                        start: visit.start,
                        seq,
                        person: person.clone(),
                        visit,
                    }));
                }
            }
            let slot_end = self.start + (k as i64 + 1) * DAY;
            while queue
                .peek()
                .is_some_and(|p| p.0.start < slot_end || k + 1 == slots)
            {
                let Reverse(pending) = queue.pop().expect("peeked");
                emitter.visit(&pending.person, &pending.visit)?;
            }
        }
        emitter.finish()
    }
}
