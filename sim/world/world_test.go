package world

import (
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/controller"
	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/lockertwin/lockertwin/sim"
	"github.com/stretchr/testify/require"
)

// TestShippedScenariosRunSound runs each shipped scenario (but the city) for
// a week and checks what must hold whatever the numbers: parcels are
// conserved, occupancy stays within capacity, the invariant checker saw
// nothing, and the figures are in range.
func TestShippedScenariosRunSound(t *testing.T) {
	for _, name := range scenarios.Shipped() {
		if name == "city-network.yaml" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			sc, _, err := scenarios.LoadShipped(name)
			require.NoError(t, err)
			sc.Duration = scenarios.Duration(7 * 24 * time.Hour)
			w, err := New(sc, Options{Seed: 5})
			require.NoError(t, err)
			r, err := w.Run()
			require.NoError(t, err)
			get := func(k string) float64 {
				v, ok := r.Get(k)
				require.True(t, ok, k)
				return v
			}
			offered, accepted, refused := get("offered"), get("accepted"), get("refused")
			require.Positive(t, offered)
			// Every parcel offered is accepted, refused or lost at a door
			// (counts missing from a result are zero), once, or is still on
			// its way at the end: waiting for a wave, on a redirect, at a
			// door. Those are at most a wave's worth, here under 3 %.
			failed, ok := r.Get("deposit_door_failures")
			if !ok {
				failed = 0
			}
			onTheWay := offered - accepted - refused - failed
			t.Logf("offered %v: accepted %v, refused %v, lost at a door %v, on the way %v", offered, accepted, refused, failed, onTheWay)
			require.GreaterOrEqual(t, onTheWay, 0.0, "a parcel counted twice")
			require.Less(t, onTheWay, 0.03*offered)
			require.InDelta(t, refused/offered, get("overflow_rate"), 1e-12)
			require.LessOrEqual(t, get("picked_up"), accepted+100) // warm-up parcels picked up in the horizon
			for _, c := range r.Classes {
				u := get("utilization_" + c)
				require.GreaterOrEqual(t, u, 0.0)
				require.LessOrEqual(t, u, 1.0)
			}
			require.LessOrEqual(t, get("dwell_hours_p50"), get("dwell_hours_p90"))
			// KPINames is what every replication reports, in order, and
			// CheckKPI knows the rest: the counts and alarms that occurred.
			var always, occasional []string
			for _, k := range r.KPIs {
				require.NoError(t, CheckKPI(sc, k.Name))
				if slices.Contains(occasionalCounts, k.Name) || strings.HasPrefix(k.Name, alarmPrefix) && k.Name != "alarms_total" {
					occasional = append(occasional, k.Name)
				} else {
					always = append(always, k.Name)
				}
			}
			require.Equal(t, KPINames(sc), always)
			t.Logf("occasional KPIs: %v", occasional)
			require.Len(t, r.Hours, 7*24)
			for _, h := range r.Hours {
				require.GreaterOrEqual(t, h.Utilization, 0.0)
				require.LessOrEqual(t, h.Utilization, 1.0)
			}
			// The invariant checker attached to every site saw every event.
			for _, s := range w.sites {
				require.NoError(t, s.checker.Err())
				require.Equal(t, s.checker.Deposited, s.checker.InLocker()+s.checker.PickedUp+s.checker.Returned+s.checker.Removed)
			}
		})
	}
}

// TestDelaySamplersMatchTheirParameters draws from each distribution and
// checks the parameters a planner wrote come back out.
func TestDelaySamplersMatchTheirParameters(t *testing.T) {
	quantile := func(xs []float64, q float64) float64 {
		sort.Float64s(xs)
		return xs[int(q*float64(len(xs)-1))]
	}
	draw := func(pd scenarios.PickupDelay) ([]float64, delaySampler) {
		s, err := newDelaySampler(pd, rand.New(rand.NewPCG(1, 2)))
		require.NoError(t, err)
		xs := make([]float64, 100_000)
		for i := range xs {
			xs[i] = s.draw().Hours()
		}
		return xs, s
	}
	h := func(d float64) scenarios.Duration { return scenarios.Duration(d * float64(time.Hour)) }

	xs, _ := draw(scenarios.PickupDelay{Distribution: scenarios.DistLognormal, Median: h(8.5), P90: h(49)})
	require.InDelta(t, 8.5, quantile(xs, 0.5), 0.3)
	require.InDelta(t, 49, quantile(xs, 0.9), 2)
	share5, share12 := 0, 0
	for _, x := range xs {
		if x <= 5 {
			share5++
		}
		if x <= 12 {
			share12++
		}
	}
	// The published figures the residential scenario is fitted to.
	require.InDelta(t, 0.35, float64(share5)/float64(len(xs)), 0.02)
	require.InDelta(t, 0.60, float64(share12)/float64(len(xs)), 0.02)

	xs, s := draw(scenarios.PickupDelay{Distribution: scenarios.DistExponential, Mean: h(12)})
	mean := 0.0
	for _, x := range xs {
		mean += x / float64(len(xs))
	}
	require.InDelta(t, 12, mean, 0.2)
	require.InDelta(t, 12, s.mean().Hours(), 1e-9)

	xs, _ = draw(scenarios.PickupDelay{Distribution: scenarios.DistGamma, Mean: h(18), CV: 0.9})
	mean, sq := 0.0, 0.0
	for _, x := range xs {
		mean += x / float64(len(xs))
		sq += x * x / float64(len(xs))
	}
	require.InDelta(t, 18, mean, 0.3)
	require.InDelta(t, 0.9, math.Sqrt(sq-mean*mean)/mean, 0.02)

	xs, _ = draw(scenarios.PickupDelay{Distribution: scenarios.DistEmpirical, Days: []float64{0.5, 0.2, 0.3}})
	days := [3]int{}
	for _, x := range xs {
		days[int(x/24)]++
	}
	require.InDelta(t, 0.5, float64(days[0])/float64(len(xs)), 0.01)
	require.InDelta(t, 0.3, float64(days[2])/float64(len(xs)), 0.01)

	xs, _ = draw(scenarios.PickupDelay{Distribution: scenarios.DistFixed, Value: h(3)})
	require.Equal(t, 3.0, xs[0])
	_, err := newDelaySampler(scenarios.PickupDelay{Distribution: "weibull"}, nil)
	require.Error(t, err)
}

func TestSketchQuantilesWithinOnePercent(t *testing.T) {
	s := NewSketch()
	rng := rand.New(rand.NewPCG(3, 4))
	xs := make([]float64, 50_000)
	for i := range xs {
		xs[i] = rng.ExpFloat64() * 10
		s.Add(xs[i])
	}
	s.Add(0)
	s.Add(-1)
	xs = append(xs, 0, 0)
	sort.Float64s(xs)
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99} {
		exact := xs[int(math.Ceil(q*float64(len(xs))))-1]
		require.InEpsilon(t, exact, s.Quantile(q), 0.011, "q=%v", q)
	}
	require.Equal(t, uint64(len(xs)), s.Count())
	other := NewSketch()
	other.Add(1000)
	s.Merge(other)
	require.Equal(t, 1000.0, s.Quantile(1))
	require.True(t, math.IsNaN(NewSketch().Quantile(0.5)))
	require.True(t, math.IsNaN(NewSketch().Mean()))
	hist := s.Histogram(50, 10)
	total := 0.0
	for _, v := range hist {
		total += v
	}
	require.Equal(t, float64(s.Count()), total)

	// Merging sketches of parts, in any order and over ranges that grow
	// either way, gives the sketch of the whole.
	whole, low, high := NewSketch(), NewSketch(), NewSketch()
	for i := range 2000 {
		v := math.Exp(float64((i*37+100)%200) / 10) // 1 … e^19.9, starting mid-range
		whole.Add(v)
		if i%3 == 0 {
			low.Add(v)
		} else {
			high.Add(v)
		}
	}
	merged := NewSketch()
	merged.Merge(high)
	merged.Merge(low)
	for _, q := range []float64{0.01, 0.3, 0.5, 0.9, 1} {
		require.Equal(t, whole.Quantile(q), merged.Quantile(q), "q=%v", q)
	}
	require.Equal(t, whole.Histogram(1e6, 20), merged.Histogram(1e6, 20))
}

// TestShardsRunTheSameWhateverRunsThem: a city block big enough for twenty
// shards and busy enough that couriers redirect parcels across the shard
// boundary (or, refusing instead, never exchange a parcel, so the shards run
// in one step). Run with its shards one after the other, and side by side
// on goroutines (under -race in make test), the results are identical;
// parcels are conserved at every site; redirected parcels went through the
// exchange.
func TestShardsRunTheSameWhateverRunsThem(t *testing.T) {
	src, err := os.ReadFile("../../scenarios/city-network.yaml")
	require.NoError(t, err)
	block := strings.NewReplacer("rows: 40", "rows: 10", "cols: 50", "cols: 20", "parcels_per_day: 60", "parcels_per_day: 100",
		"duration: 28d", "duration: 1d", "warmup: 2d", "warmup: 1d").Replace(string(src))
	for _, tt := range []struct {
		name     string
		text     string
		redirect bool
	}{
		{"redirecting", block, true},
		{"redirecting, couriers around the clock", strings.Replace(block, "delivery: waves", "delivery: individual", 1), true},
		{"refusing", strings.Replace(block, "on_full: nearest_site", "on_full: refuse", 1), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			run := func(parallel func(int, func(int))) (*World, *Result) {
				sc, problems, err := scenarios.Parse("block.yaml", []byte(tt.text))
				require.NoError(t, err)
				require.Empty(t, problems.Errors())
				require.Len(t, sc.Sites, 200)
				w, err := New(sc, Options{Seed: 3, Parallel: parallel})
				require.NoError(t, err)
				require.Len(t, w.shards, 20)
				r, err := w.Run()
				require.NoError(t, err)
				return w, r
			}
			wo, inOrder := run(nil)
			w, sideBySide := run(func(n int, f func(int)) {
				var wg sync.WaitGroup
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						f(i)
					}()
				}
				wg.Wait()
			})
			require.Equal(t, inOrder, sideBySide)
			// Stepped a minute at a time, as a live view does: shorter
			// windows than the world chooses, the same results. (Single
			// threaded: -short skips it under the race detector.)
			sc, _, err := scenarios.Parse("block.yaml", []byte(tt.text))
			require.NoError(t, err)
			if !testing.Short() {
				stepped, err := New(sc, Options{Seed: 3})
				require.NoError(t, err)
				for more := true; more; {
					more, err = stepped.RunUntil(time.Duration(stepped.now) + time.Minute)
					require.NoError(t, err)
				}
				require.Equal(t, inOrder, stepped.result())
			}
			fixed := int(sc.Warmup.D()+sc.Duration.D()) / int(sc.Couriers.RedirectSetup.D())
			switch {
			case tt.redirect && sc.Couriers.Delivery == scenarios.DeliveryWaves:
				// Steps as short as the redirect setup only while courier work is pending.
				require.Less(t, wo.steps, fixed/2)
				require.Greater(t, wo.steps, 2)
			case tt.redirect:
				// Couriers at work around the clock, but not every minute of it.
				require.LessOrEqual(t, wo.steps, fixed)
			default:
				require.Equal(t, 1, wo.steps)
			}
			legs, crossed := 0, 0
			for _, sh := range w.shards {
				legs += sh.legs
				crossed += sh.crossed
			}
			redirected, _ := sideBySide.Get("redirected")
			if tt.redirect {
				require.Positive(t, redirected)
				require.Positive(t, crossed, "some redirect legs crossed a shard boundary")
				if sc.Couriers.Delivery == scenarios.DeliveryWaves {
					// Thousands of legs: some stayed within their shard. (Around
					// the clock there are a hundred or so, and the nearest
					// neighbour with room, first up or down a row, is in
					// another shard.)
					require.Greater(t, legs, crossed, "and some stayed within their shard")
				}
			} else {
				require.Zero(t, redirected)
				refused, _ := sideBySide.Get("refused")
				require.Positive(t, refused, "the block is busy enough to refuse")
			}
			for _, s := range w.sites {
				require.NoError(t, s.checker.Err())
				require.Equal(t, s.checker.Deposited, s.checker.InLocker()+s.checker.PickedUp+s.checker.Returned+s.checker.Removed)
			}
			require.Equal(t, w.Events(), sideBySide.Events)
		})
	}
}

// TestAViolationIsReportedWithTheEventsBeforeIt: a run's checkers do not
// keep their last events (Recall), so a run that a violation stops is
// replayed with them kept, and the report is the replay's: the same
// violation, at the same simulated time, with the 16 events before it. A
// replay that does not stop there says the run is not deterministic.
func TestAViolationIsReportedWithTheEventsBeforeIt(t *testing.T) {
	sc, _, err := scenarios.LoadShipped("residential-tower.yaml")
	require.NoError(t, err)
	sc.Duration = scenarios.Duration(2 * 24 * time.Hour)
	for _, tt := range []struct {
		name          string
		replayAt      time.Duration // when the replay's fault is planted; 0: none
		deterministic bool
	}{
		{"the replay stops at the same event", 30 * time.Hour, true},
		{"the replay does not stop", 0, false},
		{"the replay stops elsewhere", 31 * time.Hour, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var built, forged int
			var recalled []bool
			inject := func(w *World) {
				built++
				s := w.shards[0].own[0]
				recalled = append(recalled, s.checker.Recall)
				at := 30 * time.Hour
				if built > 1 {
					at = tt.replayAt
				}
				if at == 0 {
					return
				}
				w.shards[0].eng.AtFunc(sim.FromDuration(at), func() {
					forged++
					s.checker.Check(&controller.Event{Kind: controller.DoorOpened, Seq: 1, Cabinet: 0, Compartment: 1, Command: "forged"})
				})
			}
			w, err := New(sc, Options{Seed: 7, inject: inject})
			require.NoError(t, err)
			_, err = w.Run()
			var v *controller.Violation
			require.ErrorAs(t, err, &v)
			require.Contains(t, err.Error(), "at simulated 1d06:00:00.000")
			require.Equal(t, []bool{false, true}, recalled, "the run did not recall, its replay did")
			if !tt.deterministic {
				require.Empty(t, v.Recent, "the first run's violation, which recalls nothing")
				require.Contains(t, err.Error(), "the run is not deterministic")
				return
			}
			require.Equal(t, 2, forged)
			require.Len(t, v.Recent, 16)
			require.Contains(t, err.Error(), "events before it:")
			require.NotContains(t, err.Error(), "not deterministic")
			for _, e := range v.Recent {
				require.LessOrEqual(t, e.At, Epoch.Add(30*time.Hour).UnixNano())
			}
		})
	}
}

func TestCheckKPIRefusesWhatNoRunReports(t *testing.T) {
	sc := &scenarios.Scenario{CompartmentClasses: []scenarios.CompartmentClass{{Name: "S"}, {Name: "M-cold"}}}
	tests := []struct {
		name, problem string
	}{
		{"overflow_rate", ""},
		{"utilization_M-cold", ""},
		{"deposit_door_failures", ""}, // a count reported when it occurs
		{"alarms_jam", ""},            // and an alarm kind
		{"alarms_firmware_crc", ""},   // cabinets name their own faults
		{"overflow", `unknown KPI "overflow" (did you mean "overflow_rate"?)`},
		{"utilization_L", `unknown KPI "utilization_L" (did you mean "utilization_S"?)`},
		{"alarms_", `unknown KPI "alarms_" (did you mean one of "alarms_total", "alarms_<kind>"?)`},
		{"dwell_hours", `unknown KPI "dwell_hours" (did you mean one of "dwell_hours_mean", "dwell_hours_p50", "dwell_hours_p90"?)`},
		{"utilisation_S", `unknown KPI "utilisation_S" (did you mean "utilization_S"?)`},
		{"", `unknown KPI "" (known: offered, accepted, `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckKPI(sc, tt.name)
			if tt.problem == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.problem)
		})
	}
}

// TestTempExcursionHoursAreTheExcursionsInTheHorizon checks the chilled
// KPI against the events themselves: the hours from each temp_out_of_range
// alarm to the alarm_cleared of its place, cut to the measured horizon
// (an excursion still open at the end counts to the end). A temperature
// back in range is not an alarm.
func TestTempExcursionHoursAreTheExcursionsInTheHorizon(t *testing.T) {
	sc, _, err := scenarios.LoadShipped("grocery-chilled.yaml")
	require.NoError(t, err)
	sc.Duration = scenarios.Duration(14 * 24 * time.Hour)
	type place struct {
		site      string
		cab, comp int32
	}
	open := map[place]int64{}
	var spans [][2]int64
	raised := 0
	// The parcels an excursion reaches, as the events tell them: the one
	// behind the compartment's closed door when it warms (not one whose
	// door is open for its recipient), and one deposited while it is warm.
	held, handing, exposed, left := map[place]string{}, map[place]bool{}, map[string]bool{}, 0
	start := Epoch.Add(time.Duration(sc.Warmup)).UnixNano()
	w, err := New(sc, Options{Seed: 7, Observer: func(site string, e *controller.Event) {
		at := place{site, e.Cabinet, e.Compartment}
		switch {
		case e.Kind == controller.Deposited:
			held[at] = e.Parcel
			if _, warm := open[at]; warm {
				exposed[e.Parcel] = true
			}
		case e.Kind == controller.DoorOpened && held[at] != "":
			handing[at] = true
		case e.Kind == controller.PickupAborted:
			handing[at] = false // left in, door closed
		case e.Kind == controller.PickedUp || e.Kind == controller.Returned ||
			e.Kind == controller.ExceptionResolved && e.Text == string(controller.ResolveRemoved):
			if held[at] == e.Parcel && e.Parcel != "" {
				delete(held, at)
				delete(handing, at)
				if exposed[e.Parcel] && e.At >= start {
					left++
				}
			}
		case e.Kind == controller.AlarmRaised && e.Text == "temp_out_of_range":
			require.GreaterOrEqual(t, e.Compartment, int32(0), "the virtual cabinets warm one compartment at a time")
			raised++
			if id := held[at]; id != "" && !handing[at] {
				exposed[id] = true
			}
			if _, ok := open[at]; !ok {
				open[at] = e.At
			}
		case e.Kind == controller.AlarmCleared:
			from, ok := open[at]
			require.True(t, ok, "a clearing follows its alarm")
			spans = append(spans, [2]int64{from, e.At})
			delete(open, at)
		}
	}})
	require.NoError(t, err)
	r, err := w.Run()
	require.NoError(t, err)

	end := Epoch.Add(time.Duration(sc.Warmup + sc.Duration)).UnixNano()
	for _, from := range open {
		spans = append(spans, [2]int64{from, end})
	}
	want := 0.0
	for _, s := range spans {
		require.Less(t, s[0], s[1], "an excursion lasts")
		if lo, hi := max(s[0], start), min(s[1], end); hi > lo {
			want += time.Duration(hi - lo).Hours()
		}
	}
	require.GreaterOrEqual(t, raised, 3, "the scenario's doors left open warm chilled compartments")
	got, ok := r.Get("temp_excursion_hours")
	require.True(t, ok)
	t.Logf("%d excursions, %.3f compartment-hours in the horizon", raised, got)
	require.Positive(t, got)
	require.InDelta(t, want, got, 1e-9*want)
	_, ok = r.Get("alarms_temperature")
	require.False(t, ok, "back in range is not an alarm")

	gotExposed, ok := r.Get("parcels_temp_exposed")
	require.True(t, ok)
	t.Logf("%d parcels in the locker during an excursion, %d of them left it in the horizon", len(exposed), left)
	require.Positive(t, left, "doors left open on chilled parcels")
	require.Equal(t, float64(left), gotExposed)
}

// TestAReminderHurriesButNeverDelays: recipients who answer a reminder
// come within a few hours of it, unless they were coming sooner anyway.
// Every recipient here comes 24.5 h after the notice and answers every
// reminder (sent at 24 h): a reminder that replaced their visit put four
// in five of them later than 24.5 h.
func TestAReminderHurriesButNeverDelays(t *testing.T) {
	for _, tt := range []struct {
		name     string
		drawn    time.Duration
		p50, p90 [2]float64 // bounds on the pickup delay's quantiles, hours
	}{
		// The reminder comes before the drawn visit, which stays: nobody is later.
		{"coming half an hour after the reminder", 24*time.Hour + 30*time.Minute, [2]float64{24.2, 24.6}, [2]float64{24.2, 24.6}},
		// Coming in six hours: the reminder brings them forward, ~exp(2 h).
		{"coming six hours after the reminder", 30 * time.Hour, [2]float64{24.9, 25.8}, [2]float64{27.9, 29.4}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc, _, err := scenarios.LoadShipped("residential-tower.yaml")
			require.NoError(t, err)
			sc.Duration = scenarios.Duration(14 * 24 * time.Hour)
			sc.Recipients.PickupDelay = scenarios.PickupDelay{Distribution: scenarios.DistFixed, Value: scenarios.Duration(tt.drawn)}
			sc.Recipients.NoShowShare, sc.Recipients.ReminderResponse = 0, 1
			require.Equal(t, 24*time.Hour, time.Duration(sc.Policy.ReminderAfter))
			w, err := New(sc, Options{Seed: 3})
			require.NoError(t, err)
			r, err := w.Run()
			require.NoError(t, err)
			p50, _ := r.Get("pickup_delay_hours_p50")
			p90, _ := r.Get("pickup_delay_hours_p90")
			t.Logf("pickup delay p50 %.2f h, p90 %.2f h", p50, p90)
			require.InDelta(t, (tt.p50[0]+tt.p50[1])/2, p50, (tt.p50[1]-tt.p50[0])/2)
			require.InDelta(t, (tt.p90[0]+tt.p90[1])/2, p90, (tt.p90[1]-tt.p90[0])/2)
		})
	}
}
