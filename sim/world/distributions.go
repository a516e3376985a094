package world

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/lockertwin/lockertwin/scenarios"
	"gonum.org/v1/gonum/stat/distuv"
)

// z90 is the standard normal's 90th percentile: a lognormal with median m
// and 90th percentile p has σ = (ln p − ln m) / z90.
const z90 = 1.2815515655446004

// delaySampler draws a recipient's pickup delay.
type delaySampler interface {
	draw() time.Duration
	mean() time.Duration
}

type distSampler struct {
	d interface {
		Rand() float64
		Mean() float64
	}
}

func (s distSampler) draw() time.Duration { return hoursToDuration(s.d.Rand()) }
func (s distSampler) mean() time.Duration { return hoursToDuration(s.d.Mean()) }

type fixedSampler time.Duration

func (f fixedSampler) draw() time.Duration { return time.Duration(f) }
func (f fixedSampler) mean() time.Duration { return time.Duration(f) }

// empiricalSampler picks day k with its share, then a uniform time within it.
type empiricalSampler struct {
	days distuv.Categorical
	rng  *rand.Rand
	avg  time.Duration
}

func (e empiricalSampler) draw() time.Duration {
	day := e.days.Rand()
	return hoursToDuration(24 * (day + e.rng.Float64()))
}
func (e empiricalSampler) mean() time.Duration { return e.avg }

func hoursToDuration(h float64) time.Duration {
	if h < 0 {
		return 0
	}
	if h > 1e6 {
		h = 1e6
	}
	return time.Duration(h * float64(time.Hour))
}

// newDelaySampler builds the scenario's pickup-delay distribution (in hours)
// with gonum's distuv, drawing from rng.
func newDelaySampler(pd scenarios.PickupDelay, rng *rand.Rand) (delaySampler, error) {
	switch pd.Distribution {
	case scenarios.DistExponential:
		return distSampler{distuv.Exponential{Rate: 1 / pd.Mean.Hours(), Src: rng}}, nil
	case scenarios.DistLognormal:
		mu := math.Log(pd.Median.Hours())
		sigma := (math.Log(pd.P90.Hours()) - mu) / z90
		return distSampler{distuv.LogNormal{Mu: mu, Sigma: sigma, Src: rng}}, nil
	case scenarios.DistGamma:
		shape := 1 / (pd.CV * pd.CV)
		return distSampler{distuv.Gamma{Alpha: shape, Beta: shape / pd.Mean.Hours(), Src: rng}}, nil
	case scenarios.DistEmpirical:
		cat := distuv.NewCategorical(pd.Days, rng)
		avg := 0.0
		for k, w := range pd.Days {
			avg += w * 24 * (float64(k) + 0.5)
		}
		return empiricalSampler{days: cat, rng: rng, avg: hoursToDuration(avg)}, nil
	case scenarios.DistFixed:
		return fixedSampler(pd.Value.D()), nil
	}
	return nil, fmt.Errorf("unknown pickup delay distribution %q", pd.Distribution)
}
