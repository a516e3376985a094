package sim

import "math/rand/v2"

// Streams derives independent, named random streams from one seed.
//
// A stream is a PCG generator keyed by (seed, name): adding or removing a
// stream, or drawing more from one, never changes another stream's draws.
// That is what lets a scenario gain a new random concern (say, a fault) while
// demand and pickups stay exactly as they were, and what makes common random
// numbers work when comparing policies.
type Streams struct {
	seed uint64
}

// NewStreams returns the stream family for a seed.
func NewStreams(seed uint64) Streams { return Streams{seed: seed} }

// Seed is the family's seed.
func (s Streams) Seed() uint64 { return s.seed }

// Stream returns a fresh generator for the named stream. Two calls with the
// same name return generators that produce the same sequence.
func (s Streams) Stream(name string) *rand.Rand {
	h := fnv64a(name)
	return rand.New(rand.NewPCG(splitmix64(s.seed^0x9e3779b97f4a7c15), splitmix64(h)))
}

// Derive returns the family for the i-th child of this seed under a name,
// e.g. Derive("replication", 3). Children are independent of each other and
// of the parent's streams.
func (s Streams) Derive(name string, i uint64) Streams {
	return Streams{seed: splitmix64(s.seed ^ splitmix64(fnv64a(name)^splitmix64(i)))}
}

// splitmix64 is Vigna's finaliser: a bijective mixer that spreads nearby
// seeds (1, 2, 3, …) across the whole state space.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func fnv64a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
