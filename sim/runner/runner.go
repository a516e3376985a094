// Package runner runs a scenario's replications in parallel, each a
// deterministic world with a seed derived from the scenario's, and
// summarises their KPIs with confidence intervals.
package runner

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/lockertwin/lockertwin/sim"
	"github.com/lockertwin/lockertwin/sim/world"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Options tune a run.
type Options struct {
	Replications int    // 0: the scenario's
	Policy       string // "": the scenario's allocator
	Workers      int    // 0: GOMAXPROCS
	// Progress, if set, is called after each replication with the number done.
	Progress func(done, total int)
}

// Output is a run's results: one Result per replication, in order.
type Output struct {
	Scenario     *scenarios.Scenario
	Policy       string
	Seeds        []uint64
	Results      []*world.Result
	Summary      []Stat
	WallSeconds  float64
	Events       uint64
	Parcels      int
	Replications int
	Workers      int // replications run side by side (Options.Workers, or one per core)
}

// Stat is a KPI over replications: mean and 95 % confidence interval.
type Stat struct {
	Name            string
	Mean, Low, High float64
	Values          []float64 // per replication
}

// ReplicationSeed is the seed of replication i of a scenario seed: derived,
// so replications are independent and any one can be rerun alone.
func ReplicationSeed(seed uint64, i int) uint64 {
	return sim.NewStreams(seed).Derive("replication", uint64(i)).Seed()
}

// Run simulates every replication and summarises them.
func Run(sc *scenarios.Scenario, opts Options) (*Output, error) {
	n := opts.Replications
	if n <= 0 {
		n = sc.Replications
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	policy := opts.Policy
	if policy == "" {
		policy = sc.Policy.Allocator
	}
	out := &Output{Scenario: sc, Policy: policy, Replications: n, Workers: workers, Seeds: make([]uint64, n), Results: make([]*world.Result, n)}
	for i := range out.Seeds {
		out.Seeds[i] = ReplicationSeed(sc.Seed, i)
	}
	// Fewer replications than workers: the spare cores run the shards of a
	// replication side by side (the results are the same either way).
	var parallel func(int, func(int))
	if n < workers {
		parallel = func(k int, f func(int)) { runShards(k, workers, f) }
	}
	errs := make([]error, n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	start := time.Now() // wall time only for the engine block, never in results
	for k := 0; k < min(workers, n); k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				w, err := world.New(sc, world.Options{Seed: out.Seeds[i], Policy: opts.Policy, Parallel: parallel})
				if err == nil {
					out.Results[i], err = w.Run()
				}
				if err != nil {
					errs[i] = fmt.Errorf("replication %d: %w", i, err)
				}
				mu.Lock()
				done++
				if opts.Progress != nil {
					opts.Progress(done, n)
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	out.WallSeconds = time.Since(start).Seconds()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	for _, r := range out.Results {
		out.Events += r.Events
		out.Parcels += r.Parcels
	}
	out.Summary = Summarise(out.Results)
	return out, nil
}

// runShards runs f(0) … f(k-1) on up to workers goroutines and waits for
// them all.
func runShards(k, workers int, f func(int)) {
	var next atomic.Int64
	work := func() {
		for i := int(next.Add(1) - 1); i < k; i = int(next.Add(1) - 1) {
			f(i)
		}
	}
	var wg sync.WaitGroup
	for range min(k, workers) - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
}

// Summarise computes each KPI's mean and 95 % confidence interval over
// replications (Student's t with n−1 degrees of freedom). With one
// replication the interval is the point itself. KPIs keep the order the
// replications report them in (MergeOrder); a KPI missing from a
// replication (an alarm kind that did not occur) counts as zero there.
func Summarise(results []*world.Result) []Stat {
	lists := make([][]string, len(results))
	for i, r := range results {
		for _, k := range r.KPIs {
			lists[i] = append(lists[i], k.Name)
		}
	}
	names := MergeOrder(lists...)
	stats := make([]Stat, 0, len(names))
	for _, name := range names {
		vals := make([]float64, len(results))
		for i, r := range results {
			if v, ok := r.Get(name); ok {
				vals[i] = v
			}
		}
		stats = append(stats, Interval(name, vals))
	}
	return stats
}

// MergeOrder merges lists of names (KPIs, each list in the order one run
// reports them) into one, in the first list's order. A name only a later
// list has goes just before the name it precedes there, so that an alarm
// kind one replication did not raise still sits with the other alarms,
// not after alarms_total.
func MergeOrder(lists ...[]string) []string {
	var names []string
	for _, list := range lists {
		at := len(names) // where a name of list that names lacks goes
		for j := len(list) - 1; j >= 0; j-- {
			if i := slices.Index(names, list[j]); i >= 0 {
				at = i
			} else {
				names = slices.Insert(names, at, list[j])
			}
		}
	}
	return names
}

// Interval is the mean and 95 % t-interval of a KPI's values over
// replications, kept within what the KPI can be: not below 0 for a KPI
// none of whose values is negative (a count, a share), not above 1 for a
// share.
func Interval(name string, vals []float64) Stat {
	s := DiffInterval(name, vals)
	if len(vals) < 2 || math.IsNaN(s.Mean) {
		return s
	}
	if s.Low < 0 && !anyNegative(vals) {
		s.Low = 0 // a count or a share cannot be negative
	}
	if isShare(name) && s.High > 1 {
		s.High = 1
	}
	if isQuantile(name) {
		// Each replication's quantile is read from a sketch bucket: the
		// interval also spans that resolution, so that replications
		// agreeing to within a bucket do not claim an exact figure.
		s.Low /= world.QuantileResolution
		s.High *= world.QuantileResolution
	}
	return s
}

// isQuantile names the KPIs read from a sketch's quantiles (dwell_hours_p90,
// door_rtt_ms_p99, ...): not a class's utilisation, whatever the class is
// called.
func isQuantile(name string) bool {
	if isShare(name) {
		return false
	}
	i := strings.LastIndex(name, "_p")
	if i < 0 || i+2 == len(name) {
		return false
	}
	for _, c := range name[i+2:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// DiffInterval is the mean and 95 % t-interval of values (Student's t
// with n−1 degrees of freedom), not kept to any range: for differences,
// such as a policy's KPI minus the baseline's on the same seeds, which may
// all be positive on a few replications while their interval spans 0.
func DiffInterval(name string, vals []float64) Stat {
	s := Stat{Name: name, Values: vals}
	if len(vals) == 0 {
		s.Mean, s.Low, s.High = math.NaN(), math.NaN(), math.NaN()
		return s
	}
	mean, sd := stat.MeanStdDev(vals, nil)
	if len(vals) == 1 || math.IsNaN(sd) {
		s.Mean, s.Low, s.High = mean, mean, mean
		return s
	}
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(len(vals) - 1)}.Quantile(0.975)
	half := t * sd / math.Sqrt(float64(len(vals)))
	s.Mean, s.Low, s.High = mean, mean-half, mean+half
	return s
}

// Get returns a KPI's summary by name.
func (o *Output) Get(name string) (Stat, bool) {
	for _, s := range o.Summary {
		if s.Name == name {
			return s, true
		}
	}
	return Stat{}, false
}

func anyNegative(vals []float64) bool {
	for _, v := range vals {
		if v < 0 {
			return true
		}
	}
	return false
}

// isShare names the KPIs that are fractions in [0, 1].
func isShare(name string) bool {
	return name == "overflow_rate" || name == "utilization" || strings.HasPrefix(name, "utilization_")
}
