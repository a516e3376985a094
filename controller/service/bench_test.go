package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/controller"
	"github.com/lockertwin/lockertwin/controller/store/sqlite"
	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/lockertwin/lockertwin/twin"
	"github.com/lockertwin/lockertwin/twin/mqttlink"
)

// quickPeople place or take the item and close the door at once.
type quickPeople struct{ r *mqttlink.Runner }

func (q *quickPeople) DoorOpened(_ string, slot int, cmd string) {
	if cmd == "" {
		return
	}
	go q.r.Do(func(c *twin.Cabinet) {
		if _, occ, _ := c.DoorState(slot); occ {
			_ = c.Remove(slot)
		} else {
			_ = c.Place(slot)
		}
		_ = c.Close(slot)
	})
}
func (q *quickPeople) DoorJammed(string, int) {}

// BenchmarkFlows runs complete deposit+pickup flows through lockerd's HTTP
// API and MQTT on loopback: announce, deposit (command, ack, door events),
// notification with the code, pickup (command, ack, door events), picked
// up. Four sites of four 60-door cabinets, 16 flows in flight (FLOWS_IN_FLIGHT
// overrides; FLOWS_SYNC=normal for the faster durability).
func BenchmarkFlows(b *testing.B) {
	src := `version: 1
name: bench
duration: 1d
compartment_classes: [{name: S, width_mm: 380, height_mm: 80, depth_mm: 640}]
cabinet_models: [{name: m, compartments: {S: 60}}]
sites:
  - {id: s1, cabinets: [{model: m, count: 4}]}
  - {id: s2, cabinets: [{model: m, count: 4}]}
  - {id: s3, cabinets: [{model: m, count: 4}]}
  - {id: s4, cabinets: [{model: m, count: 4}]}
demand: {parcels_per_day: 1, size_mix: {S: 1}}
recipients: {pickup_delay: {distribution: fixed, value: 1h}}
`
	sc, _, err := scenarios.Parse("bench.yaml", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	layouts, _ := LayoutsFromScenario(sc)
	dir := b.TempDir()
	codes := &codeBox{ch: map[string]chan string{}}
	svc, err := New(Config{DataDir: dir, Sites: layouts, Notifier: codes, Sync: sqlite.Sync(os.Getenv("FLOWS_SYNC")), Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Start(); err != nil {
		b.Fatal(err)
	}
	defer svc.Shutdown(context.Background())
	_, courier := svc.Tokens()
	secrets, _ := NewCabinetSecrets(dir)
	for _, s := range secrets {
		q := &quickPeople{}
		r, err := mqttlink.Start(context.Background(), mqttlink.Config{Broker: "mqtt://" + svc.MQTTAddr(), Site: s.Site, Cabinet: s.Cabinet, Secret: s.Secret, ReceiveMaximum: 256},
			twin.CabinetConfig{Compartments: make([]twin.CompartmentSpec, len(s.Chilled))}, testStreams, q)
		if err != nil {
			b.Fatal(err)
		}
		q.r = r
		defer r.Close(context.Background())
	}
	// The hub drops observations for a subscriber that falls behind (it
	// serves live views); this one must see every picked_up.
	done := svc.hub.subscribeN(1<<17, controller.PickedUp)
	defer svc.hub.unsubscribe(done)
	var pickedMu sync.Mutex
	picked := map[string]chan struct{}{}
	go func() {
		for o := range done {
			if o.Kind == "picked_up" {
				pickedMu.Lock()
				if ch, ok := picked[o.Parcel]; ok {
					close(ch)
					delete(picked, o.Parcel)
				}
				pickedMu.Unlock()
			}
		}
	}()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	base := "http://" + svc.HTTPAddr()
	// The client side is kept lean (bodies built by hand, responses decoded
	// only where a field is needed): it shares the two cores with lockerd.
	post := func(path, token, body string, out any) (int, string) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if out != nil && resp.StatusCode < 300 {
			if err := json.Unmarshal(raw, out); err != nil {
				return 0, err.Error()
			}
		}
		return resp.StatusCode, string(raw)
	}
	flow := func(i int) (time.Duration, error) {
		site := "s" + strconv.Itoa(1+i%4)
		id := "b" + strconv.Itoa(i)
		code := codes.expect(id)
		pickedMu.Lock()
		pk := make(chan struct{})
		picked[id] = pk
		pickedMu.Unlock()
		start := time.Now()
		var res struct {
			Cabinet string `json:"cabinet"`
		}
		st, msg := post("/v1/sites/"+site+"/parcels", courier, `{"id":"`+id+`","class":"S","recipient":"r"}`, &res)
		if st != 201 {
			return 0, fmt.Errorf("announce: %d %s", st, msg)
		}
		if st, msg = post("/v1/sites/"+site+"/parcels/"+id+"/deposit", courier, "", nil); st != 202 {
			return 0, fmt.Errorf("deposit: %d %s", st, msg)
		}
		c := <-code
		if st, msg = post("/v1/sites/"+site+"/pickup", "", `{"cabinet":"`+res.Cabinet+`","code":"`+c+`"}`, nil); st != 200 {
			return 0, fmt.Errorf("pickup: %d %s", st, msg)
		}
		select {
		case <-pk:
		case <-time.After(30 * time.Second):
			return 0, fmt.Errorf("flow %s never finished", id)
		}
		return time.Since(start), nil
	}
	inFlight := 16 // the load at which the p99 goal is judged; FLOWS_IN_FLIGHT overrides
	if v, err := strconv.Atoi(os.Getenv("FLOWS_IN_FLIGHT")); err == nil && v > 0 {
		inFlight = v
	}
	lat := make([]time.Duration, b.N)
	errs := make(chan error, b.N)
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	stats0 := svc.store.Stats()
	cpu0 := processCPU()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d, err := flow(i)
			if err != nil {
				errs <- err
			}
			lat[i] = d
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := processCPU() - cpu0
	stats := svc.store.Stats()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "flows/s")

	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	// CPU of the whole process (lockerd, cabinets and HTTP clients) per
	// flow: steadier than flows/s on a shared machine.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/flow")
	b.ReportMetric(float64(stats.Transactions-stats0.Transactions)/float64(b.N), "tx/flow")
}

// codeBox hands each parcel's code to its flow.
type codeBox struct {
	mu sync.Mutex
	ch map[string]chan string
}

func (c *codeBox) expect(parcel string) chan string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan string, 1)
	c.ch[parcel] = ch
	return ch
}

func (c *codeBox) Notify(_ string, n controller.Notification) {
	if n.Kind != controller.NotifyArrival {
		return
	}
	c.mu.Lock()
	ch := c.ch[n.Parcel]
	delete(c.ch, n.Parcel)
	c.mu.Unlock()
	if ch != nil {
		ch <- n.Code
	}
}

// processCPU is the user and system time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
