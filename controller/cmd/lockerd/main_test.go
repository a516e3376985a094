package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRunRefusesBadInputBeforeServing: each mistake on the command line or
// in the configuration stops lockerd before it serves anything, with a
// message saying which. (The service itself is tested in
// controller/service, in-process.)
func TestRunRefusesBadInputBeforeServing(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	data := filepath.Join(dir, "data")
	local := []string{"-data", data, "-http", "127.0.0.1:0", "-mqtt", "127.0.0.1:0"}
	tests := []struct {
		name    string
		args    []string
		code    int
		message string
	}{
		{"help", []string{"-h"}, 0, "-scenario string"},
		{"unknown flag", []string{"-nope"}, 2, "flag provided but not defined: -nope"},
		{"a scenario without -scenario", append(local, "scenarios/residential-tower.yaml", "-sync", "normal"), 2,
			`lockerd: unexpected argument "scenarios/residential-tower.yaml": lockerd takes only flags (a scenario to provision is -scenario FILE; see -h)`},
		{"bad log level", append(local, "-log-level", "loud"), 2, "lockerd: -log-level:"},
		{"no configuration file", append(local, "-config", filepath.Join(dir, "none.yaml")), 1, "lockerd: cannot read the configuration: open "},
		{"unknown configuration key", append(local, "-config", write("c.yaml", "http: :0\nmqtt_addr: :0\n")), 1, `c.yaml:2:1: unknown key "mqtt_addr"`},
		{"bad status grace", append(local, "-config", write("g.yaml", "status_grace: soon\n")), 1, `g.yaml: status_grace: time: invalid duration "soon"`},
		{"invalid scenario", append(local, "-scenario", write("s.yaml", "version: 1\nname: Bad Name\n")), 1, "s.yaml:2:7:"},
		{"no scenario file", append(local, "-scenario", filepath.Join(dir, "none.yaml")), 1, "none.yaml: cannot read the scenario: no such file or directory"},
		{"a webhook of another scheme", append(local, "-webhook", "ftp://host/hook"), 1, `webhook URL "ftp://host/hook": want http:// or https://`},
		{"unknown sync mode", append(local, "-sync", "sometimes"), 1, `unknown sync mode "sometimes"`},
		// A path in the configuration is relative to the file: here the
		// scenario beside it, whatever the working directory.
		{"a scenario beside the configuration", append(local, "-config", write("etc/lockerd.yaml", "scenario: site.yaml\n")), 1,
			filepath.Join(dir, "etc", "site.yaml") + ": cannot read the scenario"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			require.Equal(t, tt.code, run(tt.args, &stderr), stderr.String())
			require.Contains(t, stderr.String(), tt.message)
			require.NotContains(t, stderr.String(), "HTTP on", "nothing is served")
		})
	}
}
