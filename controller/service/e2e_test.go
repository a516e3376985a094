package service

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/controller"
	"github.com/lockertwin/lockertwin/twin"
	"github.com/lockertwin/lockertwin/twin/mqttlink"
	"github.com/stretchr/testify/require"
)

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestThirdPartyClientIsRefusedOtherTopics: Debian's mosquitto clients,
// logged in as a cabinet, get nothing that is not the cabinet's own.
func TestThirdPartyClientIsRefusedOtherTopics(t *testing.T) {
	pub, err1 := exec.LookPath("mosquitto_pub")
	sub, err2 := exec.LookPath("mosquitto_sub")
	require.NoError(t, err1, "mosquitto-clients are installed by `make setup`")
	require.NoError(t, err2, "mosquitto-clients are installed by `make setup`")
	h := start(t, t.TempDir(), newInbox())
	defer h.stop()
	secrets, err := NewCabinetSecrets(h.dir)
	require.NoError(t, err)
	host, port, _ := net.SplitHostPort(h.svc.MQTTAddr())
	login := func(pass string) []string {
		return []string{"-V", "mqttv5", "-h", host, "-p", port, "-i", "lobby.c1", "-u", "lobby.c1", "-P", pass}
	}
	run := func(bin string, args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		out, _ := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		return string(out)
	}
	secret := secrets[0].Secret
	tests := []struct {
		name string
		bin  string
		args []string
		want string
	}{
		{"subscribe to another cabinet's commands", sub, append(login(secret), "-t", "lockers/v1/lobby/c2/cmd", "-C", "1", "-W", "2"), "All subscription requests were denied"},
		{"subscribe to everything", sub, append(login(secret), "-t", "#", "-C", "1", "-W", "2"), "All subscription requests were denied"},
		{"subscribe to its own events", sub, append(login(secret), "-t", "lockers/v1/lobby/c1/evt", "-C", "1", "-W", "2"), "All subscription requests were denied"},
		{"publish a command", pub, append(login(secret), "-q", "1", "-t", "lockers/v1/lobby/c1/cmd", "-m", "x"), "Not authorized"},
		{"publish as another cabinet", pub, append(login(secret), "-q", "1", "-t", "lockers/v1/lobby/c2/evt", "-m", "x"), "Not authorized"},
		{"publish outside lockers/", pub, append(login(secret), "-q", "1", "-t", "anything/else", "-m", "x"), "Not authorized"},
		{"wrong password", pub, append(login("not-the-password"), "-q", "1", "-t", "lockers/v1/lobby/c1/evt", "-m", "x"), "Bad User Name or Password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Contains(t, run(tt.bin, tt.args...), tt.want)
		})
	}
	// Its own command topic is allowed: it waits (and times out) quietly.
	out := run(sub, append(login(secret), "-t", "lockers/v1/lobby/c1/cmd", "-C", "1", "-W", "1")...)
	require.NotContains(t, out, "denied")
}

// lockerdProcess is lockerd as a real subprocess, to be killed.
type lockerdProcess struct {
	cmd               *exec.Cmd
	httpAddr, mqtt    string
	dir, bin, hookURL string
	sync              string // -sync
}

func buildLockerd(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "lockerd")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/lockertwin/lockertwin/controller/cmd/lockerd").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

func (p *lockerdProcess) start(t *testing.T) {
	scen := filepath.Join(p.dir, "tiny.yaml")
	if _, err := os.Stat(scen); err != nil {
		require.NoError(t, os.WriteFile(scen, []byte(`version: 1
name: tiny
duration: 1d
compartment_classes: [{name: S, width_mm: 380, height_mm: 80, depth_mm: 640}, {name: M, width_mm: 380, height_mm: 190, depth_mm: 640}]
cabinet_models: [{name: m, compartments: {S: 3, M: 2}}]
sites: [{id: lobby, cabinets: [{model: m, count: 1}]}]
demand: {parcels_per_day: 1, size_mix: {S: 1}}
recipients: {pickup_delay: {distribution: fixed, value: 1h}}
`), 0o644))
	}
	p.cmd = exec.Command(p.bin, "-http", p.httpAddr, "-mqtt", p.mqtt, "-data", filepath.Join(p.dir, "data"),
		"-scenario", scen, "-webhook", p.hookURL, "-log-level", "warn", "-sync", cmp.Or(p.sync, "full"))
	p.cmd.Stderr = os.Stderr
	require.NoError(t, p.cmd.Start())
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + p.httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, wait, 50*time.Millisecond, "lockerd did not become ready")
}

func (p *lockerdProcess) kill(t *testing.T) {
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	_ = p.cmd.Wait()
}

// TestKilledMidFlowLosesNothing: lockerd is killed with SIGKILL while a
// courier's door is open; the courier closes it while lockerd is down; on
// restart the cabinet's held event completes the deposit, the recipient is
// notified, and the door was opened exactly once. Both durabilities: with
// -sync normal the WAL is checkpointed by its own connection.
func TestKilledMidFlowLosesNothing(t *testing.T) {
	bin := buildLockerd(t)
	for _, sync := range []string{"full", "normal"} {
		t.Run(sync, func(t *testing.T) { killedMidFlow(t, bin, sync) })
	}
}

func killedMidFlow(t *testing.T, bin, sync string) {
	dir := t.TempDir()
	box := newInbox()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only what lockerd signed, with the key it made at its start, is taken.
		key, err := os.ReadFile(filepath.Join(dir, "data", WebhookKeyFile))
		body, _ := io.ReadAll(r.Body)
		if err != nil || VerifyWebhook(bytes.TrimSpace(key), body, r.Header.Get(SignatureHeader), time.Now(), time.Minute) != nil {
			http.Error(w, "not signed by lockerd", http.StatusUnauthorized)
			return
		}
		var m WebhookBody
		if json.Unmarshal(body, &m) == nil {
			box.Notify(m.Site, controller.Notification{Kind: controller.NotificationKind(m.Kind), Parcel: m.Parcel, Code: m.Code})
		}
	}))
	defer hook.Close()
	p := &lockerdProcess{bin: bin, dir: dir, httpAddr: freePort(t), mqtt: freePort(t), hookURL: hook.URL, sync: sync}
	p.start(t)
	defer func() {
		if p.cmd.ProcessState == nil {
			p.kill(t)
		}
	}()
	var tok tokens
	raw, err := os.ReadFile(filepath.Join(dir, "data", "tokens.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &tok))
	h := &harness{t: t, base: "http://" + p.httpAddr, courier: tok.Courier, admin: tok.Admin, doors: &doors{ch: make(chan [2]any, 16)}, dir: filepath.Join(dir, "data")}
	secrets, err := NewCabinetSecrets(h.dir)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cab, err := mqttlink.Start(ctx, mqttlink.Config{Broker: "mqtt://" + p.mqtt, Site: "lobby", Cabinet: "c1", Secret: secrets[0].Secret},
		twin.CabinetConfig{Compartments: make([]twin.CompartmentSpec, 5)}, testStreams, h.doors)
	require.NoError(t, err)
	defer cab.Close(context.Background())

	code, res := h.call("POST", "/v1/sites/lobby/parcels", h.courier, map[string]any{"id": "p1", "class": "S", "recipient": "ana"})
	require.Equal(t, 201, code, res)
	code, res = h.call("POST", "/v1/sites/lobby/parcels/p1/deposit", h.courier, nil)
	require.Equal(t, 202, code, res)
	_, slot := h.doors.await(t)
	p.kill(t) // mid-flow: the door is open, the deposit not yet complete
	cab.Do(func(c *twin.Cabinet) { require.NoError(t, c.Place(slot)); require.NoError(t, c.Close(slot)) })

	p.start(t)
	note := box.await(t, "p1", controller.NotifyArrival)
	h.eventually("p1", "awaiting_pickup")
	var executed, duplicates int
	cab.Do(func(c *twin.Cabinet) { executed, duplicates = c.Stats.Commands, c.Stats.Duplicates })
	require.Equal(t, 1, executed, "the door was opened once")
	t.Logf("after the restart: %d command(s) executed, %d duplicate(s) acknowledged", executed, duplicates)

	code, res = h.call("POST", "/v1/sites/lobby/pickup", "", map[string]any{"cabinet": "c1", "code": note.Code})
	require.Equal(t, 200, code, res)
	_, slot = h.doors.await(t)
	cab.Do(func(c *twin.Cabinet) { require.NoError(t, c.Remove(slot)); require.NoError(t, c.Close(slot)) })
	h.eventually("p1", "picked_up")
	code, res = h.call("GET", "/v1/audit/verify", h.admin, nil)
	require.Equal(t, 200, code, fmt.Sprint(res))
}

// TestCabinetOfflineDuringDeposit: the command is lost while the cabinet is
// away; when the cabinet is back (its status says online) the controller
// sends it again at once, with the same id, and the deposit goes through.
// Retries are a minute apart here, so only the resend can open the door.
func TestCabinetOfflineDuringDeposit(t *testing.T) {
	dir := t.TempDir()
	box := newInbox()
	svc, err := New(Config{DataDir: dir, Sites: tinyLayout(t), Notifier: box,
		CommandTiming: controller.Settings{AckTimeout: time.Minute, MaxAttempts: 3, CommandTTL: 5 * time.Minute}})
	require.NoError(t, err)
	require.NoError(t, svc.Start())
	h := &harness{t: t, svc: svc, dir: dir, box: box, base: "http://" + svc.HTTPAddr(), doors: &doors{ch: make(chan [2]any, 16)}}
	h.admin, h.courier = svc.Tokens()
	defer h.stop()
	code, _ := h.call("POST", "/v1/sites/lobby/parcels", h.courier, map[string]any{"id": "p1", "class": "M", "recipient": "r"})
	require.Equal(t, 201, code)
	code, res := h.call("POST", "/v1/sites/lobby/parcels/p1/deposit", h.courier, nil)
	require.Equal(t, 202, code, res)
	require.Equal(t, "deposit_opening", h.state("p1"), "nobody is listening yet")
	h.attachCabinet() // the cabinet comes back
	_, slot := h.doors.await(t)
	h.place(slot)
	box.await(t, "p1", controller.NotifyArrival)
	h.eventually("p1", "awaiting_pickup")
	code, res = h.call("GET", "/v1/sites/lobby/parcels/p1", h.courier, nil)
	require.Equal(t, 200, code)
	commanded, retries := 0, 0
	for _, e := range res["history"].([]any) {
		switch e.(map[string]any)["kind"] {
		case "door_commanded":
			commanded++
		case "command_retried":
			retries++
		}
	}
	require.Equal(t, 1, commanded)
	require.Zero(t, retries, "resent when the cabinet came online, not at a retry")
	var executed int
	h.cab.Do(func(c *twin.Cabinet) { executed = c.Stats.Commands })
	require.Equal(t, 1, executed)
}

// TestLockerdRejectsABadConfig: the -config file is decoded like a scenario:
// every problem, located, and lockerd does not start.
func TestLockerdRejectsABadConfig(t *testing.T) {
	bin := buildLockerd(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lockerd.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("http: 127.0.0.1:0\nmqtt: [1883]\nverbose: true\n"), 0o644))
	out, err := exec.Command(bin, "-config", cfg, "-data", filepath.Join(dir, "data")).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), cfg+":2:7: mqtt: expected a single value, got a list")
	require.Contains(t, string(out), cfg+`:3:1: unknown key "verbose"`)
}
