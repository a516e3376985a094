package main

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/twin"
	"github.com/lockertwin/lockertwin/twin/broker"
	"github.com/stretchr/testify/require"
)

const oneCabinet = `[{"site": "lobby", "cabinet": "c1", "secret": "s3cret", "chilled": [false, true]}]`

// TestRunRefusesBadInputBeforeConnecting: every mistake on the command
// line or in the credentials stops lockerfleet before it connects to
// anything (no broker runs here), with a message saying which.
func TestRunRefusesBadInputBeforeConnecting(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	good := write("good.json", oneCabinet)
	tests := []struct {
		name     string
		args     []string
		code     int
		messages []string
	}{
		{"help", []string{"-h"}, 0, []string{"-jam float"}},
		{"unknown flag", []string{"-nope"}, 2, []string{"flag provided but not defined: -nope"}},
		{"a stray argument", []string{"-secrets", good, "extra", "-jam", "0.1"}, 2,
			[]string{`unexpected argument "extra": lockerfleet takes only flags`}},
		{"jam above 1", []string{"-secrets", good, "-jam", "1.5"}, 2, []string{"lockerfleet: door jam probability must be between 0 and 1, got 1.5"}},
		{"every problem at once", []string{"-secrets", good, "-sensor", "-0.1", "-uncommanded", "-2", "-n", "-1", "-handling", "-1s", "-duration", "-1m", "-repair", "-1h"}, 2,
			[]string{"lockerfleet: occupancy sensor error probability must be between 0 and 1, got -0.1",
				"lockerfleet: uncommanded door openings per cabinet per day must be 0 or more, got -2",
				"lockerfleet: -n must be 0 (all) or more", "lockerfleet: -handling cannot be negative",
				"lockerfleet: -duration cannot be negative", "lockerfleet: -repair cannot be negative"}},
		{"outages without a duration", []string{"-secrets", good, "-outage-mtbf", "1h", "-outage-mttr", "0"}, 2,
			[]string{"cabinet outages need a mean outage duration above 0"}},
		{"a broker URL of another scheme", []string{"-secrets", good, "-broker", "ftp://host"}, 2, []string{`broker URL "ftp://host"`}},
		{"no credentials file", []string{"-secrets", filepath.Join(dir, "none.json")}, 1,
			[]string{"lockerfleet: cannot read the cabinet credentials: open " + filepath.Join(dir, "none.json")}},
		{"credentials not JSON", []string{"-secrets", write("bad.json", "{")}, 1, []string{"bad.json: unexpected end of JSON input"}},
		{"no cabinets", []string{"-secrets", write("empty.json", "[]")}, 1, []string{"empty.json: no cabinets in it"}},
		{"a memory file not JSON", []string{"-secrets", good, "-memory", write("memory.json", "{")}, 1,
			[]string{"memory.json: unexpected end of JSON input (delete it, or run with -memory none, to start the cabinets afresh)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			require.Equal(t, tt.code, run(tt.args, &stderr), stderr.String())
			for _, m := range tt.messages {
				require.Contains(t, stderr.String(), m)
			}
			require.NotContains(t, stderr.String(), "connected", "nothing connects")
		})
	}
}

func TestDecodeSecrets(t *testing.T) {
	tests := []struct {
		name, json, problem string
	}{
		{"one cabinet", oneCabinet, ""},
		{"lockerd's own fields", `[{"site": "a", "cabinet": "b", "username": "a/b", "secret": "x", "chilled": [false]}]`, ""},
		{"not a list", `{"site": "a"}`, "cannot unmarshal object"},
		{"empty", `[]`, "no cabinets in it"},
		{"null", `null`, "no cabinets in it"},
		{"bad site", `[{"site": "Lobby", "cabinet": "c1", "secret": "x", "chilled": [false]}]`, `entry 1: site and cabinet must be 1-64 characters of [a-z0-9-], got "Lobby"/"c1"`},
		{"no cabinet", `[{"site": "a", "secret": "x", "chilled": [false]}]`, `got "a"/""`},
		{"no secret", `[{"site": "a", "cabinet": "b", "chilled": [false]}]`, "entry 1 (a/b): no secret"},
		{"no compartments", `[{"site": "a", "cabinet": "b", "secret": "x"}]`, "entry 1 (a/b): 0 compartments, want 1 to 512"},
		{"twice", `[{"site": "a", "cabinet": "b", "secret": "x", "chilled": [false]}, {"site": "a", "cabinet": "b", "secret": "y", "chilled": [true]}]`,
			"entry 2: cabinet a/b is listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeSecrets([]byte(tt.json))
			if tt.problem == "" {
				require.NoError(t, err)
				require.NotEmpty(t, got)
				return
			}
			require.ErrorContains(t, err, tt.problem)
			require.Nil(t, got)
		})
	}
}

// FuzzDecodeSecrets: any bytes give either cabinets that a fleet can run
// (valid ids, a secret, a compartment count a cabinet can have, each
// cabinet once) or an error, never a panic.
func FuzzDecodeSecrets(f *testing.F) {
	f.Add([]byte(oneCabinet))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"site": "a", "cabinet": "b", "secret": "x", "chilled": [false]}, {"site": "a", "cabinet": "b"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		secrets, err := decodeSecrets(data)
		if err != nil {
			require.Nil(t, secrets)
			return
		}
		require.NotEmpty(t, secrets)
		seen := map[string]bool{}
		for _, s := range secrets {
			key := s.Site + "/" + s.Cabinet
			require.False(t, seen[key], key)
			seen[key] = true
			require.NotEmpty(t, s.Secret)
			require.NotContains(t, key, "+")
			require.False(t, strings.ContainsAny(key, "#\x00 "), key)
			require.True(t, len(s.Chilled) >= 1 && len(s.Chilled) <= 512)
		}
	})
}

// TestFleetMemory: the memory file round-trips; a cabinet resumes from it
// as it stopped after a clean stop, crashSkip further on after a kill, and
// afresh when lockerd has provisioned it anew (another secret, another
// number of compartments) or the file does not know it.
func TestFleetMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleet-memory.json")
	m, err := loadMemory(path)
	require.NoError(t, err, "no file yet: an empty memory")
	require.Nil(t, m.resume("lobby", "c1", "s3cret", 2))
	m.keep("lobby", "c1", "s3cret", twin.Memory{Seq: 41, Version: 9, Occupied: []bool{true, false}, Jammed: []bool{false, true}})
	require.NoError(t, m.save(path))
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "s3cret", "a digest of the secret, not the secret")

	back, err := loadMemory(path)
	require.NoError(t, err)
	require.Equal(t, m, back)
	got := back.resume("lobby", "c1", "s3cret", 2)
	require.Equal(t, &twin.Memory{Seq: 41, Version: 9, Occupied: []bool{true, false}, Jammed: []bool{false, true}}, got)
	require.Nil(t, back.resume("lobby", "c1", "s3cret", 3), "provisioned anew with other compartments")
	require.Nil(t, back.resume("lobby", "c1", "other", 2), "provisioned anew by another lockerd: another secret")
	require.Nil(t, back.resume("lobby", "c2", "s3cret", 2))

	// A file from before logins were kept: taken as it is.
	older := &fleetMemory{Cabinets: map[string]twin.Memory{memoryKey("lobby", "c1"): {Seq: 5, Occupied: []bool{false, false}}}}
	require.EqualValues(t, 5, older.resume("lobby", "c1", "any", 2).Seq)

	// Saved while running, and the fleet was killed after it: every
	// cabinet moves on, those not started this time too.
	back.Clean = false
	require.NoError(t, back.save(path))
	killed, err := loadMemory(path)
	require.NoError(t, err)
	require.True(t, killed.skipped)
	require.EqualValues(t, 41+crashSkip, killed.resume("lobby", "c1", "s3cret", 2).Seq)
	require.EqualValues(t, 41+crashSkip, killed.Cabinets[memoryKey("lobby", "c1")].Seq, "kept for a cabinet not started")
	require.True(t, killed.Clean, "saved again, it is not skipped twice")

	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left beside it")
}

// nowhere is an uplink that drops what a cabinet publishes.
type nowhere struct{}

func (nowhere) PublishEvent(string, twin.Event) {}
func (nowhere) PublishState(string, twin.State) {}
func (nowhere) PublishStatus(string, string)    {}

// FuzzLoadMemory: the memory file is read back from disk, where anything
// may have become of it. Any bytes give an error, or a memory from which
// every cabinet starts (with the memory that fits it, or afresh) and goes
// on counting, and never a panic.
func FuzzLoadMemory(f *testing.F) {
	f.Add([]byte(`{"clean":true,"cabinets":{"lobby/c1":{"seq":41,"version":9,"occupied":[true,false],"jammed":[false,true],` +
		`"commands":[{"id":"lobby-cmd-1","until":"2030-01-01T00:00:00Z","answer":"ack"}]}}}`))
	f.Add([]byte(`{"clean":false,"cabinets":{"lobby/c1":{"seq":7,"occupied":[true]}}}`))
	f.Add([]byte(`{"cabinets":{"lobby/c1":{"occupied":[],"commands":[{"id":"","until":"0001-01-01T00:00:00Z"}]}}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"clean":true,"cabinets":{"lobby/c1":{"seq":3,"occupied":[false]}},"logins":{"lobby/c1":"` + loginOf("secret") + `"}}`))
	dir := f.TempDir()
	at := time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
	streams := func(string) *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "memory.json")
		require.NoError(t, os.WriteFile(path, data, 0o600))
		m, err := loadMemory(path)
		if err != nil {
			return
		}
		for key, kept := range m.Cabinets {
			site, cab, _ := strings.Cut(key, "/")
			for _, n := range []int{len(kept.Occupied), 2} {
				if n < 1 || n > twin.MaxCompartments {
					continue
				}
				mem := m.resume(site, cab, "secret", n)
				c, err := twin.NewCabinet(twin.CabinetConfig{Site: "lobby", Name: "c1", Compartments: make([]twin.CompartmentSpec, n), Memory: mem},
					twin.NewManualClock(at), nowhere{}, nil, streams)
				require.NoError(t, err, "resume gives only a memory that fits")
				c.Start()
				c.HandleCommand(twin.Command{V: twin.ProtocolVersion, ID: "fuzz-1", Type: twin.CmdSync, IssuedAt: at, ExpiresAt: at.Add(time.Minute)})
				if mem != nil && mem.Seq < math.MaxUint64 {
					require.Greater(t, c.Memory().Seq, mem.Seq, "it goes on counting")
				}
			}
		}
	})
}

// TestFleetRemembersItsCabinets runs the fleet against an in-process
// broker twice. In the first run its cabinet is commanded open, and the
// person at the door places an item and closes it: three events. The
// memory file it leaves is clean and says so; the second run's cabinet
// reports itself where the first one stopped, not as a new, empty cabinet
// counting from 1.
func TestFleetRemembersItsCabinets(t *testing.T) {
	creds := broker.NewCredentials()
	_, secret, err := creds.AddCabinet("lobby", "c1")
	require.NoError(t, err)
	b, err := broker.New(broker.Config{TCPAddr: "127.0.0.1:0", Credentials: creds})
	require.NoError(t, err)
	require.NoError(t, b.Start())
	defer b.Close()
	dir := t.TempDir()
	secrets := filepath.Join(dir, "new-cabinet-secrets.json")
	require.NoError(t, os.WriteFile(secrets, []byte(`[{"site":"lobby","cabinet":"c1","secret":"`+secret+`","chilled":[false,false]}]`), 0o600))
	states := make(chan twin.State, 16)
	_, err = b.Subscribe(twin.CabinetTopic("lobby", "c1", twin.ChanState), func(_ string, payload []byte) {
		if st, err := twin.DecodeState(payload); err == nil {
			states <- st
		}
	})
	require.NoError(t, err)
	// The fleet stops after -duration: long enough, even under the race
	// detector on a busy machine, to connect and act on the command.
	args := func(d string) []string {
		return []string{"-broker", "mqtt://" + b.Addr(), "-secrets", secrets, "-handling", "10ms", "-duration", d}
	}

	go func() { // the controller's side: open compartment 2 once the cabinet is up
		<-states
		at := time.Now()
		cmd, _ := json.Marshal(twin.Command{V: twin.ProtocolVersion, ID: "lobby-cmd-1", Type: twin.CmdOpen, Compartment: 2,
			IssuedAt: at, ExpiresAt: at.Add(time.Minute)})
		_ = b.Publish(twin.CabinetTopic("lobby", "c1", twin.ChanCmd), cmd, false, time.Minute)
	}()
	var stderr bytes.Buffer
	require.Equal(t, 0, run(args("3s"), &stderr), stderr.String())
	require.Contains(t, stderr.String(), "lockerfleet: stopped; the next run carries on from the cabinets' memory in "+filepath.Join(dir, "fleet-memory.json"))
	mem, err := loadMemory(filepath.Join(dir, "fleet-memory.json"))
	require.NoError(t, err)
	require.False(t, mem.skipped, "the run stopped cleanly")
	kept := mem.Cabinets["lobby/c1"]
	require.EqualValues(t, 3, kept.Seq, "ack, door opened, door closed")
	require.Equal(t, []bool{false, true}, kept.Occupied)
	require.Len(t, kept.Commands, 1)

	stderr.Reset()
	require.Equal(t, 0, run(args("1s"), &stderr), stderr.String())
	first := <-states // published on connecting
	require.EqualValues(t, 3, first.Seq, "it counts on from where it stopped")
	require.True(t, first.Compartments[1].Occupied, "and still holds the item")
}
