package world

import (
	"math"
	"sort"
)

// Sketch keeps a distribution of positive values in log-spaced buckets
// (1 % relative width) instead of every sample, so memory is bounded by the
// range of values, not the number of parcels. Quantiles are accurate to the
// bucket width; the mean is exact.
type Sketch struct {
	counts map[int32]uint64
	zeros  uint64
	n      uint64
	sum    float64
	min    float64
	max    float64
}

const sketchGamma = 1.01

var logGamma = math.Log(sketchGamma)

// NewSketch returns an empty sketch.
func NewSketch() *Sketch {
	return &Sketch{counts: map[int32]uint64{}, min: math.Inf(1), max: math.Inf(-1)}
}

// Add records a value (negative values count as zero).
func (s *Sketch) Add(v float64) {
	s.n++
	if v <= 0 || math.IsNaN(v) {
		s.zeros++
		v = 0
	} else {
		s.counts[int32(math.Floor(math.Log(v)/logGamma))]++
	}
	s.sum += v
	s.min = math.Min(s.min, v)
	s.max = math.Max(s.max, v)
}

// Count is the number of values.
func (s *Sketch) Count() uint64 { return s.n }

// Mean is the exact mean, or NaN when empty.
func (s *Sketch) Mean() float64 {
	if s.n == 0 {
		return math.NaN()
	}
	return s.sum / float64(s.n)
}

func (s *Sketch) keys() []int32 {
	keys := make([]int32, 0, len(s.counts))
	for k := range s.counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1), or NaN when empty.
func (s *Sketch) Quantile(q float64) float64 {
	if s.n == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(s.n)))
	if rank == 0 {
		rank = 1
	}
	seen := s.zeros
	if rank <= seen {
		return 0
	}
	for _, k := range s.keys() {
		seen += s.counts[k]
		if rank <= seen {
			// The bucket's geometric middle, clamped to what was seen.
			v := math.Exp((float64(k) + 0.5) * logGamma)
			return math.Max(s.min, math.Min(s.max, v))
		}
	}
	return s.max
}

// Histogram returns counts in equal-width bins over [0, upper), the last bin
// taking everything above: for the report's dwell plot.
func (s *Sketch) Histogram(upper float64, bins int) []float64 {
	out := make([]float64, bins)
	width := upper / float64(bins)
	out[0] += float64(s.zeros)
	for _, k := range s.keys() {
		v := math.Exp((float64(k) + 0.5) * logGamma)
		b := int(v / width)
		if b >= bins {
			b = bins - 1
		}
		out[b] += float64(s.counts[k])
	}
	return out
}

// Merge adds another sketch's values to this one.
func (s *Sketch) Merge(o *Sketch) {
	for k, n := range o.counts {
		s.counts[k] += n
	}
	s.zeros += o.zeros
	s.n += o.n
	s.sum += o.sum
	s.min = math.Min(s.min, o.min)
	s.max = math.Max(s.max, o.max)
}
