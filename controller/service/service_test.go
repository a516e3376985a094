package service

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/controller"
	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/lockertwin/lockertwin/twin"
	"github.com/lockertwin/lockertwin/twin/mqttlink"
	"github.com/stretchr/testify/require"
)

const wait = 10 * time.Second

// reconnectWait bounds waits that include a cabinet reconnecting to a
// restarted lockerd (autopaho retries every second; a loaded CI machine
// running the race detector can take far longer than that).
const reconnectWait = 30 * time.Second

// inbox is the recipients' side: notifications by parcel.
type inbox struct {
	mu    sync.Mutex
	codes map[string]string
	ch    chan controller.Notification
}

func newInbox() *inbox {
	return &inbox{codes: map[string]string{}, ch: make(chan controller.Notification, 64)}
}

func (b *inbox) Notify(_ string, n controller.Notification) {
	b.mu.Lock()
	if n.Code != "" {
		b.codes[n.Parcel] = n.Code
	}
	b.mu.Unlock()
	b.ch <- n
}

func (b *inbox) await(t *testing.T, parcel string, kind controller.NotificationKind) controller.Notification {
	t.Helper()
	deadline := time.After(reconnectWait)
	for {
		select {
		case n := <-b.ch:
			if n.Parcel == parcel && n.Kind == kind {
				return n
			}
		case <-deadline:
			t.Fatalf("no %s notification for %s", kind, parcel)
		}
	}
}

// doors tells the test when a door opened.
type doors struct{ ch chan [2]any }

func (d *doors) DoorOpened(cab string, slot int, cmd string) { d.ch <- [2]any{cab, slot} }
func (d *doors) DoorJammed(string, int)                      {}

func (d *doors) await(t *testing.T) (string, int) {
	t.Helper()
	select {
	case x := <-d.ch:
		return x[0].(string), x[1].(int)
	case <-time.After(wait):
		t.Fatal("no door opened")
	}
	return "", 0
}

func testStreams(name string) *rand.Rand { return rand.New(rand.NewPCG(1, uint64(len(name)))) }

func tinyLayout(t testing.TB) []SiteLayout {
	src := `version: 1
name: tiny
duration: 1d
compartment_classes: [{name: S, width_mm: 380, height_mm: 80, depth_mm: 640}, {name: M, width_mm: 380, height_mm: 190, depth_mm: 640}]
cabinet_models: [{name: m, compartments: {S: 3, M: 2}}]
sites: [{id: lobby, cabinets: [{model: m, count: 1}]}]
demand: {parcels_per_day: 1, size_mix: {S: 1}}
recipients: {pickup_delay: {distribution: fixed, value: 1h}}
`
	sc, _, err := scenarios.Parse("tiny.yaml", []byte(src))
	require.NoError(t, err)
	layouts, err := LayoutsFromScenario(sc)
	require.NoError(t, err)
	return layouts
}

type harness struct {
	t       *testing.T
	svc     *Service
	dir     string
	box     *inbox
	cab     *mqttlink.Runner
	doors   *doors
	base    string
	courier string
	admin   string
}

func start(t *testing.T, dir string, box *inbox) *harness { return startAt(t, dir, box, "", "") }

func startAt(t *testing.T, dir string, box *inbox, httpAddr, mqttAddr string) *harness {
	return startWith(t, dir, Config{Notifier: box, HTTPAddr: httpAddr, MQTTAddr: mqttAddr})
}

// startWith starts lockerd in dir with the tiny layout and cfg.
func startWith(t *testing.T, dir string, cfg Config) *harness {
	box, _ := cfg.Notifier.(*inbox)
	cfg.DataDir, cfg.Sites = dir, tinyLayout(t)
	svc, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, svc.Start())
	h := &harness{t: t, svc: svc, dir: dir, box: box, base: "http://" + svc.HTTPAddr(), doors: &doors{ch: make(chan [2]any, 16)}}
	h.admin, h.courier = svc.Tokens()
	return h
}

// place and take are a courier putting a parcel into the open door at
// slot and a recipient taking it out; each closes the door after.
func (h *harness) place(slot int) {
	h.cab.Do(func(c *twin.Cabinet) { require.NoError(h.t, c.Place(slot)); require.NoError(h.t, c.Close(slot)) })
}

func (h *harness) take(slot int) {
	h.cab.Do(func(c *twin.Cabinet) { require.NoError(h.t, c.Remove(slot)); require.NoError(h.t, c.Close(slot)) })
}

// pickUp has the parcel's recipient type code at cabinet c1 and take it.
func (h *harness) pickUp(parcel, code string) {
	h.t.Helper()
	status, res := h.call("POST", "/v1/sites/lobby/pickup", "", map[string]any{"cabinet": "c1", "code": code})
	require.Equal(h.t, 200, status, res)
	_, slot := h.doors.await(h.t)
	h.take(slot)
	h.eventually(parcel, "picked_up")
}

func (h *harness) attachCabinet() { h.attachCabinetWith(twin.CabinetConfig{}) }

// attachCabinetWith attaches the site's cabinet as cfg says (faults,
// memory); its five compartments are added.
func (h *harness) attachCabinetWith(cfg twin.CabinetConfig) {
	secrets, err := NewCabinetSecrets(h.dir)
	require.NoError(h.t, err)
	require.Len(h.t, secrets, 1)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	h.cab, err = mqttlink.Start(ctx, mqttlink.Config{Broker: "mqtt://" + h.svc.MQTTAddr(), Site: "lobby", Cabinet: secrets[0].Cabinet, Secret: secrets[0].Secret},
		twin.CabinetConfig{Compartments: make([]twin.CompartmentSpec, 5), Faults: cfg.Faults, Memory: cfg.Memory},
		testStreams, h.doors)
	require.NoError(h.t, err)
}

func (h *harness) stop() {
	if h.cab != nil {
		_ = h.cab.Close(context.Background())
	}
	require.NoError(h.t, h.svc.Shutdown(context.Background()))
}

func (h *harness) call(method, path, token string, body any) (int, map[string]any) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	require.NoError(h.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func (h *harness) state(parcel string) string {
	code, out := h.call("GET", "/v1/sites/lobby/parcels/"+parcel, h.courier, nil)
	require.Equal(h.t, 200, code)
	return out["state"].(string)
}

func (h *harness) eventually(parcel, want string) {
	h.t.Helper()
	require.Eventually(h.t, func() bool { return h.state(parcel) == want }, wait, 20*time.Millisecond, "parcel %s never became %s (is %s)", parcel, want, h.state(parcel))
}

// TestEndToEnd: announce → deposit → notification with a code → pickup →
// picked up, with a virtual cabinet attached over MQTT; then wrong codes and
// the lockout; then a restart that loses nothing.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	box := newInbox()
	h := start(t, dir, box)
	h.attachCabinet()

	code, res := h.call("POST", "/v1/sites/lobby/parcels", h.courier, map[string]any{"id": "p1", "class": "S", "recipient": "ana@example.org"})
	require.Equal(t, http.StatusCreated, code, res)
	require.Equal(t, "c1", res["cabinet"])
	require.Equal(t, "S", res["class"])

	code, res = h.call("POST", "/v1/sites/lobby/parcels/p1/deposit", h.courier, nil)
	require.Equal(t, http.StatusAccepted, code, res)
	cab, slot := h.doors.await(t)
	require.Equal(t, "c1", cab)
	require.Equal(t, int(res["compartment"].(float64)), slot)
	h.cab.Do(func(c *twin.Cabinet) {
		require.NoError(t, c.Place(slot))
		require.NoError(t, c.Close(slot))
	})
	note := box.await(t, "p1", controller.NotifyArrival)
	require.Len(t, note.Code, controller.CodeDigits)
	h.eventually("p1", "awaiting_pickup")

	// Wrong code, then the right one.
	code, res = h.call("POST", "/v1/sites/lobby/pickup", "", map[string]any{"cabinet": "c1", "code": "000000000000"})
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, "wrong_code", res["code"])
	code, res = h.call("POST", "/v1/sites/lobby/pickup", "", map[string]any{"cabinet": "c1", "code": note.Code})
	require.Equal(t, 200, code, res)
	_, slot = h.doors.await(t)
	picked := h.svc.hub.subscribe(controller.PickedUp)
	h.cab.Do(func(c *twin.Cabinet) {
		require.NoError(t, c.Remove(slot))
		require.NoError(t, c.Close(slot))
	})
	// Nothing waits on the door report that ends the pickup, and no input
	// follows it: its lazy commit goes through on its own (observations
	// are published only after their commit).
	select {
	case o := <-picked:
		require.Equal(t, "p1", o.Parcel)
	case <-time.After(wait):
		t.Fatal("picked_up never committed")
	}
	h.svc.hub.unsubscribe(picked)
	h.eventually("p1", "picked_up")

	// History, site view, audit, metrics, OpenAPI.
	code, res = h.call("GET", "/v1/sites/lobby/parcels/p1", h.courier, nil)
	require.Equal(t, 200, code)
	kinds := []string{}
	for _, e := range res["history"].([]any) {
		kinds = append(kinds, e.(map[string]any)["kind"].(string))
	}
	require.Equal(t, "announced", kinds[0])
	require.Equal(t, "picked_up", kinds[len(kinds)-1])
	require.NotContains(t, strings.Join(kinds, ","), note.Code)
	// Finished, it is no longer in the core: where it was picked up from
	// is read from its history.
	require.Equal(t, "c1", res["cabinet"])
	require.EqualValues(t, slot, res["compartment"])
	require.Equal(t, "S", res["class"])
	code, res = h.call("GET", "/v1/sites/lobby", h.courier, nil)
	require.Equal(t, 200, code)
	require.Len(t, res["compartments"], 5)
	require.Equal(t, []any{"S", "M"}, res["classes"], "the scenario's order")
	require.Equal(t, []any{map[string]any{"cabinet": "c1", "online": true}}, res["cabinets"])
	code, res = h.call("GET", "/v1/audit/verify", h.admin, nil)
	require.Equal(t, 200, code, res)
	require.Equal(t, true, res["ok"])
	resp, err := http.Get(h.base + "/metrics")
	require.NoError(t, err)
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(metricsText), `lockerd_http_requests_total{route="/v1/sites/{site}/pickup",status="401"} 1`)
	require.Contains(t, string(metricsText), "lockerd_door_round_trip_seconds_count 2")
	require.Contains(t, string(metricsText), `lockerd_mqtt_clients_connected 1`)
	require.Regexp(t, `lockerd_mqtt_messages_received_total [1-9]`, string(metricsText))
	require.Regexp(t, `lockerd_mqtt_messages_sent_total [1-9]`, string(metricsText))
	require.Contains(t, string(metricsText), "lockerd_mqtt_messages_dropped_total 0")
	for _, name := range []string{"lockerd_store_transactions_total", "lockerd_store_batches_total", "lockerd_store_events_total"} {
		require.Regexp(t, name+` [1-9]`, string(metricsText))
	}
	code, res = h.call("GET", "/v1/openapi.json", "", nil)
	require.Equal(t, 200, code)
	require.Equal(t, "3.1.0", res["openapi"])

	// A second parcel waits in its locker across a restart.
	code, _ = h.call("POST", "/v1/sites/lobby/parcels", h.courier, map[string]any{"id": "p2", "class": "M", "recipient": "bo@example.org"})
	require.Equal(t, http.StatusCreated, code)
	code, _ = h.call("POST", "/v1/sites/lobby/parcels/p2/deposit", h.courier, nil)
	require.Equal(t, http.StatusAccepted, code)
	_, slot = h.doors.await(t)
	h.place(slot)
	n2 := box.await(t, "p2", controller.NotifyArrival)
	h.eventually("p2", "awaiting_pickup")

	// lockerd stops; the cabinet stays up and reconnects when it is back.
	runner, doorsSeen, mqttAddr, httpAddr := h.cab, h.doors, h.svc.MQTTAddr(), h.svc.HTTPAddr()
	require.NoError(t, h.svc.Shutdown(context.Background()))
	h = startAt(t, dir, box, httpAddr, mqttAddr)
	h.cab, h.doors = runner, doorsSeen
	defer h.stop()
	restarted := time.Now()
	require.Eventually(t, runner.Connected, reconnectWait, 20*time.Millisecond, "the cabinet reconnects")
	t.Logf("the cabinet reconnected %v after lockerd restarted", time.Since(restarted).Round(time.Millisecond))
	require.Equal(t, "awaiting_pickup", h.state("p2"), "state rebuilt from the log")
	require.Equal(t, "picked_up", h.state("p1"))
	h.pickUp("p2", n2.Code)
	code, res = h.call("GET", "/v1/audit/verify", h.admin, nil)
	require.Equal(t, 200, code, res)
}

func TestBadRequestsAre4xx(t *testing.T) {
	h := start(t, t.TempDir(), newInbox())
	defer h.stop()
	tests := []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      string
	}{
		{"no token", "POST", "/v1/sites/lobby/parcels", "", map[string]any{"id": "x", "class": "S", "recipient": "r"}, 401, "unauthenticated"},
		{"wrong token", "POST", "/v1/sites/lobby/parcels", "nope", map[string]any{"id": "x", "class": "S", "recipient": "r"}, 401, "unauthenticated"},
		{"wrong token, admin route", "GET", "/v1/audit/verify", "nope", nil, 401, "unauthenticated"},
		{"courier cannot audit", "GET", "/v1/audit/verify", "courier", nil, 403, "forbidden"},
		{"unknown site", "POST", "/v1/sites/nowhere/parcels", "courier", map[string]any{"id": "x", "class": "S", "recipient": "r"}, 404, "unknown_site"},
		{"unknown field", "POST", "/v1/sites/lobby/parcels", "courier", map[string]any{"id": "x", "class": "S", "recipient": "r", "size": 3}, 400, "bad_request"},
		{"unknown class", "POST", "/v1/sites/lobby/parcels", "courier", map[string]any{"id": "x", "class": "XL", "recipient": "r"}, 400, "bad_request"},
		{"bad id", "POST", "/v1/sites/lobby/parcels", "courier", map[string]any{"id": "a b", "class": "S", "recipient": "r"}, 400, "bad_request"},
		{"unknown parcel", "GET", "/v1/sites/lobby/parcels/ghost", "courier", nil, 404, "unknown_parcel"},
		{"deposit unknown parcel", "POST", "/v1/sites/lobby/parcels/ghost/deposit", "courier", nil, 404, "unknown_parcel"},
		{"pickup without code", "POST", "/v1/sites/lobby/pickup", "", map[string]any{"cabinet": "c1"}, 400, "bad_request"},
		{"pickup at unknown cabinet", "POST", "/v1/sites/lobby/pickup", "", map[string]any{"cabinet": "c9", "code": "123456789012"}, 404, "unknown_cabinet"},
		{"forged qr", "POST", "/v1/sites/lobby/pickup", "", map[string]any{"cabinet": "c1", "qr": "LT1.x.c1.1.0.1.AAAA"}, 401, "bad_qr"},
		{"no such endpoint", "GET", "/v2/anything", "", nil, 404, "not_found"},
		{"no such method", "DELETE", "/v1/sites/lobby/parcels/dup", "courier", nil, 405, "method_not_allowed"},
		{"GET of a POST route", "GET", "/v1/sites/lobby/pickup", "", nil, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := tt.token
			if token == "courier" {
				token = h.courier
			}
			code, res := h.call(tt.method, tt.path, token, tt.body)
			require.Equal(t, tt.status, code, res)
			require.Equal(t, tt.code, res["code"])
			require.NotEmpty(t, res["message"])
		})
	}
	// A 405 says which methods the path has, in Allow as RFC 9110 asks.
	for path, allow := range map[string]string{
		"/v1/sites/lobby/parcels/dup": "GET, HEAD",
		"/v1/sites/lobby/pickup":      "POST",
		"/v1/sites":                   "GET, HEAD, POST",
	} {
		req, _ := http.NewRequest("PUT", h.base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 405, resp.StatusCode, path)
		require.Equal(t, allow, resp.Header.Get("Allow"), path)
	}
	_, res := h.call("DELETE", "/v1/sites/lobby/pickup", "", nil)
	require.Equal(t, "DELETE is not served at /v1/sites/lobby/pickup; POST is", res["message"])
	_, res = h.call("PUT", "/v1/sites", "", nil)
	require.Equal(t, "PUT is not served at /v1/sites; GET, HEAD, POST are", res["message"])

	// A pickup's message says what is wrong: nothing given, or both.
	for _, tc := range []struct {
		body map[string]any
		msg  string
	}{
		{map[string]any{"cabinet": "c1"}, "give the pickup code or the qr payload"},
		{map[string]any{"cabinet": "c1", "qr": ""}, "give the pickup code or the qr payload"},
		{map[string]any{"cabinet": "c1", "code": "123456789012", "qr": "LT1.x"}, "give a code or a qr, not both"},
	} {
		code, res := h.call("POST", "/v1/sites/lobby/pickup", "", tc.body)
		require.Equal(t, 400, code, res)
		require.Equal(t, tc.msg, res["message"])
	}
	// Garbage JSON.
	req, _ := http.NewRequest("POST", h.base+"/v1/sites/lobby/parcels", strings.NewReader("{not json"))
	req.Header.Set("Authorization", "Bearer "+h.courier)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 400, resp.StatusCode)

	// Announcing twice is idempotent; with other details, a conflict.
	body := map[string]any{"id": "dup", "class": "S", "recipient": "r"}
	code, _ := h.call("POST", "/v1/sites/lobby/parcels", h.courier, body)
	require.Equal(t, 201, code)
	code, _ = h.call("POST", "/v1/sites/lobby/parcels", h.courier, body)
	require.Equal(t, 201, code)
	body["class"] = "M"
	code, res = h.call("POST", "/v1/sites/lobby/parcels", h.courier, body)
	require.Equal(t, 409, code)
	require.Equal(t, "duplicate_parcel", res["code"])
}

func TestLockoutOverHTTP(t *testing.T) {
	h := start(t, t.TempDir(), newInbox())
	defer h.stop()
	for i := 0; i < 4; i++ {
		code, _ := h.call("POST", "/v1/sites/lobby/pickup", "", map[string]any{"cabinet": "c1", "code": "111111111111"})
		require.Equal(t, 401, code)
	}
	req, _ := http.NewRequest("POST", h.base+"/v1/sites/lobby/pickup", strings.NewReader(`{"cabinet":"c1","code":"111111111111"}`))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
}

// TestCodeLockoutOverHTTP: three wrong guesses at one parcel's code lock
// that code: each guess is a 401 like any wrong code; the right code is
// then a 429 that says for how long; the parcel's view shows the lock.
func TestCodeLockoutOverHTTP(t *testing.T) {
	box := newInbox()
	h := start(t, t.TempDir(), box)
	defer h.stop()
	h.attachCabinet()
	code, res := h.call("POST", "/v1/sites/lobby/parcels", h.courier, map[string]any{"id": "p1", "class": "S", "recipient": "ana@example.org"})
	require.Equal(t, http.StatusCreated, code, res)
	code, res = h.call("POST", "/v1/sites/lobby/parcels/p1/deposit", h.courier, nil)
	require.Equal(t, http.StatusAccepted, code, res)
	_, slot := h.doors.await(t)
	h.place(slot)
	note := box.await(t, "p1", controller.NotifyArrival)
	h.eventually("p1", "awaiting_pickup")

	n, err := strconv.ParseUint(note.Code, 10, 64)
	require.NoError(t, err)
	wrong := fmt.Sprintf("%012d", (n+twin.MaxCompartments)%1_000_000_000_000) // the same compartment, another secret
	for i := 1; i <= 3; i++ {
		code, res = h.call("POST", "/v1/sites/lobby/pickup", "", map[string]any{"cabinet": "c1", "code": wrong})
		require.Equal(t, http.StatusUnauthorized, code, "guess %d: %v", i, res)
		require.Equal(t, "wrong_code", res["code"])
	}
	req, _ := http.NewRequest("POST", h.base+"/v1/sites/lobby/pickup", strings.NewReader(`{"cabinet":"c1","code":"`+note.Code+`"}`))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, string(body))
	wait, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.InDelta(t, 3600, wait, 60, "the code unlocks in an hour")
	require.Contains(t, string(body), "parcel p1")
	code, res = h.call("GET", "/v1/sites/lobby/parcels/p1", h.courier, nil)
	require.Equal(t, 200, code, res)
	require.NotEmpty(t, res["code_locked_until"])
	require.Equal(t, "awaiting_pickup", res["state"])
}

func TestEventStream(t *testing.T) {
	h := start(t, t.TempDir(), newInbox())
	defer h.stop()
	req, _ := http.NewRequest("GET", h.base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+h.courier)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	rd := bufio.NewReader(resp.Body)
	_, _ = rd.ReadString('\n') // the comment line
	code, _ := h.call("POST", "/v1/sites/lobby/parcels", h.courier, map[string]any{"id": "s1", "class": "S", "recipient": "secret@example.org"})
	require.Equal(t, 201, code)
	var seen []string
	for len(seen) < 2 {
		line, err := rd.ReadString('\n')
		require.NoError(t, err)
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var o Observation
			require.NoError(t, json.Unmarshal([]byte(data), &o))
			require.Equal(t, "lobby", o.Site)
			require.NotContains(t, data, "secret@example.org", "no personal data in observations")
			seen = append(seen, o.Kind)
		}
	}
	require.Equal(t, []string{"announced", "reserved"}, seen)

	// Only some kinds, by name; an unknown name is refused.
	code, res := h.call("GET", "/v1/events?kinds=reserved,bogus", h.courier, nil)
	require.Equal(t, 400, code)
	require.Contains(t, res["message"], `"bogus"`)
	req, _ = http.NewRequest("GET", h.base+"/v1/events?kinds=reserved", nil)
	req.Header.Set("Authorization", "Bearer "+h.courier)
	only, err := http.DefaultClient.Do(req.WithContext(ctx))
	require.NoError(t, err)
	defer only.Body.Close()
	rd = bufio.NewReader(only.Body)
	_, _ = rd.ReadString('\n')
	code, _ = h.call("POST", "/v1/sites/lobby/parcels", h.courier, map[string]any{"id": "s2", "class": "S", "recipient": "r"})
	require.Equal(t, 201, code)
	for {
		line, err := rd.ReadString('\n')
		require.NoError(t, err)
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var o Observation
			require.NoError(t, json.Unmarshal([]byte(data), &o))
			require.Equal(t, "reserved", o.Kind, "announced is not asked for")
			require.Equal(t, "s2", o.Parcel)
			break
		}
	}
}

func TestProvisionSiteOverTheAPI(t *testing.T) {
	h := start(t, t.TempDir(), newInbox())
	defer h.stop()
	layout := tinyLayout(t)[0]
	layout.ID = "annex"
	code, res := h.call("POST", "/v1/sites", h.courier, layout)
	require.Equal(t, 403, code, "admins provision")
	code, res = h.call("POST", "/v1/sites", h.admin, layout)
	require.Equal(t, 201, code, res)
	cabs := res["cabinets"].([]any)
	require.Len(t, cabs, 1)
	require.Equal(t, "annex.c1", cabs[0].(map[string]any)["username"])
	require.NotEmpty(t, cabs[0].(map[string]any)["secret"])
	code, res = h.call("POST", "/v1/sites", h.admin, layout)
	require.Equal(t, 409, code, res)
	bad := layout
	bad.ID = "Bad Id"
	code, res = h.call("POST", "/v1/sites", h.admin, bad)
	require.Equal(t, 400, code, res)
	code, res = h.call("POST", "/v1/sites/annex/parcels", h.courier, map[string]any{"id": "a1", "class": "M", "recipient": "r"})
	require.Equal(t, 201, code, res)
	resp, err := http.Get(h.base + "/metrics")
	require.NoError(t, err)
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(text), `lockerd_parcels{site="annex",state="reserved"} 1`)
}

// TestSilentCabinetIsTakenOfflineAfterTheGrace: after a start, a cabinet
// that never reports is not handed parcels; once it connects, it is again.
func TestSilentCabinetIsTakenOfflineAfterTheGrace(t *testing.T) {
	dir := t.TempDir()
	svc, err := New(Config{DataDir: dir, Sites: tinyLayout(t), Notifier: newInbox(), StatusGrace: 50 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, svc.Start())
	h := &harness{t: t, svc: svc, dir: dir, base: "http://" + svc.HTTPAddr(), doors: &doors{ch: make(chan [2]any, 16)}}
	h.admin, h.courier = svc.Tokens()
	defer h.stop()

	n := 0
	announce := func() (int, map[string]any) {
		n++
		return h.call("POST", "/v1/sites/lobby/parcels", h.courier, map[string]any{"id": fmt.Sprintf("p%d", n), "class": "S", "recipient": "r"})
	}
	var refusal map[string]any
	require.Eventually(t, func() bool {
		code, res := announce()
		refusal = res
		return code == 409 && res["code"] == "no_capacity"
	}, wait, 20*time.Millisecond, "the only cabinet never reported: nothing may be reserved in it")
	require.Equal(t, "all-busy", refusal["reason"], "an offline cabinet's compartments come back: capacity will help")
	refused := fmt.Sprintf("p%d", n)
	code, res := h.call("GET", "/v1/sites/lobby/parcels/"+refused, h.courier, nil)
	require.Equal(t, 200, code)
	require.Equal(t, "refused", res["state"])
	require.NotContains(t, res, "cabinet", "a refused parcel was never in a compartment")
	require.NotContains(t, res, "compartment")

	code, res = h.call("GET", "/v1/sites/lobby", h.courier, nil)
	require.Equal(t, 200, code)
	require.Equal(t, []any{map[string]any{"cabinet": "c1", "online": false}}, res["cabinets"], "the site view says why")

	h.attachCabinet()
	require.Eventually(t, func() bool {
		code, _ := announce()
		return code == 201
	}, wait, 20*time.Millisecond, "online again once it connects")
	code, res = h.call("POST", "/v1/sites/lobby/parcels", h.courier, map[string]any{"id": refused, "class": "S", "recipient": "r"})
	require.Equal(t, 201, code, "the refused parcel, brought back under its id, is offered afresh: %v", res)
	code, res = h.call("POST", "/v1/sites/lobby/parcels", h.courier, map[string]any{"id": "low", "class": "S", "recipient": "r", "max_top_mm": 1})
	require.Equal(t, 409, code)
	require.Equal(t, map[string]any{"code": "no_capacity", "reason": "out-of-reach",
		"message": "parcel low refused: no compartment available (out-of-reach)"}, res, "no occupancy would meet that reach")
}

// TestEventStreamSaysWhatItDropped: a subscriber that falls behind loses
// observations, not the sites' time; the stream then says how many, after
// the observations still buffered (which are older than the dropped ones).
func TestEventStreamSaysWhatItDropped(t *testing.T) {
	h := newHub()
	ch := h.subscribeN(2)
	for i := range 5 {
		h.publish(controller.Kind(i+1), func() Observation { return Observation{Site: "lobby", Kind: "k" + strconv.Itoa(i)} })
	}
	require.EqualValues(t, 3, h.missedTotal())
	// What the subscriber still holds, on a channel that ends after it.
	held := make(chan Observation, 2)
	held <- <-ch
	held <- <-ch
	close(held)
	var out bytes.Buffer
	stream(&out, func() {}, held, func() int64 { return h.takeMissed(ch) }, nil, nil)
	require.Equal(t, ": lockerd observations\n\n"+
		"event: k0\ndata: {\"site\":\"lobby\",\"seq\":0,\"at\":\"\",\"kind\":\"k0\"}\n\n"+
		"event: k1\ndata: {\"site\":\"lobby\",\"seq\":0,\"at\":\"\",\"kind\":\"k1\"}\n\n"+
		"event: gap\ndata: {\"missed\":3}\n\n", out.String())
	require.Zero(t, h.takeMissed(ch), "told once")
}

// TestEventStreamByKind: a subscriber may take only some kinds; an
// observation no subscriber takes is not even built; an unknown kind asked
// for over HTTP is the caller's mistake.
func TestEventStreamByKind(t *testing.T) {
	h := newHub()
	all, picked := h.subscribe(), h.subscribe(controller.PickedUp, controller.Returned)
	built := 0
	for _, k := range []controller.Kind{controller.Announced, controller.PickedUp, controller.DoorOpened, controller.Returned} {
		h.publish(k, func() Observation { built++; return Observation{Kind: k.String()} })
	}
	require.Equal(t, 4, built)
	require.Len(t, all, 4)
	require.Equal(t, "picked_up", (<-picked).Kind)
	require.Equal(t, "returned", (<-picked).Kind)
	require.Empty(t, picked)
	h.unsubscribe(all)
	h.publish(controller.Announced, func() Observation { built++; return Observation{} })
	require.Equal(t, 4, built, "nobody takes it: not built")

	k, ok := controller.ParseKind("picked_up")
	require.True(t, ok)
	require.Equal(t, controller.PickedUp, k)
	_, ok = controller.ParseKind("nonsense")
	require.False(t, ok)
	_, ok = controller.ParseKind("invalid")
	require.False(t, ok, "the zero kind is never an observation")
}

// TestCompartmentStatus: the site view tells an expired parcel waiting for
// its courier from one waiting for its recipient.
func TestCompartmentStatus(t *testing.T) {
	for _, tc := range []struct {
		inv    string
		parcel controller.State
		want   string
	}{
		{"free", 0, "free"},
		{"reserved", controller.StateReserved, "reserved"},
		{"occupied", controller.StateAwaitingPickup, "occupied"},
		{"occupied", controller.StatePickupOpen, "occupied"},
		{"occupied", controller.StateAwaitingReturn, "awaiting-return"},
		{"occupied", controller.StateReturnOpening, "awaiting-return"},
		{"occupied", controller.StateReturnOpen, "awaiting-return"},
		{"out-of-service", controller.StateAwaitingReturn, "out-of-service"},
	} {
		require.Equal(t, tc.want, compartmentStatus(tc.inv, tc.parcel), "%s holding %s", tc.inv, tc.parcel)
	}
}

// TestLastDeparture: a finished parcel's place is where it was picked up
// or returned from; a parcel reserved and then cancelled or lapsed never
// left a compartment.
func TestLastDeparture(t *testing.T) {
	ev := func(k controller.Kind, comp int32) controller.Event {
		return controller.Event{Kind: k, Cabinet: 0, Compartment: comp}
	}
	for _, tc := range []struct {
		name    string
		history []controller.Event
		want    int32 // compartment, -1: none
	}{
		{"picked up", []controller.Event{ev(controller.Announced, -1), ev(controller.Reserved, 3), ev(controller.Deposited, 3), ev(controller.PickedUp, 3)}, 3},
		{"returned after a pickup aborted", []controller.Event{ev(controller.Deposited, 4), ev(controller.PickupAborted, 4), ev(controller.Expired, 4), ev(controller.Returned, 4)}, 4},
		{"cancelled", []controller.Event{ev(controller.Announced, -1), ev(controller.Reserved, 2), ev(controller.Cancelled, 2)}, -1},
		{"refused", []controller.Event{ev(controller.Announced, -1), ev(controller.Refused, -1)}, -1},
		{"no history", nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := lastDeparture(tc.history)
			if tc.want < 0 {
				require.Nil(t, got)
				return
			}
			require.NotNil(t, got)
			require.Equal(t, tc.want, got.Compartment)
		})
	}
}

// TestViewDirMustHoldTheView: -view names a directory the service
// publishes; one without the built view is refused before anything starts.
func TestViewDirMustHoldTheView(t *testing.T) {
	built := t.TempDir()
	for _, name := range []string{"index.html", "lockerview.wasm", "wasm_exec.js"} {
		require.NoError(t, os.WriteFile(filepath.Join(built, name), []byte("x"), 0o644))
	}
	half := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(half, "index.html"), []byte("x"), 0o644))
	tests := []struct{ dir, want string }{
		{"", ""},
		{built, ""},
		{half, "has no lockerview.wasm (make view-web builds it into bin/view)"},
		{t.TempDir(), "has no index.html"},
		{filepath.Join(built, "missing"), "has no index.html"},
	}
	for _, tt := range tests {
		err := checkViewDir(tt.dir)
		if tt.want == "" {
			require.NoError(t, err, tt.dir)
			continue
		}
		require.ErrorContains(t, err, tt.want, tt.dir)
	}
	_, err := New(Config{DataDir: t.TempDir(), ViewDir: half})
	require.ErrorContains(t, err, "view directory")
}

// TestOperatorEndpoints: what an operator needs when a door fails, over
// the API. A jammed door puts its parcel in exception and its compartment
// out of service; the operator lists the exceptions, resolves one, and
// puts the repaired compartment back in service. A courier withdraws a
// parcel not yet deposited.
func TestOperatorEndpoints(t *testing.T) {
	h := start(t, t.TempDir(), newInbox())
	defer h.stop()
	h.attachCabinetWith(twin.CabinetConfig{Faults: twin.Faults{DoorJamProbability: 1}}) // every door jams

	code, res := h.call("POST", "/v1/sites/lobby/parcels", h.courier, map[string]any{"id": "p1", "class": "S", "recipient": "r"})
	require.Equal(t, 201, code, res)
	code, res = h.call("POST", "/v1/sites/lobby/parcels/p1/deposit", h.courier, nil)
	require.Equal(t, 202, code, res)
	h.eventually("p1", "exception")

	code, res = h.call("GET", "/v1/sites/lobby/exceptions", h.courier, nil)
	require.Equal(t, 403, code, "an operator's list: admin only")
	code, res = h.call("GET", "/v1/sites/lobby/exceptions", h.admin, nil)
	require.Equal(t, 200, code, res)
	parcels := res["parcels"].([]any)
	require.Len(t, parcels, 1)
	ex := parcels[0].(map[string]any)
	require.Equal(t, "p1", ex["parcel"])
	require.Equal(t, "command_jammed", ex["exception"])
	require.Equal(t, "deposit_opening", ex["previous_state"])
	slot := int(ex["compartment"].(float64))
	inService := fmt.Sprintf("/v1/sites/lobby/cabinets/c1/compartments/%d/in-service", slot)
	status := func() string {
		_, site := h.call("GET", "/v1/sites/lobby", h.courier, nil)
		for _, c := range site["compartments"].([]any) {
			if c := c.(map[string]any); int(c["compartment"].(float64)) == slot {
				return c["status"].(string)
			}
		}
		return ""
	}
	require.Equal(t, "out-of-service", status())

	tests := []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      string
	}{
		{"resolve as a courier", "POST", "/v1/sites/lobby/parcels/p1/resolve", h.courier, map[string]any{"resolution": "removed"}, 403, "forbidden"},
		{"resolve without a body", "POST", "/v1/sites/lobby/parcels/p1/resolve", h.admin, nil, 400, "bad_request"},
		{"resolve how?", "POST", "/v1/sites/lobby/parcels/p1/resolve", h.admin, map[string]any{"resolution": "ignore"}, 400, "bad_request"},
		{"resolve an unknown parcel", "POST", "/v1/sites/lobby/parcels/ghost/resolve", h.admin, map[string]any{"resolution": "resume"}, 404, "unknown_parcel"},
		{"in service at no such cabinet", "POST", "/v1/sites/lobby/cabinets/c9/compartments/1/in-service", h.admin, nil, 404, "unknown_cabinet"},
		{"no such compartment", "POST", "/v1/sites/lobby/cabinets/c1/compartments/99/in-service", h.admin, nil, 404, "unknown_compartment"},
		{"not a slot", "POST", "/v1/sites/lobby/cabinets/c1/compartments/first/in-service", h.admin, nil, 400, "bad_request"},
		{"a compartment in service", "POST", "/v1/sites/lobby/cabinets/c1/compartments/5/in-service", h.admin, nil, 400, "bad_request"},
		{"in service as a courier", "POST", inService, h.courier, nil, 403, "forbidden"},
		{"cancel an unknown parcel", "POST", "/v1/sites/lobby/parcels/ghost/cancel", h.courier, nil, 404, "unknown_parcel"},
		{"cancel a parcel in exception", "POST", "/v1/sites/lobby/parcels/p1/cancel", h.courier, nil, 409, "wrong_state"},
		{"exceptions of no site", "GET", "/v1/sites/nowhere/exceptions", h.admin, nil, 404, "unknown_site"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, res := h.call(tt.method, tt.path, tt.token, tt.body)
			require.Equal(t, tt.status, code, res)
			require.Equal(t, tt.code, res["code"], res)
		})
	}
	require.Equal(t, "exception", h.state("p1"), "no refused request changed anything")
	require.Equal(t, "out-of-service", status())

	// Staff took the parcel out; the compartment stays out of service
	// until the door is repaired and put back.
	code, res = h.call("POST", "/v1/sites/lobby/parcels/p1/resolve", h.admin, map[string]any{"resolution": "removed"})
	require.Equal(t, 200, code, res)
	require.Equal(t, "removed", res["state"])
	code, res = h.call("POST", "/v1/sites/lobby/parcels/p1/resolve", h.admin, map[string]any{"resolution": "removed"})
	require.Equal(t, 409, code, "resolved once")
	require.Equal(t, "wrong_state", res["code"])
	_, res = h.call("GET", "/v1/sites/lobby/exceptions", h.admin, nil)
	require.Empty(t, res["parcels"])
	require.Equal(t, "out-of-service", status())
	h.cab.Do(func(c *twin.Cabinet) { require.NoError(t, c.Repair(slot)) })
	code, res = h.call("POST", inService, h.admin, nil)
	require.Equal(t, 200, code, res)
	require.Equal(t, "free", res["status"])
	require.Equal(t, "free", status())

	// A parcel announced and not deposited is withdrawn; its reservation
	// is released.
	code, res = h.call("POST", "/v1/sites/lobby/parcels", h.courier, map[string]any{"id": "p2", "class": "S", "recipient": "r"})
	require.Equal(t, 201, code, res)
	code, res = h.call("POST", "/v1/sites/lobby/parcels/p2/cancel", h.courier, nil)
	require.Equal(t, 200, code, res)
	require.Equal(t, map[string]any{"parcel": "p2", "state": "cancelled"}, res)
	code, _ = h.call("POST", "/v1/sites/lobby/parcels/p2/cancel", h.courier, nil)
	require.Equal(t, 409, code, "cancelled once")
	code, res = h.call("GET", "/v1/audit/verify", h.admin, nil)
	require.Equal(t, 200, code, res)
}

// TestRoutesAreTheOpenAPIPaths: every endpoint lockerd serves is in
// /v1/openapi.json with its method, and the document names no other.
func TestRoutesAreTheOpenAPIPaths(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(openapi, &doc))
	var documented, served []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method != "parameters" {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	svc, err := New(Config{DataDir: t.TempDir(), Sites: tinyLayout(t)})
	require.NoError(t, err)
	defer func() { require.NoError(t, svc.Shutdown(context.Background())) }()
	for _, rt := range svc.apiRoutes() {
		served = append(served, rt.method+" "+rt.path)
	}
	require.ElementsMatch(t, served, documented)
}

// syncBuffer is a log a service writes from its goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCabinetThatLostItsSequence: a cabinet restarted without its memory
// counts its events from 1 again. lockerd has handled those numbers: it
// drops the events, says why once, and carries on once the cabinet is back
// with its memory.
func TestCabinetThatLostItsSequence(t *testing.T) {
	var logs syncBuffer
	h := startWith(t, t.TempDir(), Config{Notifier: newInbox(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer h.stop()
	h.attachCabinet()
	code, res := h.call("POST", "/v1/sites/lobby/parcels", h.courier, map[string]any{"id": "p1", "class": "S", "recipient": "r"})
	require.Equal(t, 201, code, res)
	code, res = h.call("POST", "/v1/sites/lobby/parcels/p1/deposit", h.courier, nil)
	require.Equal(t, 202, code, res)
	_, slot := h.doors.await(t)
	h.place(slot)
	h.eventually("p1", "awaiting_pickup")
	require.NoError(t, h.cab.Close(context.Background()))
	mem := h.cab.Memory() // as it stopped
	require.Positive(t, mem.Seq)
	require.True(t, mem.Occupied[slot-1])

	dropped := func() string {
		resp, err := http.Get(h.base + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		text, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(text), "\n") {
			if name, n, ok := strings.Cut(line, " "); ok && name == "lockerd_cabinet_events_dropped_total" {
				return n
			}
		}
		return "none"
	}
	require.Equal(t, "0", dropped())
	const warning = "cabinet is behind its own sequence"
	require.NotContains(t, logs.String(), warning)

	// Without its memory: a new, empty cabinet counting from 1.
	h.attachCabinet()
	_, res = h.call("POST", "/v1/sites/lobby/parcels/p1/qr", h.admin, nil)
	code, res = h.call("POST", "/v1/sites/lobby/pickup", "", map[string]any{"cabinet": "c1", "qr": res["qr"]})
	require.Equal(t, 200, code, res)
	h.doors.await(t) // it opens the door, but its ack and report are dropped
	require.Eventually(t, func() bool { return dropped() != "0" }, wait, 20*time.Millisecond)
	require.Equal(t, "pickup_opening", h.state("p1"), "nothing it says is taken")
	require.Equal(t, 1, strings.Count(logs.String(), warning), "said once for the connection: %s", logs.String())
	require.Contains(t, logs.String(), "cabinet=c1 seq=0 last_handled="+strconv.FormatUint(mem.Seq, 10), "its state on connecting gave it away")
	require.NoError(t, h.cab.Close(context.Background()))

	// With its memory it carries on: the unacknowledged command is resent
	// when it reports online.
	h.attachCabinetWith(twin.CabinetConfig{Memory: &mem})
	_, slot = h.doors.await(t)
	h.take(slot)
	h.eventually("p1", "picked_up")
}

// TestABadLayoutIsNotStored: a layout lockerd cannot start is refused
// before anything of it is stored. Once, a layout with a cabinet named twice
// passed the first checks, was stored, and failed only when its site
// started: the id was taken for good ("already provisioned with another
// layout") and every later start of lockerd failed on it.
func TestABadLayoutIsNotStored(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, newInbox())
	good := tinyLayout(t)[0]
	good.ID = "annex"
	twice := good
	twice.Cabinets = append(slices.Clone(good.Cabinets), good.Cabinets[0])
	badName := good
	badName.Cabinets = []CabinetLayout{{Name: "C 1", Compartments: good.Cabinets[0].Compartments}}
	tooMany := good
	tooMany.Cabinets = []CabinetLayout{{Name: "c1", Compartments: make([]CompartmentLayout, twin.MaxCompartments+1)}}
	for i := range tooMany.Cabinets[0].Compartments {
		tooMany.Cabinets[0].Compartments[i] = good.Cabinets[0].Compartments[0]
	}
	noPolicy := good
	noPolicy.Policy.Allocator = "worst-fit"
	for _, tt := range []struct {
		name    string
		layout  SiteLayout
		message string
	}{
		{"a cabinet named twice", twice, `cabinet name "c1" is invalid or repeated`},
		{"a cabinet name with a space", badName, `cabinet name "C 1" is invalid or repeated`},
		{"more compartments than the protocol numbers", tooMany, "at most 512"},
		{"an unknown policy", noPolicy, `unknown allocator policy "worst-fit"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, res := h.call("POST", "/v1/sites", h.admin, tt.layout)
			require.Equal(t, 400, code, res)
			require.Equal(t, "bad_layout", res["code"])
			require.Contains(t, res["message"], tt.message)
			code, _ = h.call("GET", "/v1/sites/annex", h.admin, nil)
			require.Equal(t, 404, code)
		})
	}
	secrets, _ := NewCabinetSecrets(dir)
	for _, s := range secrets {
		require.NotEqual(t, "annex", s.Site, "no credentials for a site refused")
	}
	code, res := h.call("POST", "/v1/sites", h.admin, good)
	require.Equal(t, 201, code, "the id is still free: %v", res)

	// And lockerd starts again on this data directory.
	require.NoError(t, h.svc.Shutdown(context.Background()))
	h = start(t, dir, newInbox())
	defer h.stop()
	code, res = h.call("GET", "/v1/sites", h.admin, nil)
	require.Equal(t, 200, code, res)
	require.Equal(t, []any{"annex", "lobby"}, res["sites"])
}

// TestSiteViewSaysWhatIsWrongNow: the site view shows an open door, a door
// left open, and a temperature out of range, for as long as each lasts.
func TestSiteViewSaysWhatIsWrongNow(t *testing.T) {
	h := start(t, t.TempDir(), newInbox())
	defer h.stop()
	st, ok := h.svc.site("lobby")
	require.True(t, ok)
	seq := uint64(0)
	send := func(ev twin.Event) {
		seq++
		ev.V, ev.Seq, ev.ID, ev.At = twin.ProtocolVersion, seq, "c1-e"+strconv.FormatUint(seq, 10), time.Now()
		require.NoError(t, st.call(context.Background(), func() error { return st.core.HandleEvent("c1", ev) }))
	}
	view := func() (compartment2, cabinet map[string]any) {
		code, res := h.call("GET", "/v1/sites/lobby", h.courier, nil)
		require.Equal(t, 200, code, res)
		for _, c := range res["compartments"].([]any) {
			if c := c.(map[string]any); c["compartment"] == 2.0 {
				compartment2 = c
			}
		}
		return compartment2, res["cabinets"].([]any)[0].(map[string]any)
	}
	c2, cab := view()
	require.NotContains(t, c2, "door_open")
	require.NotContains(t, c2, "alarms")
	require.NotContains(t, cab, "alarms")

	hot, back := 7.0, 5.0
	for _, step := range []struct {
		name     string
		ev       twin.Event
		open     bool
		alarms   []any
		cabAlarm []any
	}{
		{"opened by hand", twin.Event{Type: twin.EvtDoorOpened, Compartment: 2}, true, nil, nil},
		{"warm", twin.Event{Type: twin.EvtFault, Fault: twin.FaultTempRange, Compartment: 2, TempC: &hot}, true, []any{"temp_out_of_range"}, nil},
		{"the cabinet warm", twin.Event{Type: twin.EvtFault, Fault: twin.FaultTempRange, TempC: &hot}, true, []any{"temp_out_of_range"}, []any{"temp_out_of_range"}},
		{"closed", twin.Event{Type: twin.EvtDoorClosed, Compartment: 2, Occupied: new(bool)}, false, []any{"temp_out_of_range"}, []any{"temp_out_of_range"}},
		{"back in range", twin.Event{Type: twin.EvtTemp, Compartment: 2, TempC: &back}, false, nil, []any{"temp_out_of_range"}},
		{"the cabinet back", twin.Event{Type: twin.EvtTemp, TempC: &back}, false, nil, nil},
	} {
		send(step.ev)
		c2, cab = view()
		if step.open {
			require.Equal(t, true, c2["door_open"], step.name)
		} else {
			require.NotContains(t, c2, "door_open", step.name)
		}
		resp, err := http.Get(h.base + "/metrics")
		require.NoError(t, err)
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		active := fmt.Sprintf(`lockerd_alarms_active{kind="temp_out_of_range",site="lobby"} %d`, len(step.alarms)+len(step.cabAlarm))
		require.Contains(t, string(metrics), active, step.name)
		require.Contains(t, string(metrics), `lockerd_alarms_active{kind="door_left_open",site="lobby"} 0`, step.name)
		for _, got := range []struct {
			view map[string]any
			want []any
		}{{c2, step.alarms}, {cab, step.cabAlarm}} {
			if want := got.want; want == nil {
				require.NotContains(t, got.view, "alarms", step.name)
			} else {
				require.Equal(t, want, got.view["alarms"], step.name)
			}
		}
	}
}

// TestAReissuedCodeOverHTTP: customer service sends a recipient whose code
// never came a new one (admin only). The old code is then wrong, the new
// one opens the door; a parcel with no code to replace is refused.
func TestAReissuedCodeOverHTTP(t *testing.T) {
	box := newInbox()
	h := start(t, t.TempDir(), box)
	defer h.stop()
	h.attachCabinet()
	code, res := h.call("POST", "/v1/sites/lobby/parcels", h.courier, map[string]any{"id": "p1", "class": "S", "recipient": "r"})
	require.Equal(t, 201, code, res)
	for _, tt := range []struct {
		name, parcel, token string
		status              int
		code                string
	}{
		{"not deposited yet", "p1", h.admin, 409, "wrong_state"},
		{"no such parcel", "ghost", h.admin, 404, "unknown_parcel"},
		{"as a courier", "p1", h.courier, 403, "forbidden"},
		{"without a token", "p1", "", 401, "unauthenticated"},
	} {
		code, res := h.call("POST", "/v1/sites/lobby/parcels/"+tt.parcel+"/code", tt.token, nil)
		require.Equal(t, tt.status, code, "%s: %v", tt.name, res)
		require.Equal(t, tt.code, res["code"], tt.name)
	}
	code, res = h.call("POST", "/v1/sites/lobby/parcels/p1/deposit", h.courier, nil)
	require.Equal(t, 202, code, res)
	_, slot := h.doors.await(t)
	h.place(slot)
	old := box.await(t, "p1", controller.NotifyArrival)
	h.eventually("p1", "awaiting_pickup")

	code, res = h.call("POST", "/v1/sites/lobby/parcels/p1/code", h.admin, nil)
	require.Equal(t, 200, code, res)
	require.Equal(t, map[string]any{"parcel": "p1", "state": "awaiting_pickup", "cabinet": "c1", "compartment": float64(slot)}, res)
	fresh := box.await(t, "p1", controller.NotifyCodeReissued)
	require.NotEqual(t, old.Code, fresh.Code)
	code, res = h.call("POST", "/v1/sites/lobby/pickup", "", map[string]any{"cabinet": "c1", "code": old.Code})
	require.Equal(t, 401, code, res)
	require.Equal(t, "wrong_code", res["code"])
	h.pickUp("p1", fresh.Code)
	code, res = h.call("GET", "/v1/audit/verify", h.admin, nil)
	require.Equal(t, 200, code, res)
}

// TestASlowBodyIsCutOff: a client that sends its headers and then trickles
// its body (or stops) is answered 400 once BodyTimeout has passed, and its
// connection closed, instead of holding both for as long as it likes. The
// event stream's GET, which has no body, is not cut off by it.
func TestASlowBodyIsCutOff(t *testing.T) {
	h := startWith(t, t.TempDir(), Config{Notifier: newInbox(), BodyTimeout: 200 * time.Millisecond})
	defer h.stop()
	req, err := http.NewRequest("GET", h.base+"/v1/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+h.courier)
	stream, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer stream.Body.Close()
	require.Equal(t, 200, stream.StatusCode)

	conn, err := net.Dial("tcp", h.svc.HTTPAddr())
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /v1/sites/lobby/pickup HTTP/1.1\r\nHost: lockerd\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"cabinet\":")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(wait))) // the test's own bound, far above the timeout
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "lockerd answers before the test's bound")
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, 400, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), "timeout")
	require.True(t, resp.Close, "and closes the connection")

	// The stream opened before is still open: an observation reaches it.
	code, res := h.call("POST", "/v1/sites/lobby/parcels", h.courier, map[string]any{"id": "p1", "class": "S", "recipient": "r"})
	require.Equal(t, 201, code, res)
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"p1"`) {
				line <- sc.Text()
				return
			}
		}
		close(line)
	}()
	select {
	case l, ok := <-line:
		require.True(t, ok, "the stream ended")
		require.Contains(t, l, "announced")
	case <-time.After(wait):
		t.Fatal("no observation on the stream")
	}
}

// TestParcelViewSaysItWasInAnExcursion: a parcel whose compartment went out
// of temperature range while it was in it says so, for good, in its view.
func TestParcelViewSaysItWasInAnExcursion(t *testing.T) {
	h := start(t, t.TempDir(), newInbox())
	defer h.stop()
	st, ok := h.svc.site("lobby")
	require.True(t, ok)
	seq := uint64(0)
	send := func(ev twin.Event) {
		seq++
		ev.V, ev.Seq, ev.ID, ev.At = twin.ProtocolVersion, seq, "c1-e"+strconv.FormatUint(seq, 10), time.Now()
		require.NoError(t, st.call(context.Background(), func() error { return st.core.HandleEvent("c1", ev) }))
	}
	var door controller.DoorOpening
	require.NoError(t, st.call(context.Background(), func() error {
		if _, err := st.core.Announce("p1", controller.ParcelSpec{Class: "S"}, "r"); err != nil {
			return err
		}
		var err error
		door, err = st.core.StartDeposit("p1")
		return err
	}))
	occupied := true
	send(twin.Event{Type: twin.EvtAck, Command: door.Command})
	send(twin.Event{Type: twin.EvtDoorOpened, Compartment: door.Compartment, Command: door.Command})
	send(twin.Event{Type: twin.EvtDoorClosed, Compartment: door.Compartment, Occupied: &occupied})
	parcel := func() map[string]any {
		code, res := h.call("GET", "/v1/sites/lobby/parcels/p1", h.courier, nil)
		require.Equal(t, 200, code, res)
		return res
	}
	require.Equal(t, "awaiting_pickup", parcel()["state"])
	require.NotContains(t, parcel(), "temp_excursion")
	hot, back := 9.0, 4.0
	send(twin.Event{Type: twin.EvtFault, Fault: twin.FaultTempRange, Compartment: door.Compartment, TempC: &hot})
	send(twin.Event{Type: twin.EvtTemp, Compartment: door.Compartment, TempC: &back})
	require.Equal(t, true, parcel()["temp_excursion"])
}
