package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckFlags(t *testing.T) {
	tests := []struct {
		set  []string
		want string // the error's start, "" for none
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
	}
	for _, tt := range tests {
		set := map[string]bool{}
		for _, name := range tt.set {
			set[name] = true
		}
		err := checkFlags(set)
		if tt.want == "" {
			require.NoError(t, err, "%v", tt.set)
			continue
		}
		require.Error(t, err, "%v", tt.set)
		require.Contains(t, err.Error(), tt.want)
	}
}
