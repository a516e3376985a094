package main

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckFlags(t *testing.T) {
	tests := []struct {
		set  []string // the flags given; "arg:X" is an argument X after them
		want string   // the error's start, "" for none
	}{
		{nil, ""},
		{[]string{"scenario", "seed", "speed", "screenshot", "after"}, ""},
		{[]string{"shipped", "measure"}, ""},
		{[]string{"url", "token", "screenshot", "after", "measure"}, ""},
		{[]string{"url", "token", "seed"}, "-seed is for simulating"},
		{[]string{"url", "speed"}, "-speed is for simulating"},
		{[]string{"url", "scenario"}, "-scenario is for simulating"},
		{[]string{"url", "shipped"}, "-shipped is for simulating"},
		{[]string{"token"}, "-token goes with -url"},
		{[]string{"scenario", "shipped"}, "-scenario and -shipped"},
		{[]string{"arg:scenarios/city-network.yaml", "speed"}, `unexpected argument "scenarios/city-network.yaml": lockerview takes only flags (a scenario is -scenario FILE or -shipped NAME)`},
	}
	for _, tt := range tests {
		set := map[string]bool{}
		var args []string
		for _, name := range tt.set {
			if arg, ok := strings.CutPrefix(name, "arg:"); ok {
				args = append(args, arg)
				continue
			}
			set[name] = true
		}
		err := checkFlags(set, args)
		if tt.want == "" {
			require.NoError(t, err, "%v", tt.set)
			continue
		}
		require.Error(t, err, "%v", tt.set)
		require.Contains(t, err.Error(), tt.want)
	}
}

// TestNoDisplayIsAPlainMessage runs this test binary again, which links
// Ebiten as the command does, without a usable display: the guard must stop
// it with a message and exit 1 before Ebiten's initialisation panics.
func TestNoDisplayIsAPlainMessage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the guard checks X displays on Linux")
	}
	for _, tt := range []struct{ display, want string }{
		{"", "lockerview: no X display (DISPLAY is not set)"},
		{":4242", `lockerview: no X server answers on display ":4242"`},
	} {
		cmd := exec.Command(os.Args[0], "-test.run", "^$")
		cmd.Env = append(os.Environ(), "DISPLAY="+tt.display)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "DISPLAY=%q: %s", tt.display, out)
		require.Equal(t, 1, exit.ExitCode(), "DISPLAY=%q: %s", tt.display, out)
		require.True(t, strings.HasPrefix(string(out), tt.want), "DISPLAY=%q: %s", tt.display, out)
		require.NotContains(t, string(out), "panic", "DISPLAY=%q", tt.display)
		require.Contains(t, string(out), "xvfb-run -a lockerview")
	}
}
