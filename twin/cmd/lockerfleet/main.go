// Command lockerfleet runs virtual cabinets in wall-clock time against any
// MQTT broker (lockerd's, or mosquitto), each with its own credentials and
// client, with the twin's fault injection by flag. With -auto the people at
// the cabinets act too: a door that opens for a command gets its item placed
// (if empty) or taken (if full) and is closed a moment later, so a load test
// needs nothing but lockerd, lockerfleet and an HTTP client.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lockertwin/lockertwin/twin"
	"github.com/lockertwin/lockertwin/twin/mqttlink"
)

// cabinetSecret is one entry of lockerd's new-cabinet-secrets.json.
type cabinetSecret struct {
	Site    string `json:"site"`
	Cabinet string `json:"cabinet"`
	Secret  string `json:"secret"`
	Chilled []bool `json:"chilled"`
}

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

// decodeSecrets reads lockerd's new-cabinet-secrets.json: every entry a
// cabinet with valid ids, a secret and 1 to twin.MaxCompartments
// compartments, each cabinet once.
func decodeSecrets(data []byte) ([]cabinetSecret, error) {
	var secrets []cabinetSecret
	if err := json.Unmarshal(data, &secrets); err != nil {
		return nil, err
	}
	if len(secrets) == 0 {
		return nil, errors.New("no cabinets in it (lockerd writes one entry per cabinet it provisions)")
	}
	seen := make(map[[2]string]bool, len(secrets))
	for i, s := range secrets {
		switch {
		case !twin.ValidID(s.Site) || !twin.ValidID(s.Cabinet):
			return nil, fmt.Errorf("entry %d: site and cabinet must be 1-64 characters of [a-z0-9-], got %q/%q", i+1, s.Site, s.Cabinet)
		case s.Secret == "":
			return nil, fmt.Errorf("entry %d (%s/%s): no secret", i+1, s.Site, s.Cabinet)
		case len(s.Chilled) == 0 || len(s.Chilled) > twin.MaxCompartments:
			return nil, fmt.Errorf("entry %d (%s/%s): %d compartments, want 1 to %d", i+1, s.Site, s.Cabinet, len(s.Chilled), twin.MaxCompartments)
		case seen[[2]string{s.Site, s.Cabinet}]:
			return nil, fmt.Errorf("entry %d: cabinet %s/%s is listed twice", i+1, s.Site, s.Cabinet)
		}
		seen[[2]string{s.Site, s.Cabinet}] = true
	}
	return secrets, nil
}

// connectWait is how long a cabinet keeps trying to connect before the
// fleet gives up on it (thousands connect 64 at a time, to a busy broker).
const connectWait = 30 * time.Second

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("lockerfleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokerURL := fs.String("broker", "mqtt://127.0.0.1:1883", "MQTT broker URL")
	secretsFile := fs.String("secrets", "lockerd-data/new-cabinet-secrets.json", "cabinet credentials (lockerd writes them when it provisions)")
	limit := fs.Int("n", 0, "run at most this many cabinets (0: all)")
	auto := fs.Bool("auto", true, "act as the people at the doors: place or take the item and close the door")
	handling := fs.Duration("handling", 2*time.Second, "how long a person takes at an open door")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	seed := fs.Uint64("seed", 1, "seed of the fault streams")
	jam := fs.Float64("jam", 0, "door jam probability per commanded opening")
	sensor := fs.Float64("sensor", 0, "occupancy sensor error probability per reading")
	leftOpen := fs.Float64("left-open", 0, "probability a person leaves a door open")
	uncommanded := fs.Float64("uncommanded", 0, "uncommanded door openings per cabinet per day")
	mtbf := fs.Duration("outage-mtbf", 0, "mean time between cabinet outages (0: none)")
	mttr := fs.Duration("outage-mttr", 5*time.Minute, "mean outage duration")
	memoryFile := fs.String("memory", "", "where the cabinets keep their non-volatile memory between runs (sequence numbers, what each compartment holds); default fleet-memory.json beside -secrets; none: start them as new")
	repair := fs.Duration("repair", 0, "a technician repairs a jammed door this long after it jams (0: never); lockerd's operator then puts it back in service")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	// Flag parsing stops at the first argument that is not a flag: the
	// flags after it would be ignored with it.
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lockerfleet: unexpected argument %q: lockerfleet takes only flags (see -h)\n", fs.Arg(0))
		return 2
	}
	faults := twin.Faults{DoorJamProbability: *jam, SensorErrorProbability: *sensor, DoorLeftOpenProbability: *leftOpen,
		UncommandedOpensPerDay: *uncommanded, OutageMTBF: *mtbf, OutageMTTR: *mttr}
	var bad []error
	if err := faults.Validate(); err != nil {
		bad = append(bad, err)
	}
	for _, c := range []struct {
		name string
		ok   bool
	}{{"-n must be 0 (all) or more", *limit >= 0}, {"-handling cannot be negative", *handling >= 0},
		{"-duration cannot be negative (0: until interrupted)", *duration >= 0},
		{"-repair cannot be negative (0: never)", *repair >= 0}} {
		if !c.ok {
			bad = append(bad, errors.New(c.name))
		}
	}
	if _, err := mqttlink.ParseBroker(*brokerURL); err != nil {
		bad = append(bad, err)
	}
	if len(bad) > 0 {
		for _, err := range bad {
			fmt.Fprintln(stderr, "lockerfleet:", strings.ReplaceAll(err.Error(), "\n", "\nlockerfleet: "))
		}
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	data, err := os.ReadFile(*secretsFile)
	if err != nil {
		fmt.Fprintln(stderr, "lockerfleet: cannot read the cabinet credentials:", err)
		return 1
	}
	secrets, err := decodeSecrets(data)
	if err != nil {
		fmt.Fprintf(stderr, "lockerfleet: %s: %v\n", *secretsFile, err)
		return 1
	}
	if *limit > 0 && *limit < len(secrets) {
		secrets = secrets[:*limit]
	}
	memPath := *memoryFile
	if memPath == "" {
		memPath = filepath.Join(filepath.Dir(*secretsFile), "fleet-memory.json")
	}
	memory := &fleetMemory{Clean: true, Cabinets: map[string]twin.Memory{}}
	if memPath != "none" {
		if memory, err = loadMemory(memPath); err != nil {
			fmt.Fprintln(stderr, "lockerfleet:", err)
			return 1
		}
		if memory.skipped {
			fmt.Fprintf(stderr, "lockerfleet: the last run stopped without saving its cabinets' memory: their sequence numbers skip %d ahead (the controller raises a sequence_gap alarm for each)\n", crashSkip)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	start := time.Now()
	runners := make([]*mqttlink.Runner, len(secrets))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64) // connect 64 at a time
	var failed int
	var mu sync.Mutex
	// The first failed attempt says why the fleet is waiting: the cabinets
	// retry every second for up to connectWait.
	var told sync.Once
	waiting := func(err error) {
		told.Do(func() {
			fmt.Fprintf(stderr, "lockerfleet: not connected yet, retrying for up to %v: %v\n", connectWait, err)
		})
	}
	for i, s := range secrets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			streams := func(name string) *rand.Rand { return rand.New(rand.NewPCG(*seed, fnv(name))) }
			spec := make([]twin.CompartmentSpec, len(s.Chilled))
			for k, c := range s.Chilled {
				spec[k].Chilled = c
			}
			people := &people{handling: *handling, enabled: *auto, repair: *repair}
			cctx, cancel := context.WithTimeout(ctx, connectWait)
			defer cancel()
			r, err := mqttlink.Start(cctx, mqttlink.Config{Broker: *brokerURL, Site: s.Site, Cabinet: s.Cabinet, Secret: s.Secret, Logger: log,
				OnConnectError: waiting},
				twin.CabinetConfig{Compartments: spec, Faults: faults, Memory: memory.resume(s.Site, s.Cabinet, s.Secret, len(spec))}, streams, people)
			if err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
				log.Error("cabinet did not connect", "site", s.Site, "cabinet", s.Cabinet, "err", err)
				return
			}
			people.runner.Store(r)
			runners[i] = r
		}()
	}
	wg.Wait()
	connected := len(secrets) - failed
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if connected > 0 {
		fmt.Fprintf(stderr, "lockerfleet: %d cabinets connected in %v; %.1f KiB heap and %.1f goroutines per cabinet\n",
			connected, time.Since(start).Round(time.Millisecond),
			float64(after.HeapInuse-before.HeapInuse)/1024/float64(connected),
			float64(runtime.NumGoroutine()-goroutines)/float64(connected))
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "lockerfleet: %d cabinets failed to connect\n", failed)
	}
	if connected == 0 {
		return 1 // nothing to run
	}
	// remember collects what the cabinets keep, over what the file kept
	// (of cabinets not run this time too), and saves it.
	remember := func(clean bool) error {
		if memPath == "none" {
			return nil
		}
		next := &fleetMemory{Clean: clean, Cabinets: maps.Clone(memory.Cabinets), Logins: maps.Clone(memory.Logins)}
		for i, r := range runners {
			if r != nil {
				next.keep(secrets[i].Site, secrets[i].Cabinet, secrets[i].Secret, r.Memory())
			}
		}
		return next.save(memPath)
	}
	saved := make(chan struct{})
	go func() {
		defer close(saved)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		var failing bool // say so once, not every tick
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				err := remember(false)
				if err != nil && !failing {
					log.Error("cannot save the cabinets' memory", "file", memPath, "err", err)
				}
				failing = err != nil
			}
		}
	}()
	<-ctx.Done()
	<-saved
	for _, r := range runners {
		if r != nil {
			_ = r.Close(context.Background())
		}
	}
	if err := remember(true); err != nil {
		fmt.Fprintln(stderr, "lockerfleet: cannot save the cabinets' memory:", err)
		return 1
	}
	if memPath != "none" {
		fmt.Fprintf(stderr, "lockerfleet: stopped; the next run carries on from the cabinets' memory in %s\n", memPath)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// people act at a cabinet's doors when they open for a command, and a
// technician repairs a jammed door after a while (repair; 0: never).
//
// They act through the cabinet's runner, which mqttlink.Start returns only
// once the cabinet is connected: a command can open a door before that (a
// controller resends what a cabinet has not acknowledged the moment it
// reports online), so the runner is set atomically and looked up when the
// person acts, not when the door opens.
type people struct {
	runner   atomic.Pointer[mqttlink.Runner]
	handling time.Duration
	enabled  bool
	repair   time.Duration
}

// later runs f on the cabinet's goroutine after d, once its runner is
// known (a cabinet that never finishes connecting is left alone after
// connectWait).
func (p *people) later(d time.Duration, f func(c *twin.Cabinet)) {
	giveUp := time.Now().Add(d + connectWait)
	var act func()
	act = func() {
		if r := p.runner.Load(); r != nil {
			r.Do(f)
		} else if time.Now().Before(giveUp) {
			time.AfterFunc(10*time.Millisecond, act) // still connecting
		}
	}
	time.AfterFunc(d, act)
}

func (p *people) DoorOpened(_ string, slot int, command string) {
	if !p.enabled || command == "" {
		return
	}
	p.later(p.handling, func(c *twin.Cabinet) {
		_, occupied, err := c.DoorState(slot)
		if err != nil {
			return
		}
		if occupied {
			_ = c.Remove(slot)
		} else {
			_ = c.Place(slot)
		}
		_ = c.Close(slot)
	})
}

func (p *people) DoorJammed(_ string, slot int) {
	if p.repair > 0 {
		p.later(p.repair, func(c *twin.Cabinet) { _ = c.Repair(slot) })
	}
}

func fnv(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}
