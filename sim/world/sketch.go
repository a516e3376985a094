package world

import "math"

// Sketch keeps a distribution of positive values in log-spaced buckets
// (1 % relative width) instead of every sample, so memory is bounded by the
// range of values, not the number of parcels. Quantiles are accurate to the
// bucket width; the mean is exact.
type Sketch struct {
	counts []uint64 // counts[i]: values in bucket lo+i
	lo     int32
	zeros  uint64
	n      uint64
	sum    float64
	min    float64
	max    float64
}

const sketchGamma = 1.01

// QuantileResolution is how far a sketch's quantile may be from the
// sample's, as a factor either way: the square root of a bucket's width
// (its quantile is the bucket's geometric middle), about 0.5 %.
var QuantileResolution = math.Sqrt(sketchGamma)

var logGamma = math.Log(sketchGamma)

// NewSketch returns an empty sketch.
func NewSketch() *Sketch {
	return &Sketch{min: math.Inf(1), max: math.Inf(-1)}
}

// Add records a value (negative values count as zero).
func (s *Sketch) Add(v float64) {
	s.n++
	if v <= 0 || math.IsNaN(v) {
		s.zeros++
		v = 0
	} else {
		s.bump(int32(math.Floor(math.Log(v)/logGamma)), 1)
	}
	s.sum += v
	s.min = math.Min(s.min, v)
	s.max = math.Max(s.max, v)
}

// bump adds n to bucket k, widening the dense range to hold it (at most
// some 140,000 buckets over all of float64's range; a run's values span a
// few thousand).
func (s *Sketch) bump(k int32, n uint64) {
	switch {
	case len(s.counts) == 0:
		s.lo = k
		s.counts = append(s.counts, 0)
	case k < s.lo:
		grown := make([]uint64, int(s.lo-k)+len(s.counts))
		copy(grown[s.lo-k:], s.counts)
		s.counts, s.lo = grown, k
	case int(k-s.lo) >= len(s.counts):
		s.counts = append(s.counts, make([]uint64, int(k-s.lo)+1-len(s.counts))...)
	}
	s.counts[k-s.lo] += n
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
	for i, c := range s.counts {
		seen += c
		if rank <= seen {
			k := s.lo + int32(i)
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
	for i, c := range s.counts {
		if c == 0 {
			continue
		}
		v := math.Exp((float64(s.lo+int32(i)) + 0.5) * logGamma)
		b := int(v / width)
		if b >= bins {
			b = bins - 1
		}
		out[b] += float64(c)
	}
	return out
}

// Merge adds another sketch's values to this one.
func (s *Sketch) Merge(o *Sketch) {
	for i, n := range o.counts {
		if n > 0 {
			s.bump(o.lo+int32(i), n)
		}
	}
	s.zeros += o.zeros
	s.n += o.n
	s.sum += o.sum
	s.min = math.Min(s.min, o.min)
	s.max = math.Max(s.max, o.max)
}
