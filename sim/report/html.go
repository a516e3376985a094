package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"strconv"
	"strings"

	"github.com/lockertwin/lockertwin/sim/runner"
	"github.com/lockertwin/lockertwin/sim/world"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Okabe–Ito: a palette that colour-blind readers can tell apart.
var palette = []color.RGBA{
	{0, 114, 178, 255}, {230, 159, 0, 255}, {0, 158, 115, 255}, {204, 121, 167, 255},
	{86, 180, 233, 255}, {213, 94, 0, 255}, {240, 228, 66, 255}, {0, 0, 0, 255},
}

func svg(p *plot.Plot, w, h vg.Length) (template.HTML, error) {
	c := vgsvg.New(w, h)
	p.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return "", err
	}
	s := b.String()
	if i := strings.Index(s, "<svg"); i > 0 {
		s = s[i:] // drop the XML prolog: inline in HTML
	}
	return template.HTML(s), nil
}

func occupancyPlot(out *runner.Output, rows []world.HourRow) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Utilisation per class over time (mean of replications)"
	ax := timeAxisFor(len(rows))
	p.X.Label.Text = ax.label()
	p.Y.Label.Text = "occupied share of the class" // longer is cut off at 9 cm
	p.Y.Min, p.Y.Max = 0, 1
	caps := capacities(out)
	shown := 0
	for c, name := range out.Results[0].Classes {
		if caps[c] == 0 {
			continue
		}
		shown++
		pts := make(plotter.XYs, len(rows))
		for i, r := range rows {
			pts[i].X = float64(r.Hour) / float64(ax.hours)
			pts[i].Y = r.Occupancy[c] / float64(caps[c])
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		l.Color = palette[c%len(palette)]
		l.Width = vg.Points(1.2)
		if c >= len(palette) {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		}
		p.Add(l)
		p.Legend.Add(name, l)
	}
	p.Legend.Top = true
	// Room above 100 % for the legend, which would otherwise sit on the
	// lines; the axis is labelled only from 0 to 1.
	p.Y.Max = 1 + 0.08*float64(shown)
	p.X.Tick.Marker = ax.ticks()
	p.Y.Tick.Marker = plot.ConstantTicks([]plot.Tick{{Value: 0, Label: "0"}, {Value: 0.25}, {Value: 0.5, Label: "0.5"}, {Value: 0.75}, {Value: 1, Label: "1.0"}})
	p.Add(plotter.NewGrid())
	return p, nil
}

// timeAxis is the time axis of a plot over the measured horizon: in days,
// or in hours for a horizon of two days or less (whose day axis would have
// two or three labels, and one bar a day).
type timeAxis struct {
	unit  string
	hours int // hours per unit
	n     int // units in the horizon, the last one perhaps partial
}

func timeAxisFor(hours int) timeAxis {
	if hours <= 48 {
		return timeAxis{unit: "hour", hours: 1, n: hours}
	}
	return timeAxis{unit: "day", hours: 24, n: (hours + 23) / 24}
}

func (a timeAxis) label() string { return a.unit + " of the measured horizon" }

func (a timeAxis) ticks() plot.Ticker {
	if a.hours == 1 {
		return hourTicks(a.n)
	}
	return dayTicks(a.n)
}

// hourTicks labels an hour axis every 1, 2, 3, 6 or 12 hours, at most
// maxDayLabels labels, with a mark every hour.
func hourTicks(hours int) plot.Ticker {
	return ticksEvery(hours, labelStep(hours, []int{1, 2, 3, 6, 12}), 1)
}

// labelStep is the first of steps (shortest first) that gives an axis of
// n units at most maxDayLabels labels, or the last.
func labelStep(n int, steps []int) int {
	for _, s := range steps {
		if n/s <= maxDayLabels-1 {
			return s
		}
	}
	return steps[len(steps)-1]
}

// ticksEvery marks an axis of n units every minor units, labelling every
// step-th unit (a multiple of minor).
func ticksEvery(n, step, minor int) plot.Ticker {
	var ticks []plot.Tick
	for u := 0; u <= n; u += minor {
		t := plot.Tick{Value: float64(u)}
		if u%step == 0 {
			t.Label = strconv.Itoa(u)
		}
		ticks = append(ticks, t)
	}
	return plot.ConstantTicks(ticks)
}

// dayTicks labels a day axis in whole days, at most maxDayLabels of them:
// daily for a short horizon, then every week, fortnight, four weeks, …
// quarter, year. Unlabelled marks between are daily up to two months and
// weekly up to 60 weeks; a longer axis has none (they would blur into a
// bar).
func dayTicks(days int) plot.Ticker {
	step := labelStep(days, dayLabelSteps)
	minor := step
	switch {
	case days <= 60:
		minor = 1
	case days <= 420:
		minor = 7
	}
	return ticksEvery(days, step, minor)
}

// maxDayLabels is the most labels a day axis gets: more overlap on a plot
// half a page wide.
const maxDayLabels = 12

// dayLabelSteps are the spans between a day axis's labels, shortest first;
// after the first, each a multiple of a week, so that weekly marks fall on
// them.
var dayLabelSteps = []int{1, 7, 14, 28, 56, 91, 182, 364, 728}

func capacities(out *runner.Output) []int {
	classes := out.Results[0].Classes
	caps := make([]int, len(classes))
	sc := out.Scenario
	for _, site := range sc.Sites {
		for _, g := range site.Cabinets {
			m, _ := sc.Model(g.Model)
			for _, e := range m.Compartments {
				for c, name := range classes {
					if name == e.Key {
						caps[c] += e.Value * g.Count
					}
				}
			}
		}
	}
	return caps
}

func dwellPlot(out *runner.Output) (*plot.Plot, error) {
	merged := world.NewSketch()
	for _, r := range out.Results {
		merged.Merge(r.Dwell)
	}
	p := plot.New()
	p.Title.Text = "Dwell time (deposit to pickup or return)"
	p.Y.Label.Text = "share of parcels"
	h := dwellHistogram(merged)
	last := h.Bins[len(h.Bins)-1].Min
	p.X.Label.Text = fmt.Sprintf("hours (the last bar: %s h or more)", num(last))
	p.X.Min = 0
	p.Add(h)
	return p, nil
}

// dwellHistogram bins dwell times by the hour range each bar spans, from
// 0 to a whole number of half days past the 99th percentile, in at most 48
// bars of a round width (half an hour, 1, 2, 3, 4, 6 or 12 hours, so that
// the axis reads "35 h or more", not "35.25"); the last bar also holds
// every longer dwell.
func dwellHistogram(dwell *world.Sketch) *plotter.Histogram {
	const maxBins = 48
	upper := math.Max(24, math.Ceil(dwell.Quantile(0.99)/12)*12)
	width := 12.0
	for _, w := range []float64{0.5, 1, 2, 3, 4, 6, 12} {
		if upper/w <= maxBins {
			width = w
			break
		}
	}
	upper = math.Ceil(upper/width) * width // past 24 days the bars are 12 h and may add some
	bins := int(math.Round(upper / width))
	counts := dwell.Histogram(upper, bins)
	total := float64(dwell.Count())
	h := &plotter.Histogram{Bins: make([]plotter.HistogramBin, bins), Width: width, FillColor: palette[0], LineStyle: plotter.DefaultLineStyle}
	h.LineStyle.Color = color.White
	for i, v := range counts {
		b := &h.Bins[i]
		b.Min, b.Max = float64(i)*width, float64(i+1)*width
		if total > 0 {
			b.Weight = v / total
		}
	}
	return h
}

func refusalsPlot(rows []world.HourRow) (*plot.Plot, error) {
	ax := timeAxisFor(len(rows))
	ref := make(plotter.Values, ax.n)
	arr := make(plotter.Values, ax.n)
	for _, r := range rows {
		ref[r.Hour/ax.hours] += float64(r.Refusals)
		arr[r.Hour/ax.hours] += float64(r.Arrivals)
	}
	p := plot.New()
	p.Title.Text = "Arrivals and refusals per " + ax.unit + " (mean of replications)"
	p.X.Label.Text = ax.label()
	p.Y.Label.Text = "parcels"
	w := vg.Points(4)
	a, err := plotter.NewBarChart(arr, w)
	if err != nil {
		return nil, err
	}
	a.Color = palette[4]
	a.LineStyle.Width = 0
	a.Offset = -w / 2
	r, err := plotter.NewBarChart(ref, w)
	if err != nil {
		return nil, err
	}
	r.Color = palette[5]
	r.LineStyle.Width = 0
	r.Offset = w / 2
	p.Add(a, r)
	p.Legend.Add("arrivals", a)
	p.Legend.Add("refused", r)
	p.Legend.Top = true
	top := 0.0
	for _, v := range arr {
		top = max(top, v)
	}
	p.Y.Min, p.Y.Max = 0, max(1, top*1.3) // room above the bars for the legend
	p.Y.Tick.Marker = groupedTicks{}
	p.X.Tick.Marker = ax.ticks()
	return p, nil
}

// groupedTicks are gonum's default ticks with their labels' thousands
// grouped (a city's 160,000 parcels a day, not 160000).
type groupedTicks struct{}

func (groupedTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = grouped(ticks[i].Value)
		}
	}
	return ticks
}

// grouped formats a whole number with commas between groups of three
// digits, and any other number as num does.
func grouped(v float64) string {
	if v != math.Trunc(v) || math.Abs(v) >= 1e15 {
		return num(v)
	}
	digits := strconv.FormatInt(int64(math.Abs(v)), 10)
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
	}
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}

func utilisationPlot(out *runner.Output) (*plot.Plot, error) {
	classes := out.Results[0].Classes
	vals := make(plotter.Values, len(classes))
	errs := make(plotter.YErrors, len(classes))
	for i, c := range classes {
		st, _ := out.Get("utilization_" + c)
		vals[i] = st.Mean
		errs[i].Low, errs[i].High = st.Mean-st.Low, st.High-st.Mean
	}
	p := plot.New()
	p.Title.Text = "Mean utilisation per class, with 95 % CI"
	if out.Replications < 2 {
		p.Title.Text = "Mean utilisation per class (one replication: no CI)"
	}
	p.Y.Label.Text = "occupied share (time-weighted)"
	p.Y.Min, p.Y.Max = 0, 1
	bars, err := plotter.NewBarChart(vals, vg.Points(28))
	if err != nil {
		return nil, err
	}
	bars.Color = palette[2]
	bars.LineStyle.Width = 0
	p.Add(bars)
	p.NominalX(classes...)
	// Half a slot either side, so that the outer classes' names (L-cold)
	// are not cut off at the edges.
	p.X.Min, p.X.Max = -0.5, float64(len(classes))-0.5
	if out.Replications < 2 {
		return p, nil
	}
	pts := make(plotter.XYs, len(classes))
	for i := range classes {
		pts[i].X, pts[i].Y = float64(i), vals[i]
	}
	eb, err := plotter.NewYErrorBars(struct {
		plotter.XYer
		plotter.YErrorer
	}{pts, errs})
	if err != nil {
		return nil, err
	}
	p.Add(eb)
	return p, nil
}

type kpiRow struct {
	Name, Mean, CI string
}

type page struct {
	Title, Description, Policy string
	Seed                       uint64
	Replications               int
	Duration, Warmup           string
	Headline                   []kpiRow
	KPIs                       []kpiRow
	Plots                      []template.HTML
	Scenario                   string
	OneReplication             bool
}

var headline = []string{"overflow_rate", "occupancy_mean", "utilization", "dwell_hours_p90", "expired", "refused"}

// HTML renders report.html.
func HTML(out *runner.Output, scenarioSource []byte) ([]byte, error) {
	rows := meanHours(out)
	pg := page{
		Title: out.Scenario.Name, Description: out.Scenario.Description, Policy: out.Policy,
		Seed: out.Scenario.Seed, Replications: out.Replications,
		Duration: out.Scenario.Duration.String(), Warmup: out.Scenario.Warmup.String(),
		Scenario: string(scenarioSource), OneReplication: out.Replications == 1,
	}
	for _, s := range out.Summary {
		mean, low, high := rounded(s.Mean, s.Low, s.High)
		row := kpiRow{Name: s.Name, Mean: mean}
		if out.Replications > 1 {
			row.CI = low + " – " + high
		}
		pg.KPIs = append(pg.KPIs, row)
	}
	for _, h := range headline {
		for _, row := range pg.KPIs {
			if row.Name == h {
				pg.Headline = append(pg.Headline, row)
			}
		}
	}
	builders := []func() (*plot.Plot, error){
		func() (*plot.Plot, error) { return occupancyPlot(out, rows) },
		func() (*plot.Plot, error) { return refusalsPlot(rows) },
		func() (*plot.Plot, error) { return dwellPlot(out) },
		func() (*plot.Plot, error) { return utilisationPlot(out) },
	}
	for _, build := range builders {
		p, err := build()
		if err != nil {
			return nil, err
		}
		s, err := svg(p, 16*vg.Centimeter, 9*vg.Centimeter)
		if err != nil {
			return nil, err
		}
		pg.Plots = append(pg.Plots, s)
	}
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, pg); err != nil {
		return nil, fmt.Errorf("report template: %w", err)
	}
	return b.Bytes(), nil
}

var pageTemplate = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>lockertwin — {{.Title}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:70rem;color:#1b1b1b;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#555;margin-top:0}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1.2rem 0}
.card{border:1px solid #ddd;border-radius:.5rem;padding:.6rem .9rem;min-width:9rem}
.card b{display:block;font-size:1.35rem} .card span{color:#555;font-size:.85rem}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(30rem,1fr));gap:1rem}
.plots div{border:1px solid #eee;border-radius:.5rem;padding:.3rem}
.plots svg{width:100%;height:auto;display:block}
table{border-collapse:collapse;margin:1rem 0} td,th{padding:.2rem .8rem;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left;font-family:ui-monospace,monospace}
pre{background:#f6f6f6;padding:1rem;overflow:auto;font-size:.85rem}
.note{color:#555;font-size:.9rem}
</style></head><body>
<h1>{{.Title}}</h1>
<p class="sub">{{.Description}}</p>
<p class="note">Allocator <b>{{.Policy}}</b>, seed {{.Seed}}, {{.Replications}} replication(s), {{.Duration}} measured after a {{.Warmup}} warm-up.
Simulated with the real lockertwin controller and virtual cabinets; the same scenario and seed give this same page.
{{if .OneReplication}}With one replication there is no confidence interval: run more replications for one.{{end}}</p>
<div class="cards">{{range .Headline}}<div class="card"><b>{{.Mean}}</b><span>{{.Name}}{{if .CI}}<br>95% CI {{.CI}}{{end}}</span></div>{{end}}</div>
<div class="plots">{{range .Plots}}<div>{{.}}</div>{{end}}</div>
<h2>All KPIs</h2>
<table><tr><th>KPI</th><th>mean</th><th>95% CI</th></tr>
{{range .KPIs}}<tr><td>{{.Name}}</td><td>{{.Mean}}</td><td>{{.CI}}</td></tr>
{{end}}</table>
<p class="note">Warm-up excluded. Occupancy and utilisation are time-weighted over the measured horizon; dwell runs from deposit to pickup or return;
overflow_rate is refused ÷ offered; offered counts each parcel once, and one neither accepted nor refused was lost at a door
(deposit_door_failures) or was still on its way at the horizon's end (waiting for a wave, on a redirect); quantiles (_p50, _p90, _p99)
are read from buckets 1 % wide, and their intervals include that resolution; distance_saved_km counts each consolidated locker stop as saving the doorstep stops it replaces;
temp_excursion_hours (with chilled compartments) sums the compartment-hours spent out of range, from a cabinet's temp_out_of_range alarm to its report that the compartment is back in range; parcels_temp_exposed counts the parcels that left the locker in the horizon having been in it, behind a closed door, while their compartment was out of range (or put into it while it was), which an operator would check before handing them over.</p>
<h2>Scenario</h2>
<pre>{{.Scenario}}</pre>
</body></html>
`))
