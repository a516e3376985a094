package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		{"unknown command", []string{"frobnicate"}, ExitUsage, `unknown command "frobnicate"`},
		{"validate without files", []string{"validate"}, ExitUsage, "Usage: lockersim validate"},
		{"validate -h", []string{"validate", "-h"}, ExitOK, "Usage: lockersim validate"},
		{"bad flag", []string{"validate", "-nope"}, ExitUsage, "flag provided but not defined"},
		{"missing file", []string{"validate", "no-such.yaml"}, ExitProblem, "no-such.yaml:1:1: reading scenario"},
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
	require.Contains(t, errOut, file+`:9:21: unknown allocator policy "worst-fit" (registered: best-fit, first-fit, random-fit, reserve-large)`)
}
