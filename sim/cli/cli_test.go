package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/sim/runner"
	"github.com/stretchr/testify/require"
)

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func shippedFiles(t *testing.T) []string {
	files, err := filepath.Glob("../../scenarios/*.yaml")
	require.NoError(t, err)
	require.Len(t, files, 5)
	return files
}

func TestValidateShippedScenarios(t *testing.T) {
	files := shippedFiles(t)
	code, out, errOut := run(append([]string{"validate"}, files...)...)
	require.Equal(t, ExitOK, code, errOut)
	require.Empty(t, errOut)
	for _, f := range files {
		require.Contains(t, out, f+": valid\n")
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	bad := "../../scenarios/testdata/three-mistakes.yaml"
	good := shippedFiles(t)[0]
	code, out, errOut := run("validate", good, bad)
	require.Equal(t, ExitProblem, code)
	require.Equal(t, good+": valid\n", out)
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	require.Len(t, lines, 4, errOut)
	require.Contains(t, lines[0], bad+`:4:1: unknown key "colour"`)
	require.Contains(t, lines[1], bad+`:10:27: cabinet model "bank": unknown compartment class "Mm"`)
	require.Contains(t, lines[2], bad+`:16:13: demand.size_mix sums to 0.9`)
	// The misspelt class also leaves M unstorable: a warning, after the errors.
	require.Contains(t, lines[3], bad+`:16:25: warning: no cabinet model has class "M"`)
}

func TestValidateUsageAndMissingFiles(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		code    int
		errPart string
	}{
		{"no command", nil, ExitUsage, "Usage:"},
		{"help", []string{"help"}, ExitOK, "validate"},
		{"help on a command", []string{"help", "compare"}, ExitOK, "Usage: lockersim compare"},
		{"help on no command", []string{"help", "frob"}, ExitUsage, `unknown command "frob"`},
		{"unknown command", []string{"frobnicate"}, ExitUsage, `unknown command "frobnicate"`},
		{"validate without files", []string{"validate"}, ExitUsage, "Usage: lockersim validate"},
		{"validate -h", []string{"validate", "-h"}, ExitOK, "Usage: lockersim validate"},
		{"bad flag", []string{"validate", "-nope"}, ExitUsage, "flag provided but not defined"},
		{"missing file", []string{"validate", "no-such.yaml"}, ExitProblem, "no-such.yaml: cannot read the scenario: no such file or directory"},
		{"a directory", []string{"validate", "."}, ExitProblem, ".: cannot read the scenario: is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := run(tt.args...)
			require.Equal(t, tt.code, code)
			require.Contains(t, errOut, tt.errPart)
		})
	}
}

func TestValidateChecksThePolicyRegistry(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s.yaml")
	src := `version: 1
name: s
duration: 1d
compartment_classes: [{name: S, width_mm: 1, height_mm: 1, depth_mm: 1}]
cabinet_models: [{name: m, compartments: {S: 1}}]
sites: [{id: a, cabinets: [{model: m, count: 1}]}]
demand: {parcels_per_day: 1, size_mix: {S: 1}}
recipients: {pickup_delay: {distribution: fixed, value: 1h}}
policy: {allocator: worst-fit}
`
	require.NoError(t, os.WriteFile(file, []byte(src), 0o644))
	code, _, errOut := run("validate", file)
	require.Equal(t, ExitProblem, code)
	require.Contains(t, errOut, file+`:9:21: unknown allocator policy "worst-fit" (registered: `+strings.Join(allocator.Names(), ", ")+")")
}

func TestRunWritesTheThreeFiles(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := run("run", "../../scenarios/grocery-chilled.yaml", "-duration", "7d", "-replications", "2", "-out", dir)
	require.Equal(t, ExitOK, code, errOut)
	require.Contains(t, out, "grocery-chilled — policy best-fit, seed 3, 2 replication(s), 7d measured after 3d warm-up")
	require.Contains(t, out, "overflow_rate")
	for _, f := range []string{"summary.json", "timeseries.csv", "report.html"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		require.NotEmpty(t, data)
	}
	summary, _ := os.ReadFile(filepath.Join(dir, "summary.json"))
	require.Contains(t, string(summary), `"schema": "lockertwin/summary/v1"`)
	require.Contains(t, string(summary), `"utilization_M-cold"`)
	csv, _ := os.ReadFile(filepath.Join(dir, "timeseries.csv"))
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	require.Len(t, lines, 1+7*24, "one row per measured hour")
	require.Equal(t, "hour,time,occupied_S,occupied_M,occupied_L,occupied_M-cold,occupied_L-cold,utilization,arrivals,deposits,refusals,pickups", lines[0])

	prof, mem := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof")
	code, _, errOut = run("run", "../../scenarios/grocery-chilled.yaml", "-duration", "2d", "-replications", "1", "-cpuprofile", prof, "-memprofile", mem)
	require.Equal(t, ExitOK, code, errOut)
	for _, f := range []string{prof, mem} {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		require.True(t, len(data) > 2 && data[0] == 0x1f && data[1] == 0x8b, "a gzipped pprof profile: %s", f)
	}

	code, out, _ = run("run", "../../scenarios/grocery-chilled.yaml", "-duration", "2d", "-replications", "1", "-json", "-workers", "0")
	require.Equal(t, ExitOK, code)
	require.True(t, strings.HasPrefix(strings.TrimSpace(out), "{"), "-json prints summary.json")
	var sum struct {
		KPIs   map[string]map[string]*float64 `json:"kpis"`
		Engine struct {
			Workers int `json:"workers"`
		} `json:"engine"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &sum))
	require.Equal(t, runtime.GOMAXPROCS(0), sum.Engine.Workers, "-workers 0 is one per core, and the summary says how many")
	// One replication has no interval: null bounds, not the mean twice.
	offered := sum.KPIs["offered"]
	require.NotNil(t, offered["mean"])
	require.Contains(t, offered, "ci95_low")
	require.Nil(t, offered["ci95_low"])
	require.Nil(t, offered["ci95_high"])

	// Two replications have one, around the mean.
	var two struct {
		KPIs map[string]map[string]*float64 `json:"kpis"`
	}
	require.NoError(t, json.Unmarshal(summary, &two))
	offered = two.KPIs["offered"]
	require.NotNil(t, offered["ci95_low"])
	require.NotNil(t, offered["ci95_high"])
	require.LessOrEqual(t, *offered["ci95_low"], *offered["mean"])
	require.GreaterOrEqual(t, *offered["ci95_high"], *offered["mean"])
	require.Less(t, *offered["ci95_low"], *offered["ci95_high"], "two replications differ")
}

func TestRunRefusesBadInputBeforeRunning(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	tests := []struct {
		name    string
		args    []string
		code    int
		errPart string
	}{
		{"invalid scenario", []string{"run", "../../scenarios/testdata/three-mistakes.yaml"}, ExitProblem, `:4:1: unknown key "colour"`},
		{"missing scenario", []string{"run", "nope.yaml"}, ExitProblem, "nope.yaml: cannot read the scenario: no such file"},
		{"unknown policy", []string{"run", "../../scenarios/bopis-store.yaml", "-policy", "worst-fit"}, ExitProblem, `unknown allocator policy "worst-fit" (registered: ` + strings.Join(allocator.Names(), ", ") + ")"},
		{"unwritable out", []string{"run", "../../scenarios/bopis-store.yaml", "-out", filepath.Join(blocker, "sub")}, ExitProblem, "output directory"},
		{"bad duration", []string{"run", "../../scenarios/bopis-store.yaml", "-duration", "soon"}, ExitProblem, "-duration"},
		{"duration past the horizon", []string{"run", "../../scenarios/bopis-store.yaml", "-duration", "3650d"}, ExitProblem,
			"-duration: warm-up 3d plus duration 3650d is more than a run may simulate, 3650d (ten years)"},
		{"duration that overflows", []string{"compare", "../../scenarios/bopis-store.yaml", "-policies", "best-fit,first-fit", "-duration", "300000d"}, ExitProblem,
			`-duration: duration "300000d" is longer than 36500d`},
		{"seed with trailing letters", []string{"run", "../../scenarios/bopis-store.yaml", "-seed", "12abc"}, ExitUsage, `invalid value "12abc" for flag -seed: want a whole number`},
		{"negative seed", []string{"run", "../../scenarios/bopis-store.yaml", "-seed", "-5"}, ExitUsage, `invalid value "-5" for flag -seed`},
		{"bad replications", []string{"run", "../../scenarios/bopis-store.yaml", "-replications", "-3"}, ExitProblem, "-replications"},
		{"negative workers", []string{"run", "../../scenarios/bopis-store.yaml", "-workers", "-1"}, ExitProblem, "-workers must be 0 (one per core) or more"},
		{"compare negative workers", []string{"compare", "../../scenarios/bopis-store.yaml", "-policies", "best-fit,first-fit", "-workers", "-2"}, ExitProblem, "-workers"},
		{"unwritable profile", []string{"run", "../../scenarios/bopis-store.yaml", "-cpuprofile", filepath.Join(blocker, "cpu.prof")}, ExitProblem, "-cpuprofile"},
		{"unwritable allocation profile", []string{"run", "../../scenarios/bopis-store.yaml", "-memprofile", filepath.Join(blocker, "mem.prof")}, ExitProblem, "-memprofile"},
		{"two scenarios", []string{"run", "a.yaml", "b.yaml"}, ExitUsage, "Usage: lockersim run"},
		{"compare one policy", []string{"compare", "../../scenarios/bopis-store.yaml", "-policies", "best-fit"}, ExitUsage, "at least two"},
		{"compare a trailing comma", []string{"compare", "../../scenarios/bopis-store.yaml", "-policies", "best-fit,"}, ExitUsage, `-policies "best-fit," names an empty policy`},
		{"compare a policy with itself", []string{"compare", "../../scenarios/bopis-store.yaml", "-policies", "best-fit,first-fit,best-fit"}, ExitUsage, "-policies names best-fit twice"},
		{"compare unknown policy", []string{"compare", "../../scenarios/bopis-store.yaml", "-policies", "best-fit,nope"}, ExitProblem, `unknown allocator policy "nope"`},
		{"compare bad fail-if", []string{"compare", "../../scenarios/bopis-store.yaml", "-policies", "best-fit,first-fit", "-fail-if", "overflow=3"}, ExitUsage, "want KPI>VALUE"},
		// Refused before any policy runs: this table runs nothing.
		{"compare misspelt fail-if KPI", []string{"compare", "../../scenarios/bopis-store.yaml", "-policies", "best-fit,first-fit", "-fail-if", "overflow>0.01"}, ExitUsage, `-fail-if "overflow>0.01": unknown KPI "overflow" (did you mean "overflow_rate"?)`},
		{"compare fail-if on no class", []string{"compare", "../../scenarios/bopis-store.yaml", "-policies", "best-fit,first-fit", "-fail-if", "utilization_XXL<-0.1"}, ExitUsage, `unknown KPI "utilization_XXL"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := run(tt.args...)
			require.Equal(t, tt.code, code, errOut)
			require.Contains(t, errOut, tt.errPart)
		})
	}
}

func TestCompareOnCommonRandomNumbers(t *testing.T) {
	args := []string{"compare", "../../scenarios/bopis-store.yaml", "-duration", "5d", "-replications", "3",
		"-policies", "best-fit,reserve-large,first-fit"}
	code, out, errOut := run(args...)
	require.Equal(t, ExitOK, code, errOut)
	require.Contains(t, out, "common random numbers")
	require.Contains(t, out, "Δ reserve-large (95% CI)")
	// Demand does not depend on the policy: the offered count differs by exactly zero.
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "offered ") {
			require.Contains(t, line, "+0 [+0, +0]")
		}
	}
	// One replication has no interval, and the table does not draw one.
	one := []string{"compare", "../../scenarios/bopis-store.yaml", "-duration", "2d", "-replications", "1", "-policies", "best-fit,first-fit"}
	code, oneOut, errOut := run(one...)
	require.Equal(t, ExitOK, code, errOut)
	require.Contains(t, oneOut, "Δ first-fit (one replication: no CI)")
	require.NotContains(t, oneOut, "[")
	code, out, _ = run(append(args, "-fail-if", "offered>-1")...)
	require.Equal(t, ExitFailIf, code, "a condition that holds fails the run")
	require.Contains(t, out, "FAIL: offered>-1")
	// An alarm kind no policy raised is a zero for each, not an unknown KPI.
	code, _, errOut = run(append(args, "-fail-if", "alarms_no_such_fault>+0")...)
	require.Equal(t, ExitOK, code, errOut)
}

// TestCompareShowsKPIsOnlySomePoliciesReport: a count or an alarm kind is
// reported by a run only when it occurs. One that only a challenger's run
// reports is a row of the table, beside the ones it follows there, and its
// difference counts the baseline's missing figure as zero.
func TestCompareShowsKPIsOnlySomePoliciesReport(t *testing.T) {
	out := func(kpis ...string) *runner.Output {
		o := &runner.Output{Replications: 2}
		for i, k := range kpis {
			o.Summary = append(o.Summary, runner.Interval(k, []float64{float64(i + 1), float64(i + 2)}))
		}
		return o
	}
	tests := []struct {
		name string
		outs []*runner.Output
		want []string
	}{
		{"same KPIs", []*runner.Output{out("a", "b"), out("a", "b")}, []string{"a", "b"}},
		{"a new alarm before the total",
			[]*runner.Output{out("a", "alarms_jam", "alarms_total"), out("a", "alarms_jam", "alarms_temperature", "alarms_total")},
			[]string{"a", "alarms_jam", "alarms_temperature", "alarms_total"}},
		{"new KPIs first and last",
			[]*runner.Output{out("b", "c"), out("a", "b", "c", "d")},
			[]string{"a", "b", "c", "d"}},
		{"one only the baseline has", []*runner.Output{out("a", "x", "b"), out("a", "b")}, []string{"a", "x", "b"}},
		{"two challengers", []*runner.Output{out("a", "z"), out("a", "m", "z"), out("a", "n", "z")}, []string{"a", "m", "n", "z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, kpiNames(tt.outs))
		})
	}
	base, challenger := out("a"), out("a", "alarms_jam") // alarms_jam: 2 and 3
	d := paired("alarms_jam", base, challenger)
	require.Equal(t, []float64{2, 3}, d.Values, "the baseline's missing alarm counts as zero")
	require.InDelta(t, 2.5, d.Mean, 1e-12)
	require.InDelta(t, -2.5, paired("alarms_jam", challenger, base).Mean, 1e-12)
}

func TestReplayCommandRepeatsTheRun(t *testing.T) {
	tests := []struct {
		name    string
		cmd     string
		args    []string
		seedSet bool
		want    string
	}{
		{"seed from the scenario", "run", []string{"s.yaml", "-duration", "3d"}, false, "lockersim run s.yaml -duration 3d -seed 42"},
		{"seed given", "run", []string{"s.yaml", "-seed", "7", "-policy", "first-fit"}, true, "lockersim run s.yaml -seed 7 -policy first-fit"},
		{"compare", "compare", []string{"s.yaml", "-policies", "best-fit,first-fit", "-fail-if", "overflow_rate>+0.005"}, false,
			"lockersim compare s.yaml -policies best-fit,first-fit -fail-if 'overflow_rate>+0.005' -seed 42"},
		{"a path with a space and a quote", "run", []string{"my dir/it's.yaml"}, false, `lockersim run 'my dir/it'\''s.yaml' -seed 42`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, replayCommand(tt.cmd, tt.args, tt.seedSet, 42))
		})
	}
}

// TestPairedDifferencesAreNotClipped: a policy's differences from the
// baseline may all be positive on a few seeds while their interval spans
// 0; the compare table must not clip it at 0 as it does a count.
func TestPairedDifferencesAreNotClipped(t *testing.T) {
	out := func(vals ...float64) *runner.Output {
		return &runner.Output{Summary: []runner.Stat{runner.Interval("utilization_L", vals)}}
	}
	d := paired("utilization_L", out(0.36, 0.37, 0.36), out(0.36, 0.3916, 0.36))
	require.InDelta(t, 0.0072, d.Mean, 1e-12)
	require.Less(t, d.Low, 0.0, "the interval spans 0")
	require.InDelta(t, d.Mean-d.Low, d.High-d.Mean, 1e-12, "symmetric about the mean")
}
