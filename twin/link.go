package twin

import (
	"math/rand/v2"
	"time"
)

// Scheduler runs a function after a delay on the simulation's clock; the
// in-process link schedules every delivery through it (no goroutines).
type Scheduler interface {
	After(d time.Duration, f func())
}

// LinkQuality is a link's latency and faults.
type LinkQuality struct {
	Latency     time.Duration // one way
	Jitter      time.Duration // uniform extra delay in [0, Jitter)
	Loss        float64       // probability a message is lost
	Duplication float64       // probability a message arrives twice
	Reorder     float64       // probability a message is held back 1–5 latencies, so later ones overtake it
}

// LinkStats counts what a link did to its messages.
type LinkStats struct {
	Sent, Lost, Duplicated, Reordered int
}

// SimLink carries messages one way in virtual time, with latency, loss,
// duplication and reordering drawn from its own random stream. A pair of
// them (down: commands, up: events) connects the controller to a cabinet in
// the simulator.
type SimLink struct {
	q     LinkQuality
	sched Scheduler
	rng   *rand.Rand
	nanos func() int64 // the clock, in Unix ns
	last  int64        // arrival (Unix ns) of the last in-order message: jitter never reorders
	Stats LinkStats
}

// NewSimLink makes a link; rng should be a named stream ("link/{cabinet}/up").
// Like an MQTT session at QoS 1, it delivers in order: jitter delays a
// message but never lets a later one overtake it; only the Reorder fault does.
func NewSimLink(q LinkQuality, sched interface {
	Scheduler
	Now() time.Time
}, rng *rand.Rand) *SimLink {
	return &SimLink{q: q, sched: sched, rng: rng, nanos: NanoReader(sched)}
}

// Deliver schedules f as the arrival of one message and returns how many
// copies will arrive: zero (lost), one, or two (duplicated). A caller that
// pools its messages frees one after that many arrivals.
func (l *SimLink) Deliver(f func()) int {
	l.Stats.Sent++
	if l.q.Loss > 0 && l.rng.Float64() < l.q.Loss {
		l.Stats.Lost++
		return 0
	}
	l.sched.After(l.delay(), f)
	if l.q.Duplication > 0 && l.rng.Float64() < l.q.Duplication {
		l.Stats.Duplicated++
		l.sched.After(l.delay(), f)
		return 2
	}
	return 1
}

func (l *SimLink) delay() time.Duration {
	d := l.q.Latency
	if l.q.Jitter > 0 {
		d += time.Duration(l.rng.Int64N(int64(l.q.Jitter)))
	}
	now := l.nanos()
	if l.q.Reorder > 0 && l.rng.Float64() < l.q.Reorder {
		// Held back: later messages overtake this one.
		l.Stats.Reordered++
		return d + time.Duration(1+l.rng.IntN(5))*max(l.q.Latency, time.Millisecond)
	}
	if at := now + int64(d); at < l.last {
		d = time.Duration(l.last - now)
	}
	l.last = now + int64(d)
	return d
}
