package sim

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// mm1 is an M/M/1 queue driven by the engine: one server, Poisson arrivals at
// rate lambda, exponential service at rate mu (both per second).
type mm1 struct {
	eng        *Engine
	rng        *rand.Rand
	lambda, mu float64

	waiting ring // arrival times of customers in queue
	busy    bool

	events   int
	stopAt   int
	warmup   int
	started  int
	onWaited func(wait Time)
}

const (
	mm1Arrival uint64 = iota
	mm1Departure
)

func newMM1(eng *Engine, streams Streams, lambda, mu float64) *mm1 {
	m := &mm1{eng: eng, rng: streams.Stream("mm1"), lambda: lambda, mu: mu}
	eng.After(m.draw(lambda), m, mm1Arrival)
	return m
}

func (m *mm1) draw(rate float64) Time { return FromSeconds(m.rng.ExpFloat64() / rate) }

func (m *mm1) Fire(now Time, arg uint64) {
	m.events++
	switch arg {
	case mm1Arrival:
		m.eng.After(m.draw(m.lambda), m, mm1Arrival)
		if !m.busy {
			m.busy = true
			m.startService(now, now)
		} else {
			m.waiting.push(now)
		}
	case mm1Departure:
		if m.waiting.len() > 0 {
			m.startService(now, m.waiting.pop())
		} else {
			m.busy = false
		}
	}
	if m.stopAt > 0 && m.events >= m.stopAt {
		m.eng.Stop()
	}
}

func (m *mm1) startService(now, arrived Time) {
	m.started++
	if m.onWaited != nil && m.started > m.warmup {
		m.onWaited(now - arrived)
	}
	m.eng.After(m.draw(m.mu), m, mm1Departure)
}

// ring is a FIFO of times that reuses its buffer.
type ring struct {
	buf        []Time
	head, size int
}

func (r *ring) len() int { return r.size }

func (r *ring) push(t Time) {
	if r.size == len(r.buf) {
		n := make([]Time, max(16, 2*len(r.buf)))
		for i := 0; i < r.size; i++ {
			n[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = n, 0
	}
	r.buf[(r.head+r.size)%len(r.buf)] = t
	r.size++
}

func (r *ring) pop() Time {
	t := r.buf[r.head]
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	return t
}

// TestMM1MeanWaitMatchesTheory checks the engine against queueing theory that
// nobody here wrote: for M/M/1, Wq = ρ/(μ−λ). Waits are autocorrelated, so
// the confidence interval comes from batch means.
func TestMM1MeanWaitMatchesTheory(t *testing.T) {
	const (
		lambda, mu = 0.9, 1.0
		customers  = 2_000_000
		warmup     = 50_000
		batches    = 40
	)
	eng := NewEngine(64)
	m := newMM1(eng, NewStreams(7), lambda, mu)
	m.warmup = warmup
	perBatch := (customers - warmup) / batches
	sums := make([]float64, 0, batches)
	var acc float64
	var n int
	m.onWaited = func(w Time) {
		acc += w.Seconds()
		n++
		if n == perBatch {
			sums = append(sums, acc/float64(n))
			acc, n = 0, 0
			if len(sums) == batches {
				eng.Stop()
			}
		}
	}
	require.Equal(t, Stopped, eng.RunUntilEmpty())
	require.Len(t, sums, batches)

	mean, sd := stat.MeanStdDev(sums, nil)
	tq := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: batches - 1}.Quantile(0.995)
	half := tq * sd / math.Sqrt(batches)
	want := (lambda / mu) / (mu - lambda)
	t.Logf("Wq = %.3f ± %.3f (99%% CI), theory %.3f", mean, half, want)
	require.InDelta(t, want, mean, half, "mean wait in queue outside its 99%% confidence interval")
	require.Less(t, half/want, 0.1, "interval too wide to be a meaningful check")
}

// BenchmarkEngineMM1 runs the M/M/1 model (ρ = 0.9) through the engine. An
// event is an arrival or a departure.
func BenchmarkEngineMM1(b *testing.B) {
	eng := NewEngine(64)
	m := newMM1(eng, NewStreams(1), 0.9, 1.0)
	m.stopAt = 100_000 // warm the slab, heap and ring before timing
	eng.RunUntilEmpty()
	m.events, m.stopAt = 0, b.N
	b.ReportAllocs()
	b.ResetTimer()
	eng.RunUntilEmpty()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// refEvent and refHeap are the hand-rolled reference the engine is measured
// against: the same model with a bare 4-ary heap of 16-byte events and the
// model's logic inlined in the loop — no slots, no handlers, no cancel.
type refEvent struct {
	at   Time
	kind uint64 // seq<<1 | kind keeps ties in insertion order
}

type refHeap []refEvent

func (h *refHeap) push(x refEvent) {
	s := append(*h, x)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) >> 2
		if s[p].at < x.at || (s[p].at == x.at && s[p].kind <= x.kind) {
			break
		}
		s[i] = s[p]
		i = p
	}
	s[i] = x
	*h = s
}

func (h *refHeap) pop() refEvent {
	s := *h
	top := s[0]
	n := len(s) - 1
	x := s[n]
	s = s[:n]
	*h = s
	if n == 0 {
		return top
	}
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for j := c + 1; j < c+4 && j < n; j++ {
			if s[j].at < s[m].at || (s[j].at == s[m].at && s[j].kind < s[m].kind) {
				m = j
			}
		}
		if x.at < s[m].at || (x.at == s[m].at && x.kind <= s[m].kind) {
			break
		}
		s[i] = s[m]
		i = m
	}
	s[i] = x
	return top
}

func BenchmarkReferenceMM1(b *testing.B) {
	rng := NewStreams(1).Stream("mm1")
	const lambda, mu = 0.9, 1.0
	h := make(refHeap, 0, 64)
	var q ring
	var seq uint64
	busy := false
	var now Time
	schedule := func(d Time, kind uint64) {
		seq++
		h.push(refEvent{at: now + d, kind: seq<<1 | kind})
	}
	step := func() {
		ev := h.pop()
		now = ev.at
		if ev.kind&1 == 0 {
			schedule(FromSeconds(rng.ExpFloat64()/lambda), 0)
			if !busy {
				busy = true
				schedule(FromSeconds(rng.ExpFloat64()/mu), 1)
			} else {
				q.push(now)
			}
		} else if q.len() > 0 {
			q.pop()
			schedule(FromSeconds(rng.ExpFloat64()/mu), 1)
		} else {
			busy = false
		}
	}
	schedule(FromSeconds(rng.ExpFloat64()/lambda), 0)
	for i := 0; i < 100_000; i++ {
		step()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
