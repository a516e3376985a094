// Package report writes a run's outputs: summary.json (schema
// lockertwin/summary/v1), timeseries.csv (hourly) and report.html, one
// self-contained page with inline SVG plots. Everything but summary.json's
// engine block is a pure function of the run's results, so the same
// scenario and seed give byte-identical files.
package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lockertwin/lockertwin/sim/runner"
	"github.com/lockertwin/lockertwin/sim/world"
)

// SummarySchema names the summary.json format.
const SummarySchema = "lockertwin/summary/v1"

// Summary is summary.json.
type Summary struct {
	Schema        string              `json:"schema"`
	Scenario      string              `json:"scenario"`
	Policy        string              `json:"policy"`
	Seed          uint64              `json:"seed"`
	Replications  int                 `json:"replications"`
	DurationHours float64             `json:"duration_hours"`
	WarmupHours   float64             `json:"warmup_hours"`
	KPIs          map[string]Interval `json:"kpis"`
	Engine        Engine              `json:"engine"`
}

// Interval is a KPI's mean and 95 % confidence interval. One replication
// has no interval: its bounds are null, as the table and the report leave
// them blank, rather than equal to the mean, which would claim an exact
// figure.
type Interval struct {
	Mean     float64  `json:"mean"`
	CI95Low  *float64 `json:"ci95_low"`
	CI95High *float64 `json:"ci95_high"`
}

// Engine is how fast the run went: the only part that varies run to run.
type Engine struct {
	Events            uint64  `json:"events"`
	WallSeconds       float64 `json:"wall_seconds"`
	EventsPerSecond   float64 `json:"events_per_second"`
	ParcelsPerSecond  float64 `json:"parcels_per_second"`
	ReplicationsCores int     `json:"workers"`
	// Shards is how many parts each replication ran in (fixed by the
	// scenario's size: the results do not depend on it being run in parallel).
	Shards int `json:"shards"`
}

// NewSummary builds summary.json's content.
func NewSummary(out *runner.Output) Summary {
	s := Summary{
		Schema: SummarySchema, Scenario: out.Scenario.Name, Policy: out.Policy, Seed: out.Scenario.Seed,
		Replications: out.Replications, DurationHours: out.Scenario.Duration.Hours(), WarmupHours: out.Scenario.Warmup.Hours(),
		KPIs: map[string]Interval{},
		Engine: Engine{Events: out.Events, WallSeconds: round(out.WallSeconds, 3), ReplicationsCores: out.Workers,
			Shards: world.ShardCount(out.Scenario)},
	}
	if out.WallSeconds > 0 {
		s.Engine.EventsPerSecond = math.Round(float64(out.Events) / out.WallSeconds)
		s.Engine.ParcelsPerSecond = math.Round(float64(out.Parcels) / out.WallSeconds)
	}
	for _, st := range out.Summary {
		iv := Interval{Mean: round(st.Mean, 6)}
		if out.Replications > 1 {
			low, high := round(st.Low, 6), round(st.High, 6)
			iv.CI95Low, iv.CI95High = &low, &high
		}
		s.KPIs[st.Name] = iv
	}
	return s
}

// round keeps JSON stable and readable: 6 significant decimals.
func round(v float64, places int) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

// CheckWritable makes sure dir exists and can take files, before a run.
func CheckWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".lockersim-*")
	if err != nil {
		return fmt.Errorf("output directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// Files are the paths written by Write.
type Files struct {
	Summary, Timeseries, Report string
}

// Write writes the three outputs into dir.
func Write(dir string, out *runner.Output, scenarioSource []byte) (Files, error) {
	files := Files{
		Summary:    filepath.Join(dir, "summary.json"),
		Timeseries: filepath.Join(dir, "timeseries.csv"),
		Report:     filepath.Join(dir, "report.html"),
	}
	summary, err := json.MarshalIndent(NewSummary(out), "", "  ")
	if err != nil {
		return files, err
	}
	if err := os.WriteFile(files.Summary, append(summary, '\n'), 0o644); err != nil {
		return files, fmt.Errorf("writing summary: %w", err)
	}
	if err := os.WriteFile(files.Timeseries, Timeseries(out), 0o644); err != nil {
		return files, fmt.Errorf("writing time series: %w", err)
	}
	html, err := HTML(out, scenarioSource)
	if err != nil {
		return files, fmt.Errorf("rendering report: %w", err)
	}
	if err := os.WriteFile(files.Report, html, 0o644); err != nil {
		return files, fmt.Errorf("writing report: %w", err)
	}
	return files, nil
}

// meanHours averages the replications' hourly rows.
func meanHours(out *runner.Output) []world.HourRow {
	if len(out.Results) == 0 {
		return nil
	}
	n := len(out.Results[0].Hours)
	classes := len(out.Results[0].Classes)
	rows := make([]world.HourRow, n)
	reps := float64(len(out.Results))
	type acc struct{ arr, dep, ref, pick float64 }
	sums := make([]acc, n)
	for i := range rows {
		rows[i].Hour = i
		rows[i].Occupancy = make([]float64, classes)
	}
	for _, r := range out.Results {
		for i := 0; i < n && i < len(r.Hours); i++ {
			h := r.Hours[i]
			for c := range h.Occupancy {
				rows[i].Occupancy[c] += h.Occupancy[c] / reps
			}
			rows[i].Utilization += h.Utilization / reps
			sums[i].arr += float64(h.Arrivals)
			sums[i].dep += float64(h.Deposits)
			sums[i].ref += float64(h.Refusals)
			sums[i].pick += float64(h.Pickups)
		}
	}
	for i := range rows {
		rows[i].Arrivals = int(math.Round(sums[i].arr / reps))
		rows[i].Deposits = int(math.Round(sums[i].dep / reps))
		rows[i].Refusals = int(math.Round(sums[i].ref / reps))
		rows[i].Pickups = int(math.Round(sums[i].pick / reps))
	}
	return rows
}

// Timeseries renders timeseries.csv: per measured hour, the mean over
// replications of occupied compartments per class, utilisation, and the
// hour's arrivals, deposits, refusals and pickups.
func Timeseries(out *runner.Output) []byte {
	var b bytes.Buffer
	classes := out.Results[0].Classes
	b.WriteString("hour,time")
	for _, c := range classes {
		b.WriteString(",occupied_" + c)
	}
	b.WriteString(",utilization,arrivals,deposits,refusals,pickups\n")
	start := world.Epoch.Add(out.Scenario.Warmup.D())
	for _, row := range meanHours(out) {
		b.WriteString(strconv.Itoa(row.Hour))
		b.WriteByte(',')
		b.WriteString(start.Add(time.Duration(row.Hour) * time.Hour).Format(time.RFC3339))
		for _, v := range row.Occupancy {
			b.WriteByte(',')
			b.WriteString(strconv.FormatFloat(v, 'f', 3, 64))
		}
		fmt.Fprintf(&b, ",%s,%d,%d,%d,%d\n", strconv.FormatFloat(row.Utilization, 'f', 4, 64),
			row.Arrivals, row.Deposits, row.Refusals, row.Pickups)
	}
	return b.Bytes()
}

// Table renders the KPI table for a terminal.
func Table(out *runner.Output) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s — policy %s, seed %d, %d replication(s), %v measured after %v warm-up\n\n",
		out.Scenario.Name, out.Policy, out.Scenario.Seed, out.Replications, out.Scenario.Duration, out.Scenario.Warmup)
	fmt.Fprintf(&b, "%-30s %14s   %s\n", "KPI", "mean", "95% CI")
	for _, s := range out.Summary {
		mean, low, high := rounded(s.Mean, s.Low, s.High)
		ci := ""
		if out.Replications > 1 {
			ci = fmt.Sprintf("[%s, %s]", low, high)
		}
		fmt.Fprintf(&b, "%-30s %14s   %s\n", s.Name, mean, ci)
	}
	return b.String()
}

// Num formats a figure for people, as the KPI table does: whole numbers as
// such, otherwise with about four significant digits.
func Num(v float64) string { return num(v) }

// Difference formats a difference and its 95 % interval, "+0.16 [-0.42,
// +0.74]": all three signed and rounded as the KPI table rounds. A bound just
// below zero keeps its sign, "-0.0": it says the interval ends short of
// zero, which is what a reader of a difference looks for.
func Difference(mean, low, high float64) string {
	m, lo, hi := rounded(mean, low, high)
	return fmt.Sprintf("%s [%s, %s]", signed(m), signed(lo), signed(hi))
}

// Signed formats a difference that has no interval (one replication):
// "+1", "-0.0125".
func Signed(v float64) string { return signed(num(v)) }

func signed(s string) string {
	if s[0] != '-' {
		return "+" + s
	}
	return s
}

// rounded formats a figure and its interval to one decimal place, the one
// that gives the interval's half-width two significant digits: more digits
// would be noise the interval already disowns ("26.2 [13.46, 38.94]" is
// "26 [13, 39]"), and %g's own choice per number mixed "+7.275e-05" with
// "-0.002462". An interval of no width (one replication, or the same value
// in every one) keeps the figure's own digits, as num gives them.
func rounded(mean, low, high float64) (m, lo, hi string) {
	half := (high - low) / 2
	if !(half > 0) || math.IsInf(half, 0) {
		return num(mean), num(low), num(high)
	}
	decimals := min(max(1-int(math.Floor(math.Log10(half))), 0), 9)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', decimals, 64) }
	return f(mean), f(low), f(high)
}

// num formats a figure for people: whole numbers as such, otherwise with
// about four significant digits.
func num(v float64) string {
	a := math.Abs(v)
	var s string
	switch {
	case v == math.Trunc(v) && a < 1e12:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 4, 64)
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
