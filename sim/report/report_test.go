package report

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/lockertwin/lockertwin/sim/runner"
	"github.com/lockertwin/lockertwin/sim/world"
	"github.com/stretchr/testify/require"
)

func TestNumbersForPeople(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {42, "42"}, {2293.4, "2293"}, {114.25, "114.2"}, {58.3882, "58.39"},
		{0.012, "0.012"}, {0.48661, "0.4866"}, {-3.5, "-3.5"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, num(tt.in), "%v", tt.in)
	}
	require.Equal(t, 0.0, round(math.NaN(), 3))
	require.Equal(t, 1.235, round(1.23456, 3))
}

func TestWriteProducesAllFiles(t *testing.T) {
	sc, _, err := scenarios.LoadShipped("bopis-store.yaml")
	require.NoError(t, err)
	sc.Duration = scenarios.Duration(2 * 24 * time.Hour)
	sc.Replications = 2
	out, err := runner.Run(sc, runner.Options{})
	require.NoError(t, err)
	dir := t.TempDir()
	files, err := Write(dir, out, []byte("name: bopis-store\n# <script>alert(1)</script>"))
	require.NoError(t, err)
	html, err := os.ReadFile(files.Report)
	require.NoError(t, err)
	page := string(html)
	require.Contains(t, page, "<h1>bopis-store</h1>")
	require.Equal(t, 4, strings.Count(page, "<svg"), "four plots, inline")
	require.NotContains(t, page, "<script>", "the scenario is escaped")
	for _, load := range []string{"src=", "<link", "@import", "url("} {
		require.NotContains(t, page, load, "self-contained: nothing to fetch")
	}
	require.Contains(t, page, "reserve-large")
	require.Contains(t, page, "Mean utilisation per class, with 95 % CI")
	table := Table(out)
	require.Contains(t, table, "overflow_rate")
	require.Contains(t, table, "95% CI")

	require.NoError(t, CheckWritable(filepath.Join(dir, "new", "deeper")))
	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	require.Error(t, CheckWritable(filepath.Join(blocker, "x")))

	// With one replication there are no error bars to speak of.
	out.Replications, out.Results = 1, out.Results[:1]
	one, err := HTML(out, nil)
	require.NoError(t, err)
	require.Contains(t, string(one), "Mean utilisation per class (one replication: no CI)")
}

// TestDwellHistogramBinsAreHourRanges: each bar spans its own hours, from
// 0 with no gaps, the shares add up to one, and the last bar holds the
// dwells beyond the range (the plot's axis says so).
func TestDwellHistogramBinsAreHourRanges(t *testing.T) {
	s := world.NewSketch()
	want := make([]float64, 48)
	for i := range 1000 {
		k := i % 45
		s.Add(float64(2*k + 1)) // 1, 3, … 89 h: mid-bar, further from an edge than the sketch's 1 %
		want[k]++
	}
	for range 5 {
		s.Add(500) // beyond the 99th percentile
	}
	want[47] = 5
	h := dwellHistogram(s)
	require.Len(t, h.Bins, 48)
	upper := 96.0 // the 99th percentile, 89 h, rounded up to half days
	require.Equal(t, upper/48, h.Width)
	total := 0.0
	for i, b := range h.Bins {
		require.InDelta(t, float64(i)*2, b.Min, 1e-9, "bar %d starts at its hour", i)
		require.InDelta(t, float64(i+1)*2, b.Max, 1e-9, "bar %d ends where the next starts", i)
		require.InDelta(t, want[i]/1005, b.Weight, 1e-9, "bar %d", i)
		total += b.Weight
	}
	require.InDelta(t, 1, total, 1e-9)
}

// TestDwellBarsHaveRoundWidths: the bars are as narrow as 48 of them
// allow, in a width the axis can name (grocery's 36 h are 36 one-hour
// bars, not 48 of 0.75 h).
func TestDwellBarsHaveRoundWidths(t *testing.T) {
	tests := []struct {
		p99         float64 // hours
		width, last float64 // the bar width, and where the last bar starts
		bins        int
	}{
		{5, 0.5, 23.5, 48}, // at least a day
		{30, 1, 35, 36},    // 36 h
		{89, 2, 94, 48},    // 96 h
		{100, 3, 105, 36},  // 108 h
		{150, 4, 152, 39},  // 156 h
		{600, 12, 588, 50}, // 600 h: beyond 48 bars of 12 h
	}
	for _, tt := range tests {
		s := world.NewSketch()
		for i := range 1000 {
			s.Add(tt.p99 * float64(i) / 990) // 1 % above p99
		}
		h := dwellHistogram(s)
		require.Equal(t, tt.width, h.Width, "p99 %v h", tt.p99)
		require.Len(t, h.Bins, tt.bins, "p99 %v h", tt.p99)
		require.InDelta(t, tt.last, h.Bins[len(h.Bins)-1].Min, 1e-9, "p99 %v h", tt.p99)
	}
}

// TestDayAxisLabelsDoNotOverlap: a day axis has a dozen labels at most,
// whatever the horizon. A year's run once had 53, every week, printed over
// one another, and a daily mark each, drawn into a grey bar.
func TestDayAxisLabelsDoNotOverlap(t *testing.T) {
	tests := []struct {
		days, step, minor int
	}{
		{3, 1, 1},
		{11, 1, 1},
		{28, 7, 1},
		{60, 7, 1},
		{84, 14, 7},
		{180, 28, 7},
		{365, 56, 7},
		{730, 91, 91},
		{3650, 364, 364},
	}
	for _, tt := range tests {
		ticks := dayTicks(tt.days).Ticks(0, float64(tt.days))
		var labels []float64
		for _, tk := range ticks {
			if tk.Label != "" {
				labels = append(labels, tk.Value)
				require.Equal(t, strconv.Itoa(int(tk.Value)), tk.Label)
			}
		}
		require.LessOrEqual(t, len(labels), maxDayLabels, "%d days", tt.days)
		require.GreaterOrEqual(t, len(labels), 3, "%d days", tt.days)
		require.Equal(t, 0.0, labels[0])
		require.Equal(t, float64(tt.step), labels[1], "%d days: the step between labels", tt.days)
		require.Equal(t, float64(tt.minor), ticks[1].Value, "%d days: the step between marks", tt.days)
		require.LessOrEqual(t, len(ticks), 61, "%d days: marks", tt.days)
	}
}

// TestShortHorizonsAreDrawnInHours: a horizon of two days or less has its
// time axes in hours (a day axis had two or three labels and one bar a
// day); a longer one in days.
func TestShortHorizonsAreDrawnInHours(t *testing.T) {
	tests := []struct {
		hours     int
		unit      string
		n, step   int
		lastLabel float64
	}{
		{6, "hour", 6, 1, 6},
		{24, "hour", 24, 3, 24},
		{48, "hour", 48, 6, 48},
		{49, "day", 3, 1, 3},
		{24 * 28, "day", 28, 7, 28},
	}
	for _, tt := range tests {
		ax := timeAxisFor(tt.hours)
		require.Equal(t, tt.unit, ax.unit, "%d h", tt.hours)
		require.Equal(t, tt.n, ax.n, "%d h", tt.hours)
		require.Equal(t, tt.unit+" of the measured horizon", ax.label())
		var labels []float64
		for _, tk := range ax.ticks().Ticks(0, float64(ax.n)) {
			if tk.Label != "" {
				labels = append(labels, tk.Value)
			}
		}
		require.LessOrEqual(t, len(labels), maxDayLabels, "%d h", tt.hours)
		require.Equal(t, float64(tt.step), labels[1], "%d h: the step between labels", tt.hours)
		require.Equal(t, tt.lastLabel, labels[len(labels)-1], "%d h: the horizon's end is labelled", tt.hours)
	}
}

func TestGroupedThousands(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{{0, "0"}, {80, "80"}, {999, "999"}, {1000, "1,000"}, {80000, "80,000"}, {160000, "160,000"},
		{1234567, "1,234,567"}, {-4000, "-4,000"}, {2.5, "2.5"}}
	for _, tt := range tests {
		require.Equal(t, tt.want, grouped(tt.v), "%v", tt.v)
	}
}

// TestFiguresAreRoundedToTheirInterval: a mean and its interval as the KPI
// table shows them, and as compare shows a difference (signed).
func TestFiguresAreRoundedToTheirInterval(t *testing.T) {
	tests := []struct {
		mean, low, high  float64
		estimate, differ string
	}{
		{0, 0, 0, "0 [0, 0]", "+0 [+0, +0]"},
		{2, 2, 2, "2 [2, 2]", "+2 [+2, +2]"},
		{42, 42, 42, "42 [42, 42]", "+42 [+42, +42]"},
		{8.71, 8.71, 8.71, "8.71 [8.71, 8.71]", "+8.71 [+8.71, +8.71]"}, // no width: the figure's own digits
		{-0.0125, -0.0125, -0.0125, "-0.0125 [-0.0125, -0.0125]", "-0.0125 [-0.0125, -0.0125]"},
		{7.275e-05, -0.002462, 0.002607, "0.0001 [-0.0025, 0.0026]", "+0.0001 [-0.0025, +0.0026]"},
		{-1, -7.019, 5.019, "-1.0 [-7.0, 5.0]", "-1.0 [-7.0, +5.0]"},
		{0.1615, -0.4159, 0.7389, "0.16 [-0.42, 0.74]", "+0.16 [-0.42, +0.74]"},
		{-3.6, -7.177, -0.0228, "-3.6 [-7.2, -0.0]", "-3.6 [-7.2, -0.0]"}, // ends short of zero, and says so
		{1234.5, 1000, 1469, "1234 [1000, 1469]", "+1234 [+1000, +1469]"},
		{0.3, 0.1, 0.5, "0.30 [0.10, 0.50]", "+0.30 [+0.10, +0.50]"},
		{26.2, 13.46, 38.94, "26 [13, 39]", "+26 [+13, +39]"},
		{17.544, 16.99, 18.1, "17.54 [16.99, 18.10]", "+17.54 [+16.99, +18.10]"},
		{0.0134, 0.007, 0.0198, "0.0134 [0.0070, 0.0198]", "+0.0134 [+0.0070, +0.0198]"},
		{1949.6, 1876.8, 2022.4, "1950 [1877, 2022]", "+1950 [+1877, +2022]"},
	}
	for _, tt := range tests {
		m, lo, hi := rounded(tt.mean, tt.low, tt.high)
		require.Equal(t, tt.estimate, m+" ["+lo+", "+hi+"]", "%v [%v, %v]", tt.mean, tt.low, tt.high)
		require.Equal(t, tt.differ, Difference(tt.mean, tt.low, tt.high), "%v [%v, %v]", tt.mean, tt.low, tt.high)
	}
}

func TestSigned(t *testing.T) {
	require.Equal(t, "+1", Signed(1))
	require.Equal(t, "+0", Signed(0))
	require.Equal(t, "-0.0125", Signed(-0.0125))
}
