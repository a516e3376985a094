package sqlite

import (
	"database/sql"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/controller"
	"github.com/lockertwin/lockertwin/twin"
	"github.com/stretchr/testify/require"
)

var epoch = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

type sink struct {
	cmds  []twin.Command
	codes map[string]string
}

func (s *sink) Send(_ string, c twin.Command) { s.cmds = append(s.cmds, c) }
func (s *sink) Notify(n controller.Notification) {
	if n.Code != "" {
		s.codes[n.Parcel] = n.Code
	}
}

func inventory(t *testing.T) (*allocator.Inventory, allocator.Policy) {
	cat, err := allocator.NewCatalog([]allocator.Class{{Name: "S", WidthMm: 380, HeightMm: 80, DepthMm: 640}})
	require.NoError(t, err)
	comps, err := allocator.StackLayout(cat, []allocator.ClassCount{{Class: 0, Count: 10}})
	require.NoError(t, err)
	inv, err := allocator.NewInventory(cat, []allocator.CabinetSpec{{Name: "a1", Compartments: comps}})
	require.NoError(t, err)
	pol, err := allocator.New("first-fit", cat, allocator.Config{})
	require.NoError(t, err)
	return inv, pol
}

func coreOn(t *testing.T, log controller.Log, clock *twin.ManualClock, out *sink) controller.Config {
	inv, pol := inventory(t)
	return controller.Config{Site: "lobby", Inventory: inv, Policy: pol,
		Settings: controller.Settings{PickupWindow: 72 * time.Hour, ReservationTimeout: 4 * time.Hour},
		Clock:    clock, Rand: rand.New(rand.NewPCG(1, 1)), CodeKey: []byte("0123456789abcdef0123456789abcdef"),
		Log: log, Out: out}
}

// storedCore opens a store at path and a core of site "lobby" logging to it.
func storedCore(t *testing.T, path string) (*Store, *SiteLog, *twin.ManualClock, *sink, *controller.Core) {
	st, err := Open(path)
	require.NoError(t, err)
	log := st.Log("lobby")
	clock := twin.NewManualClock(epoch)
	out := &sink{codes: map[string]string{}}
	core, err := controller.New(coreOn(t, log, clock, out))
	require.NoError(t, err)
	return st, log, clock, out, core
}

func TestCommitReloadRebuild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lockerd.db")
	st, log, clock, _, core := storedCore(t, path)

	// One parcel through deposit, committing after each input as the service does.
	_, err := core.Announce("p1", controller.ParcelSpec{Class: "S"}, "r")
	require.NoError(t, err)
	require.NoError(t, log.Commit())
	d, err := core.StartDeposit("p1")
	require.NoError(t, err)
	require.NoError(t, log.Commit())
	seq := uint64(0)
	send := func(ev twin.Event) {
		seq++
		ev.V, ev.Seq, ev.ID, ev.At = 1, seq, "a1-e"+strconv.FormatUint(seq, 10), clock.Now()
		require.NoError(t, core.HandleEvent("a1", ev))
		require.NoError(t, log.Commit())
	}
	occupied := true
	send(twin.Event{Type: twin.EvtAck, Command: d.Command})
	send(twin.Event{Type: twin.EvtDoorOpened, Compartment: d.Compartment, Command: d.Command})
	send(twin.Event{Type: twin.EvtDoorClosed, Compartment: d.Compartment, Occupied: &occupied})
	require.NoError(t, st.Close())

	// A new process: reopen, verify, rebuild.
	st, err = Open(path)
	require.NoError(t, err)
	defer st.Close()
	sites, err := st.Sites()
	require.NoError(t, err)
	require.Equal(t, []string{"lobby"}, sites)
	events, err := st.Events("lobby")
	require.NoError(t, err)
	_, n := core.ChainHead()
	require.Len(t, events, int(n))
	count, err := st.Verify("lobby")
	require.NoError(t, err)
	require.Equal(t, int(n), count)
	rebuilt, err := controller.Rebuild(coreOn(t, st.Log("lobby"), twin.NewManualClock(clock.Now()), &sink{codes: map[string]string{}}), events)
	require.NoError(t, err)
	require.Equal(t, core.Snapshot(), rebuilt.Snapshot())
	info, err := rebuilt.Parcel("p1")
	require.NoError(t, err)
	require.Equal(t, controller.StateAwaitingPickup, info.State)
	history, err := st.History("lobby", "p1")
	require.NoError(t, err)
	require.Equal(t, controller.Announced, history[0].Kind)
	require.Equal(t, controller.Notified, history[len(history)-1].Kind)
}

// TestTheLogIsTheOutbox: a door command whose event is durable but which
// the cabinet never acknowledged (the process died before publishing it,
// or the cabinet never got it) is sent again by the core rebuilt from the
// store when the cabinet reconnects, with the same id and expiry; an
// acknowledged one is not.
func TestTheLogIsTheOutbox(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	st, log, clock, out, core := storedCore(t, path)
	for _, id := range []string{"p1", "p2"} {
		_, err := core.Announce(id, controller.ParcelSpec{Class: "S"}, "r")
		require.NoError(t, err)
		_, err = core.StartDeposit(id)
		require.NoError(t, err)
	}
	require.Len(t, out.cmds, 2)
	ack := twin.Event{V: 1, Seq: 1, ID: "e1", At: clock.Now(), Type: twin.EvtAck, Command: out.cmds[0].ID}
	require.NoError(t, core.HandleEvent("a1", ack))
	require.NoError(t, log.Commit())
	require.NoError(t, st.Close())

	// An old store's outbox table goes when it is opened.
	raw, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = raw.Exec(`CREATE TABLE outbox (id INTEGER PRIMARY KEY, payload BLOB)`)
	require.NoError(t, err)
	require.NoError(t, raw.Close())

	st, err = Open(path)
	require.NoError(t, err)
	defer st.Close()
	var tables int
	require.NoError(t, st.db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'outbox'`).Scan(&tables))
	require.Zero(t, tables)
	events, err := st.Events("lobby")
	require.NoError(t, err)
	again := &sink{codes: map[string]string{}}
	rebuilt, err := controller.Rebuild(coreOn(t, st.Log("lobby"), twin.NewManualClock(clock.Now()), again), events)
	require.NoError(t, err)
	require.NoError(t, rebuilt.CabinetOnline("a1", true)) // the cabinet reconnects
	require.Equal(t, []twin.Command{out.cmds[1]}, again.cmds, "the unacknowledged command, as first sent")
}

func TestTamperingIsDetected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	st, err := Open(path)
	require.NoError(t, err)
	log := st.Log("lobby")
	core, err := controller.New(coreOn(t, log, twin.NewManualClock(epoch), &sink{codes: map[string]string{}}))
	require.NoError(t, err)
	for _, id := range []string{"p1", "p2", "p3"} {
		_, err := core.Announce(id, controller.ParcelSpec{Class: "S"}, "r")
		require.NoError(t, err)
	}
	require.NoError(t, log.Commit())
	_, err = st.Verify("lobby")
	require.NoError(t, err)
	require.NoError(t, st.Close())

	raw, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	tests := []struct {
		name string
		sql  string
	}{
		{"edited recipient", `UPDATE events SET body = replace(body, 'r', 'x') WHERE site = 'lobby' AND seq = 3`},
		{"deleted entry", `DELETE FROM events WHERE site = 'lobby' AND seq = 2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := raw.Exec(tt.sql)
			require.NoError(t, err)
			st, err := Open(path)
			require.NoError(t, err)
			defer st.Close()
			_, err = st.Verify("lobby")
			require.ErrorIs(t, err, controller.ErrChainBroken)
		})
	}
	raw.Close()
}

func TestDuplicateSequenceIsRefused(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "d.db"))
	require.NoError(t, err)
	defer st.Close()
	log := st.Log("lobby")
	e := controller.Event{Seq: 1, Kind: controller.CabinetStatus, Cabinet: 0, Compartment: -1, Text: "online"}
	require.NoError(t, log.Append(&e))
	require.NoError(t, log.Commit())
	require.NoError(t, log.Append(&e))
	require.Error(t, log.Commit(), "an entry is logged once")
	events, err := st.Events("lobby")
	require.Error(t, err, "the single entry's hash is zero, so the chain does not verify")
	require.Empty(t, events)
}

func TestSitesCommitConcurrently(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "c.db"))
	require.NoError(t, err)
	defer st.Close()
	var wg sync.WaitGroup
	for _, site := range []string{"s1", "s2", "s3", "s4"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log := st.Log(site)
			chain := controller.NewChain()
			for i := 0; i < 50; i++ {
				e := controller.Event{Kind: controller.CabinetStatus, Cabinet: 0, Compartment: -1, Text: "online", At: int64(i)}
				chain.Link(&e)
				if err := log.Append(&e); err != nil {
					t.Error(err)
				}
				if err := log.Commit(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for _, site := range []string{"s1", "s2", "s3", "s4"} {
		n, err := st.Verify(site)
		require.NoError(t, err)
		require.Equal(t, 50, n)
	}
}

func TestOpenRefusesAnotherSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := Open(path)
	require.NoError(t, err)
	_, err = st.db.Exec(`UPDATE meta SET value = '99' WHERE key = 'schema'`)
	require.NoError(t, err)
	st.Close()
	_, err = Open(path)
	require.ErrorContains(t, err, "schema 99")
	_, err = Open(filepath.Join(t.TempDir(), "no", "such", "dir", "x.db"))
	require.Error(t, err)
	_, err = OpenSync(filepath.Join(t.TempDir(), "y.db"), "sometimes")
	require.ErrorContains(t, err, "unknown sync mode")
	normal, err := OpenSync(filepath.Join(t.TempDir(), "n.db"), SyncNormal)
	require.NoError(t, err)
	require.NoError(t, normal.Close())
}

// BenchmarkCommit is one committed input of six events and a command: the
// durable cost of a door operation.
// BenchmarkCommit: one site's group commit of six events and a command,
// under each durability.
func BenchmarkCommit(b *testing.B) {
	for _, sync := range []Sync{SyncFull, SyncNormal} {
		b.Run(string(sync), func(b *testing.B) { benchCommit(b, sync) })
	}
}

func benchCommit(b *testing.B, sync Sync) {
	st, err := OpenSync(filepath.Join(b.TempDir(), "b.db"), sync)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	log := st.Log("lobby")
	chain := controller.NewChain()
	for i := 0; i < b.N; i++ {
		for k := 0; k < 6; k++ {
			// Parcels spread over the index, as a busy site's are.
			e := controller.Event{Kind: controller.DoorOpened, Parcel: "p" + strconv.Itoa((i*7919)%5000), Cabinet: 0, Compartment: 3, Command: "lobby-c1", At: int64(i)}
			chain.Link(&e)
			_ = log.Append(&e)
		}
		if err := log.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSiteLayoutsAreSavedOnce(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "l.db"))
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.SaveSite("lobby", []byte(`{"a":1}`)))
	require.NoError(t, st.SaveSite("lobby", []byte(`{"a":1}`)), "idempotent")
	require.ErrorContains(t, st.SaveSite("lobby", []byte(`{"a":2}`)), "another layout")
	layouts, err := st.SiteLayouts()
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{"lobby": []byte(`{"a":1}`)}, layouts)
}

// TestPinKeepsTheFirstValue: a pinned value is recorded once and outlives
// a reopening; a later value does not replace it.
func TestPinKeepsTheFirstValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	st, err := Open(path)
	require.NoError(t, err)
	_, has, err := st.Pinned("code_key_id")
	require.NoError(t, err)
	require.False(t, has)
	require.NoError(t, st.Pin("code_key_id", "aaaa"))
	got, has, err := st.Pinned("code_key_id")
	require.NoError(t, err)
	require.True(t, has)
	require.Equal(t, "aaaa", got)
	require.NoError(t, st.Pin("code_key_id", "bbbb"))
	got, _, err = st.Pinned("code_key_id")
	require.NoError(t, err)
	require.Equal(t, "aaaa", got, "the first value stays")
	require.Error(t, st.Pin("schema", "0"), "the schema version is the store's own")
	require.NoError(t, st.Close())

	st, err = Open(path)
	require.NoError(t, err)
	defer st.Close()
	got, has, err = st.Pinned("code_key_id")
	require.NoError(t, err)
	require.True(t, has)
	require.Equal(t, "aaaa", got)
}

// TestGroupCommitAcrossSites: sites committing at once share transactions;
// every site's log comes back whole and verified, and a site whose batch
// cannot be written (an entry it already wrote) fails alone.
func TestGroupCommitAcrossSites(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "g.db"))
	require.NoError(t, err)
	defer st.Close()
	const sites, batches, perBatch = 8, 40, 3
	var wg sync.WaitGroup
	errs := make([]error, sites)
	for i := range sites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			site := "s" + string(rune('a'+i))
			log := st.Log(site)
			chain := controller.NewChain()
			for b := range batches {
				for k := range perBatch {
					e := controller.Event{Kind: controller.Announced, Parcel: site + "-p", At: int64(b*perBatch + k),
						Cabinet: -1, Compartment: -1, Spec: &controller.ParcelSpec{Class: "S"}}
					chain.Link(&e)
					require.NoError(t, log.Append(&e))
				}
				if err := log.Commit(); err != nil {
					errs[i] = err
					return
				}
			}
			if i == 0 { // a batch repeating an entry already written
				dup := controller.Event{Kind: controller.Announced, Parcel: "x", Seq: 1, Cabinet: -1, Compartment: -1,
					Spec: &controller.ParcelSpec{Class: "S"}}
				require.NoError(t, log.Append(&dup))
				errs[i] = log.Commit()
			}
		}()
	}
	wg.Wait()
	require.Error(t, errs[0], "the duplicate entry is refused")
	for i := 1; i < sites; i++ {
		require.NoError(t, errs[i])
	}
	for i := range sites {
		events, err := st.Events("s" + string(rune('a'+i)))
		require.NoError(t, err)
		require.Len(t, events, batches*perBatch)
	}
	require.NoError(t, st.Close())
	require.NoError(t, st.Log("sa").Commit(), "nothing buffered: nothing to refuse")
	l := st.Log("sa")
	late := controller.Event{Kind: controller.Announced, Parcel: "late", Seq: batches*perBatch + 1, Cabinet: -1, Compartment: -1,
		Spec: &controller.ParcelSpec{Class: "S"}}
	require.NoError(t, l.Append(&late))
	require.ErrorIs(t, l.Commit(), ErrClosed)
}

// TestOneProcessPerStore: the store is locked while open, so a second
// lockerd on the same data directory is refused with a clear error, and
// gets it once the first has closed.
func TestOneProcessPerStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "one.db")
	st, err := Open(path)
	require.NoError(t, err)
	_, err = Open(path)
	require.ErrorIs(t, err, ErrInUse)
	require.ErrorContains(t, err, "one lockerd per data directory")
	require.NoError(t, st.Close())
	st, err = Open(path)
	require.NoError(t, err)
	require.NoError(t, st.Close())
}

// TestCheckpointsKeepTheWALBounded: with SyncNormal the writer never
// checkpoints; the checkpointer copies the WAL back beside the commits and,
// once it has grown past restartAt frames, has the next commit rewind it.
// The WAL stays bounded and every event is still there.
func TestCheckpointsKeepTheWALBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	st, err := OpenSync(path, SyncNormal)
	require.NoError(t, err)
	defer st.Close()
	st.restartAt = 64
	log := st.Log("lobby")
	chain := controller.NewChain()
	walSize := func() int64 {
		fi, err := os.Stat(path + "-wal")
		require.NoError(t, err)
		return fi.Size()
	}
	var largest int64
	const rounds, perRound = 30, 20
	for r := range rounds {
		for i := range perRound {
			for k := range 6 {
				e := controller.Event{Kind: controller.DoorOpened, Parcel: "p" + strconv.Itoa((r*perRound+i)*7919%5000),
					Cabinet: 0, Compartment: 3, Command: "lobby-c1", At: int64(k)}
				chain.Link(&e)
				require.NoError(t, log.Append(&e))
			}
			require.NoError(t, log.Commit())
		}
		largest = max(largest, walSize())
		require.NoError(t, st.checkpoint())
	}
	stats := st.Stats()
	require.EqualValues(t, rounds, stats.Checkpoints)
	require.Positive(t, stats.Restarts, "the WAL was rewound")
	require.Zero(t, stats.CheckpointErrors)
	// Without rewinds the WAL would hold every frame of 600 commits; with
	// them it holds at most a restart's worth plus a round's.
	frames := largest / (4096 + 24)
	require.Less(t, frames, int64(3*64+perRound*8), "WAL of %d frames", frames)
	events, err := st.Events("lobby")
	require.NoError(t, err)
	require.Len(t, events, rounds*perRound*6)

	full, err := Open(filepath.Join(t.TempDir(), "f.db"))
	require.NoError(t, err)
	defer full.Close()
	require.Nil(t, full.ckpt, "SyncFull checkpoints in the writer")
}
