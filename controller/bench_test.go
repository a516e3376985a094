package controller

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/twin"
)

// quietOut keeps only the last command and code, like a cabinet that acts
// at once and a recipient who reads the message.
type quietOut struct {
	cab  string
	cmd  twin.Command
	code string
}

func (q *quietOut) Send(cab string, cmd twin.Command) { q.cab, q.cmd = cab, cmd }
func (q *quietOut) Notify(n Notification) {
	if n.Code != "" {
		q.code = n.Code
	}
}

// BenchmarkLifecycle is one full parcel lifecycle through the in-memory
// core: announce, deposit (command, ack, door opened, door closed occupied,
// code issued and notified), pickup by code (command, ack, opened, closed
// empty): 15 domain events. "sealed" hash-chains every event, as the service
// does; "unsealed" is the simulator's core (numbered, not hashed). The log
// keeps only its head, as in a simulation.
func BenchmarkLifecycle(b *testing.B) {
	for _, bc := range []struct {
		name     string
		unsealed bool
	}{{"sealed", false}, {"unsealed", true}} {
		b.Run(bc.name, func(b *testing.B) { benchLifecycle(b, bc.unsealed) })
	}
}

func benchLifecycle(b *testing.B, unsealed bool) {
	inv := testInventory(b)
	pol, _ := allocator.New("best-fit", inv.Catalog(), allocator.Config{})
	clock := twin.NewManualClock(epoch)
	out := &quietOut{}
	log := &HeadLog{}
	core, err := New(Config{
		Site: "lobby", Inventory: inv, Policy: pol, Settings: testSettings(), Clock: clock,
		Rand: rand.New(rand.NewPCG(1, 2)), CodeKey: []byte("0123456789abcdef0123456789abcdef"),
		Log: log, Out: out, Unsealed: unsealed,
	})
	if err != nil {
		b.Fatal(err)
	}
	var seq uint64
	occupied, empty := true, false
	evIDs := make([]string, 4096) // an id recurs 4,096 events later: far outside the core's id window
	for i := range evIDs {
		evIDs[i] = "a1-e" + strconv.Itoa(i)
	}
	send := func(cab string, ev twin.Event) {
		seq++
		ev.V, ev.Seq, ev.At, ev.ID = 1, seq, clock.Now(), evIDs[seq&4095]
		if err := core.HandleEvent(cab, ev); err != nil {
			b.Fatal(err)
		}
	}
	cycle := func(occ *bool) {
		cmd, cab := out.cmd, out.cab
		send(cab, twin.Event{Type: twin.EvtAck, Command: cmd.ID})
		send(cab, twin.Event{Type: twin.EvtDoorOpened, Compartment: cmd.Compartment, Command: cmd.ID})
		send(cab, twin.Event{Type: twin.EvtDoorClosed, Compartment: cmd.Compartment, Occupied: occ})
	}
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = "parcel-" + strconv.Itoa(i)
	}
	spec := ParcelSpec{Class: "S"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := ids[i&4095]
		if _, err := core.Announce(id, spec, "r"); err != nil {
			b.Fatal(err)
		}
		if _, err := core.StartDeposit(id); err != nil {
			b.Fatal(err)
		}
		cycle(&occupied)
		if _, err := core.Pickup(out.cab, out.code); err != nil {
			b.Fatal(err)
		}
		cycle(&empty)
		clock.Advance(time.Minute)
	}
	b.StopTimer()
	if got := log.Count; got != 15*uint64(b.N) {
		b.Fatalf("%d events logged for %d lifecycles, want 15 each", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lifecycles/s")
}
