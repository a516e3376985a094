package runner_test

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/lockertwin/lockertwin/sim/report"
	. "github.com/lockertwin/lockertwin/sim/runner"
	"github.com/lockertwin/lockertwin/sim/world"
	"github.com/stretchr/testify/require"
)

// erlangB is the loss probability of an M/G/C/C system with offered load a
// Erlangs: B(0) = 1, B(c) = a·B(c−1) / (c + a·B(c−1)).
func erlangB(c int, a float64) float64 {
	b := 1.0
	for k := 1; k <= c; k++ {
		b = a * b / (float64(k) + a*b)
	}
	return b
}

func TestErlangBFormula(t *testing.T) {
	require.InDelta(t, 0.1217, erlangB(10, 8), 1e-4) // textbook table value
	require.InDelta(t, 0.5, erlangB(1, 1), 1e-12)
}

// lossScenario: one class of C compartments, Poisson arrivals at a flat
// rate, individual deliveries, no expiry, no faults, refusal when full.
// That is an M/G/C/C loss system; the dwell is the pickup delay.
func lossScenario(t *testing.T, c int, perDay float64, delay string) *scenarios.Scenario {
	src := fmt.Sprintf(`version: 1
name: erlang
duration: 400d
warmup: 10d
seed: 9
replications: 8
compartment_classes: [{name: S, width_mm: 380, height_mm: 80, depth_mm: 640}]
cabinet_models: [{name: bank, compartments: {S: %d}}]
sites: [{id: a, cabinets: [{model: bank, count: 1}]}]
demand: {parcels_per_day: %g, size_mix: {S: 1}}
recipients: {pickup_delay: %s}
couriers: {delivery: individual, on_full: refuse}
policy: {allocator: first-fit, pickup_window: none, reminder_after: none}
`, c, perDay, delay)
	s, _, err := scenarios.Parse("erlang.yaml", []byte(src))
	require.NoError(t, err)
	return s
}

// TestOverflowMatchesErlangB: the refused share equals Erlang's B(C, λ·E[D])
// whatever the dwell distribution (the insensitivity of M/G/C/C), within
// the replications' confidence interval. Little's law is checked on the
// same runs: occupancy = accepted rate × mean dwell.
func TestOverflowMatchesErlangB(t *testing.T) {
	const c, perDay = 10, 16.0
	mu := math.Log(12) - 0.5 // lognormal with σ = 1 and mean 12 h
	tests := []struct {
		name      string
		delay     string
		meanHours float64
	}{
		{"exponential", "{distribution: exponential, mean: 12h}", 12},
		{"lognormal", fmt.Sprintf("{distribution: lognormal, median: %ds, p90: %ds}",
			int(math.Round(math.Exp(mu)*3600)), int(math.Round(math.Exp(mu+1.2815515655446004)*3600))), 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Run(lossScenario(t, c, perDay, tt.delay), Options{})
			require.NoError(t, err)
			load := perDay / 24 * tt.meanHours
			want := erlangB(c, load)
			got, _ := out.Get("overflow_rate")
			t.Logf("overflow %.4f [%.4f, %.4f], Erlang B(%d, %.1f) = %.4f", got.Mean, got.Low, got.High, c, load, want)
			require.GreaterOrEqual(t, want, got.Low, "theory below the 95%% interval")
			require.LessOrEqual(t, want, got.High, "theory above the 95%% interval")
			require.Less(t, got.High-got.Low, 0.02, "interval too wide to test anything")

			// Little: L = λ W per replication, on deposits and dwell of the
			// measured horizon (edge effects are W/T ≈ 0.1 %).
			occ, _ := out.Get("occupancy_mean")
			acc, _ := out.Get("accepted")
			dwell, _ := out.Get("dwell_hours_mean")
			hours := out.Scenario.Duration.Hours()
			diffs := make([]float64, len(occ.Values))
			for i := range diffs {
				diffs[i] = occ.Values[i] - acc.Values[i]/hours*dwell.Values[i]
			}
			d := DiffInterval("little", diffs)
			t.Logf("L − λW = %.4f [%.4f, %.4f] with L = %.3f", d.Mean, d.Low, d.High, occ.Mean)
			require.Less(t, math.Abs(d.Mean)/occ.Mean, 0.01, "Little's law off by more than 1 %%")
			require.InDelta(t, tt.meanHours, dwell.Mean, 0.5, "mean dwell is the mean pickup delay")
		})
	}
}

// TestSeasonsThatOverlapMultiply: demand is a Poisson process whose rate
// the seasons scale, and seasons that overlap multiply. With a flat rate of
// 100 a day over 40 days, ×2 from day 10 to 30 and ×3 more from day 20 to
// 30, a run offers 100 × (10 + 10·2 + 10·6 + 10) = 10,000 parcels, give or
// take 100 (one standard deviation). Arrivals are drawn by thinning, whose
// bound once took the largest factor instead of the largest product: the
// overlap then had a rate of ×3, not ×6, and the run offered about 7,000.
func TestSeasonsThatOverlapMultiply(t *testing.T) {
	src := `version: 1
name: seasons
duration: 40d
seed: 5
compartment_classes: [{name: S, width_mm: 380, height_mm: 80, depth_mm: 640}]
cabinet_models: [{name: bank, compartments: {S: 512}}]
sites: [{id: a, cabinets: [{model: bank, count: 1}]}]
demand:
  parcels_per_day: 100
  size_mix: {S: 1}
  seasonality: [{from: 10d, to: 30d, factor: 2}, {from: 20d, to: 30d, factor: 3}]
recipients: {pickup_delay: {distribution: fixed, value: 1h}}
couriers: {delivery: individual, on_full: refuse}
policy: {allocator: first-fit, pickup_window: none, reminder_after: none}
`
	sc, _, err := scenarios.Parse("seasons.yaml", []byte(src))
	require.NoError(t, err)
	require.Equal(t, 6.0, sc.Demand.PeakSeasonFactor())
	out, err := Run(sc, Options{})
	require.NoError(t, err)
	offered, _ := out.Get("offered")
	t.Logf("offered %.0f, expected 10000 ± 100", offered.Mean)
	require.InDelta(t, 10_000, offered.Mean, 400, "four standard deviations")
}

// TestSameSeedSameOutputs: two runs of a seed give byte-identical outputs
// outside the engine block.
func TestSameSeedSameOutputs(t *testing.T) {
	sc, _, err := scenarios.LoadShipped("grocery-chilled.yaml")
	require.NoError(t, err)
	sc.Duration = scenarios.Duration(7 * 24 * 3600e9)
	sc.Replications = 3
	render := func(workers int) (report.Summary, []byte, []byte) {
		out, err := Run(sc, Options{Workers: workers})
		require.NoError(t, err)
		s := report.NewSummary(out)
		s.Engine = report.Engine{}
		html, err := report.HTML(out, []byte("scenario"))
		require.NoError(t, err)
		return s, report.Timeseries(out), html
	}
	s1, ts1, html1 := render(1)
	s2, ts2, html2 := render(3)
	require.Equal(t, s1, s2, "summary, whatever the parallelism")
	require.True(t, bytes.Equal(ts1, ts2), "timeseries.csv")
	require.True(t, bytes.Equal(html1, html2), "report.html")
	other := *sc
	other.Seed++
	out, err := Run(&other, Options{})
	require.NoError(t, err)
	s3 := report.NewSummary(out)
	s3.Engine = report.Engine{}
	require.NotEqual(t, s1.KPIs, s3.KPIs, "another seed, other numbers")
}

func TestReplicationSeedsAreDerived(t *testing.T) {
	a, b := ReplicationSeed(42, 0), ReplicationSeed(42, 1)
	require.NotEqual(t, a, b)
	require.Equal(t, a, ReplicationSeed(42, 0))
	require.NotEqual(t, uint64(42), a)
}

func TestIntervalEdgeCases(t *testing.T) {
	one := Interval("x", []float64{3})
	require.Equal(t, Stat{Name: "x", Mean: 3, Low: 3, High: 3, Values: []float64{3}}, one)
	require.True(t, math.IsNaN(Interval("x", nil).Mean))
	counts := Interval("x", []float64{0, 0, 0, 4})
	require.Equal(t, 0.0, counts.Low, "counts are not negative")
	neg := Interval("x", []float64{-1, 1})
	require.Less(t, neg.Low, -1.0)
	share := Interval("utilization", []float64{0.99, 0.5, 0.98})
	require.Equal(t, 1.0, share.High, "a share is at most 1")
	// A quantile from the sketch is known to half a bucket either way:
	// replications in one bucket do not make an interval of zero width.
	q := Interval("dwell_hours_p50", []float64{8.71, 8.71})
	require.Equal(t, 8.71, q.Mean)
	require.InDelta(t, 8.71/math.Sqrt(1.01), q.Low, 1e-12)
	require.InDelta(t, 8.71*math.Sqrt(1.01), q.High, 1e-12)
	for name, want := range map[string]bool{"door_rtt_ms_p99": true, "pickup_delay_hours_p90": true,
		"dwell_hours_mean": false, "alarms_total": false, "x_p": false, "utilization_p1x": false, "utilization_p90": false} {
		require.Equal(t, want, Interval(name, []float64{2, 2}).Low < 2, name)
	}

	// Differences are not counts: all three positive, and still an
	// interval that spans 0, symmetric about the mean.
	d := DiffInterval("utilization_L", []float64{0, 0.0216, 0})
	require.InDelta(t, 0.0072, d.Mean, 1e-12)
	require.Less(t, d.Low, 0.0)
	require.InDelta(t, d.Mean-d.Low, d.High-d.Mean, 1e-12)
	require.Equal(t, Interval("x", []float64{-1, 1}), DiffInterval("x", []float64{-1, 1}), "the same where nothing is kept")
}

// TestSummaryKeepsTheKPIsInReportedOrder: an alarm kind one replication
// did not raise sits with the other alarms in the summary (so in the table
// and the report), not after alarms_total; its mean counts that
// replication as zero.
func TestSummaryKeepsTheKPIsInReportedOrder(t *testing.T) {
	result := func(names ...string) *world.Result {
		r := &world.Result{}
		for _, n := range names {
			r.KPIs = append(r.KPIs, world.KPI{Name: n, Value: 2})
		}
		return r
	}
	results := []*world.Result{
		result("offered", "alarms_jam", "alarms_total"),
		result("offered", "deposit_door_failures", "alarms_command_failed", "alarms_jam", "alarms_total"),
		result("offered", "alarms_jam", "alarms_sequence_gap", "alarms_total"),
	}
	var names []string
	for _, s := range Summarise(results) {
		names = append(names, s.Name)
		if s.Name == "alarms_command_failed" {
			require.InDelta(t, 2.0/3, s.Mean, 1e-12, "zero where it was not raised")
		}
	}
	require.Equal(t, []string{"offered", "deposit_door_failures", "alarms_command_failed", "alarms_jam", "alarms_sequence_gap", "alarms_total"}, names)
}
