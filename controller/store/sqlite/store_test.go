package sqlite

import (
	"database/sql"
	"math/rand/v2"
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

func TestCommitReloadRebuild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lockerd.db")
	st, err := Open(path)
	require.NoError(t, err)
	log := st.Log("lobby")
	clock := twin.NewManualClock(epoch)
	out := &sink{codes: map[string]string{}}
	core, err := controller.New(coreOn(t, log, clock, out))
	require.NoError(t, err)

	// One parcel through deposit, committing after each input as the service does.
	_, err = core.Announce("p1", controller.ParcelSpec{Class: "S"}, "r")
	require.NoError(t, err)
	_, err = log.Commit()
	require.NoError(t, err)
	d, err := core.StartDeposit("p1")
	require.NoError(t, err)
	log.Enqueue("a1", twin.CabinetTopic("lobby", "a1", twin.ChanCmd), []byte("open"), clock.Now().Add(time.Minute))
	cmds, err := log.Commit()
	require.NoError(t, err)
	require.Len(t, cmds, 1)
	require.Positive(t, cmds[0].ID)
	seq := uint64(0)
	send := func(ev twin.Event) {
		seq++
		ev.V, ev.Seq, ev.ID, ev.At = 1, seq, "e", clock.Now()
		require.NoError(t, core.HandleEvent("a1", ev))
		_, err := log.Commit()
		require.NoError(t, err)
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

	// The command was committed but never marked sent: it is pending.
	pending, err := st.Pending("lobby", clock.Now())
	require.NoError(t, err)
	require.Len(t, pending, 1)
	require.Equal(t, []byte("open"), pending[0].Payload)
	marks := st.Log("lobby")
	marks.MarkSent(pending[0].ID)
	require.NoError(t, marks.Flush())
	pending, err = st.Pending("lobby", clock.Now())
	require.NoError(t, err)
	require.Empty(t, pending)
}

func TestExpiredCommandsAreNotPending(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "x.db"))
	require.NoError(t, err)
	defer st.Close()
	log := st.Log("lobby")
	log.Enqueue("a1", "t", []byte("old"), epoch.Add(time.Minute))
	log.Enqueue("a1", "t", []byte("live"), epoch.Add(time.Hour))
	_, err = log.Commit()
	require.NoError(t, err)
	pending, err := st.Pending("lobby", epoch.Add(10*time.Minute))
	require.NoError(t, err)
	require.Len(t, pending, 1)
	require.Equal(t, []byte("live"), pending[0].Payload, "a stale open is never sent late")
}

// TestSentMarksRideOnTheNextCommit: a site's sent marks cost no
// transaction of their own; they are written with its next commit, or by
// Flush at shutdown, and a restart before that republishes the command.
func TestSentMarksRideOnTheNextCommit(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "m.db"))
	require.NoError(t, err)
	defer st.Close()
	log := st.Log("lobby")
	log.Enqueue("a1", "t", []byte("first"), epoch.Add(time.Hour))
	cmds, err := log.Commit()
	require.NoError(t, err)
	require.Len(t, cmds, 1)
	log.MarkSent(cmds[0].ID)
	cmds, err = log.Commit() // nothing but a mark: no transaction yet
	require.NoError(t, err)
	require.Empty(t, cmds)
	pending, err := st.Pending("lobby", epoch)
	require.NoError(t, err)
	require.Len(t, pending, 1, "not yet marked: a restart now would republish it")

	log.Enqueue("a1", "t", []byte("second"), epoch.Add(time.Hour))
	_, err = log.Commit()
	require.NoError(t, err)
	pending, err = st.Pending("lobby", epoch)
	require.NoError(t, err)
	require.Len(t, pending, 1)
	require.Equal(t, []byte("second"), pending[0].Payload, "the first was marked with the second's commit")

	log.MarkSent(pending[0].ID)
	require.NoError(t, log.Flush())
	pending, err = st.Pending("lobby", epoch)
	require.NoError(t, err)
	require.Empty(t, pending, "Flush writes marks alone")
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
	_, err = log.Commit()
	require.NoError(t, err)
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
	_, err = log.Commit()
	require.NoError(t, err)
	require.NoError(t, log.Append(&e))
	_, err = log.Commit()
	require.Error(t, err, "an entry is logged once")
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
				if _, err := log.Commit(); err != nil {
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
		log.Enqueue("a1", "lockers/v1/lobby/a1/cmd", []byte(`{"v":1}`), epoch.Add(time.Minute))
		cmds, err := log.Commit()
		if err != nil {
			b.Fatal(err)
		}
		log.MarkSent(cmds[0].ID) // published: marked with the next commit, as the service does
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
				log.Enqueue("a1", "t", []byte(site), epoch.Add(time.Hour))
				cmds, err := log.Commit()
				if err != nil {
					errs[i] = err
					return
				}
				require.Len(t, cmds, 1)
				require.NotZero(t, cmds[0].ID)
				log.MarkSent(cmds[0].ID)
			}
			if i == 0 { // a batch repeating an entry already written
				dup := controller.Event{Kind: controller.Announced, Parcel: "x", Seq: 1, Cabinet: -1, Compartment: -1,
					Spec: &controller.ParcelSpec{Class: "S"}}
				require.NoError(t, log.Append(&dup))
				_, errs[i] = log.Commit()
			}
			require.NoError(t, log.Flush())
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
		pending, err := st.Pending("s"+string(rune('a'+i)), epoch)
		require.NoError(t, err)
		require.Empty(t, pending, "every command marked sent")
	}
	require.NoError(t, st.Close())
	_, err = st.Log("sa").Commit()
	require.NoError(t, err, "nothing buffered: nothing to refuse")
	l := st.Log("sa")
	l.Enqueue("a1", "t", []byte("late"), epoch.Add(time.Hour))
	_, err = l.Commit()
	require.ErrorIs(t, err, ErrClosed)
}

// TestOutboxHoldsOnlyWhatIsToSend: sent and expired commands leave the
// outbox; a store from before (sent rows kept, an index over them) is tidied
// when opened, and its unsent commands stay pending.
func TestOutboxHoldsOnlyWhatIsToSend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	st, err := Open(path)
	require.NoError(t, err)
	log := st.Log("lobby")
	log.Enqueue("a1", "t", []byte("sent"), epoch.Add(time.Hour))
	log.Enqueue("a1", "t", []byte("stale"), epoch.Add(time.Minute))
	log.Enqueue("a1", "t", []byte("unsent"), epoch.Add(time.Hour))
	cmds, err := log.Commit()
	require.NoError(t, err)
	log.MarkSent(cmds[0].ID)
	require.NoError(t, log.Flush())
	rows := func() int {
		var n int
		require.NoError(t, st.db.QueryRow(`SELECT count(*) FROM outbox`).Scan(&n))
		return n
	}
	require.Equal(t, 2, rows(), "the sent command left")
	pending, err := st.Pending("lobby", epoch.Add(10*time.Minute))
	require.NoError(t, err)
	require.Len(t, pending, 1)
	require.Equal(t, []byte("unsent"), pending[0].Payload)
	require.Equal(t, 1, rows(), "the expired one left too")

	// The old way: a sent row kept, and an index.
	_, err = st.db.Exec(`INSERT INTO outbox (site, cabinet, topic, payload, expires, sent) VALUES ('lobby', 'a1', 't', 'old', 0, 1)`)
	require.NoError(t, err)
	_, err = st.db.Exec(`CREATE INDEX outbox_pending ON outbox (site, sent, id)`)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	st, err = Open(path)
	require.NoError(t, err)
	defer st.Close()
	require.Equal(t, 1, rows())
	var idx int
	require.NoError(t, st.db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'outbox_pending'`).Scan(&idx))
	require.Zero(t, idx)
	pending, err = st.Pending("lobby", epoch.Add(10*time.Minute))
	require.NoError(t, err)
	require.Len(t, pending, 1)
}
