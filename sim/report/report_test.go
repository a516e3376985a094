package report

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/lockertwin/lockertwin/sim/runner"
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
	files, err := Write(dir, out, 2, []byte("name: bopis-store\n# <script>alert(1)</script>"))
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
	table := Table(out)
	require.Contains(t, table, "overflow_rate")
	require.Contains(t, table, "95% CI")

	require.NoError(t, CheckWritable(filepath.Join(dir, "new", "deeper")))
	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	require.Error(t, CheckWritable(filepath.Join(blocker, "x")))
}
