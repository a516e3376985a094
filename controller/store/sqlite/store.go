// Package sqlite is the controller's durable store in SQLite (modernc.org/sqlite,
// pure Go, no cgo): every site's hash-chained event log.
//
// How the service uses it: a site's core appends its events to a SiteLog,
// which only buffers them; after a batch of inputs the service commits the
// buffer in one transaction and only then publishes the cabinet commands the
// inputs produced and answers the callers. One committer writes every site's
// batches, so sites committing at once share a transaction (and its fsync).
//
// The event log is also the outbox. Every door command is issued by an
// event (door_commanded, command_retried) that carries its id and expiry, so
// the rebuilt core knows each command its cabinets have not acknowledged and
// sends those again when each cabinet reconnects (Core.CabinetOnline). A
// crash therefore loses no accepted parcel (its events are durable before
// the caller hears yes) and opens no door twice (a command is never
// published before its event is durable, and a cabinet executes an id once).
// Stores written before this kept an outbox table; opening one drops it.
//
// What it must never do: hand back events whose chain does not verify, or
// let a command out before its event.
package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/lockertwin/lockertwin/controller"
)

const schema = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sites (id TEXT PRIMARY KEY, layout BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (
	site   TEXT NOT NULL,
	seq    INTEGER NOT NULL,
	at     INTEGER NOT NULL,
	kind   INTEGER NOT NULL,
	parcel TEXT NOT NULL,
	body   BLOB NOT NULL,
	prev   BLOB NOT NULL,
	hash   BLOB NOT NULL,
	PRIMARY KEY (site, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_parcel ON events (site, parcel, seq);
`

// dropOutbox removes the outbox table of stores written before the event
// log became the outbox: what it held unsent, the rebuilt core resends.
const dropOutbox = `DROP TABLE IF EXISTS outbox;`

// SchemaVersion is the store's on-disk format.
const SchemaVersion = "1"

// Store is an open database.
type Store struct {
	db   *sql.DB // the committer's and the readers' connection
	ckpt *sql.DB // the checkpointer's (SyncNormal only)
	lock *os.File
	path string
	// Statements every commit runs, prepared once: preparing them per
	// transaction compiled the SQL on every group commit.
	insEvent *sql.Stmt

	// Group commit across sites: a site's commit is a request to one
	// committer, which writes every request waiting in one transaction.
	reqs      chan *commitReq
	quit      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	buf       []byte // the committer's
	sinceCkpt int    // the committer's: transactions since it kicked the checkpointer
	kick      chan struct{}
	restartAt int64 // WAL frames; a variable for tests
	stats     struct {
		transactions, batches, events           atomic.Int64
		checkpoints, restarts, checkpointErrors atomic.Int64
	}
}

// Stats counts what the store has done since it was opened.
type Stats struct {
	Transactions int64 // SQLite transactions
	Batches      int64 // sites' commits (several share a transaction)
	Events       int64
	Checkpoints  int64 // passive checkpoints, beside the commits
	Restarts     int64 // WAL rewinds, past restartFrames
	// CheckpointErrors counts checkpoints that failed (the next one
	// retries); commits are not affected.
	CheckpointErrors int64
}

// Stats returns the counts so far; safe from any goroutine.
func (s *Store) Stats() Stats {
	return Stats{Transactions: s.stats.transactions.Load(), Batches: s.stats.batches.Load(), Events: s.stats.events.Load(),
		Checkpoints: s.stats.checkpoints.Load(), Restarts: s.stats.restarts.Load(), CheckpointErrors: s.stats.checkpointErrors.Load()}
}

func (s *Store) count(group []*commitReq) {
	if s.sinceCkpt++; s.kick != nil && s.sinceCkpt >= checkpointEvery {
		s.sinceCkpt = 0
		select {
		case s.kick <- struct{}{}:
		default: // one is pending or running
		}
	}
	s.stats.transactions.Add(1)
	s.stats.batches.Add(int64(len(group)))
	for _, r := range group {
		s.stats.events.Add(int64(len(r.events)))
	}
}

// maxGroup bounds how many sites' batches share one transaction.
const maxGroup = 64

// ErrInUse is returned by Open when another process holds the store.
var ErrInUse = errors.New("store in use")

// ErrClosed is returned for a commit after Close.
var ErrClosed = errors.New("store closed")

// commitReq is one site's batch for the committer.
type commitReq struct {
	site   string
	events []controller.Event
	done   chan error
}

// Sync is how hard a commit is made durable.
type Sync string

const (
	// SyncFull fsyncs the WAL on every commit: a commit survives a process
	// crash and a power cut. The default.
	SyncFull Sync = "full"
	// SyncNormal fsyncs at checkpoints only: a commit survives a process
	// crash (SIGKILL) but the last ones may be lost on a power cut. About a
	// quarter more throughput; for load tests and machines with protected
	// power.
	SyncNormal Sync = "normal"
)

// Open opens (creating if needed) the database at path, in WAL mode with
// full fsync on commit.
func Open(path string) (*Store, error) { return OpenSync(path, SyncFull) }

// OpenSync opens the database with the given durability.
func OpenSync(path string, sync Sync) (*Store, error) {
	pragma := "FULL"
	switch sync {
	case SyncFull, "":
	case SyncNormal:
		pragma = "NORMAL"
	default:
		return nil, fmt.Errorf("unknown sync mode %q (full or normal)", sync)
	}
	// One process per store: a lock file, held while open (the kernel
	// drops it if the process dies).
	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	// The unix-excl VFS holds the file for this process: its connections
	// lock each other in memory, with no system call per transaction, and
	// share a WAL index in heap memory rather than a mapped -shm file.
	//
	// How the WAL goes back into the database depends on the durability.
	// SyncNormal: the writer never checkpoints (wal_autocheckpoint 0). A
	// checkpoint copies pages back and fsyncs: milliseconds during which
	// every commit would wait. A checkpointer with its own connection does
	// it beside the commits (see checkpointer): 10-15 % more flows/s.
	// SyncFull: every commit already waits for an fsync of the WAL, and a
	// checkpointer's fsyncs of the database beside them slowed those down
	// more than it saved, so the writer checkpoints itself (every 1,000
	// frames).
	background := sync == SyncNormal
	dsn := "file:" + path + "?vfs=unix-excl&_pragma=journal_mode(WAL)&_pragma=synchronous(" + pragma + ")&_pragma=busy_timeout(5000)&_pragma=foreign_keys(ON)"
	writer := dsn
	if background {
		writer += "&_pragma=wal_autocheckpoint(0)"
	}
	db, err := sql.Open("sqlite", writer)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	// One connection, the only writer.
	db.SetMaxOpenConns(1)
	fail := func(err error) (*Store, error) {
		db.Close()
		lock.Close()
		return nil, err
	}
	if _, err := db.Exec(schema); err != nil {
		return fail(fmt.Errorf("creating schema in %s: %w", path, err))
	}
	if _, err := db.Exec(dropOutbox); err != nil {
		return fail(fmt.Errorf("dropping the old outbox of %s: %w", path, err))
	}
	var version string
	err = db.QueryRow(`SELECT value FROM meta WHERE key = 'schema'`).Scan(&version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := db.Exec(`INSERT INTO meta (key, value) VALUES ('schema', ?)`, SchemaVersion); err != nil {
			return fail(err)
		}
	case err != nil:
		return fail(fmt.Errorf("reading schema version: %w", err))
	case version != SchemaVersion:
		return fail(fmt.Errorf("store %s has schema %s; this build reads %s", path, version, SchemaVersion))
	}
	st := &Store{db: db, lock: lock, path: path, restartAt: restartFrames}
	const insert = `INSERT INTO events (site, seq, at, kind, parcel, body, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	if st.insEvent, err = db.Prepare(insert); err != nil {
		return fail(fmt.Errorf("preparing %q: %w", insert, err))
	}
	if background {
		if st.ckpt, err = sql.Open("sqlite", dsn); err != nil {
			st.insEvent.Close()
			return fail(fmt.Errorf("opening store %s for checkpoints: %w", path, err))
		}
		st.ckpt.SetMaxOpenConns(1)
		st.kick = make(chan struct{}, 1)
	}
	st.reqs, st.quit = make(chan *commitReq), make(chan struct{})
	st.wg.Add(1)
	go st.committer()
	if background {
		st.wg.Add(1)
		go st.checkpointer()
	}
	return st, nil
}

// Checkpoints with SyncNormal. The WAL is copied back into the database by
// the checkpointer, on its own connection, while commits go on: a PASSIVE
// checkpoint never makes a writer wait. But under steady load it never
// catches up with the writer either, and SQLite rewinds the WAL only when
// a write finds it wholly copied, so the WAL would grow without bound. Past
// restartFrames the checkpointer therefore runs a RESTART checkpoint right
// after a passive one: commits wait while it copies the few frames written
// in between and syncs (a millisecond or two, about once a second at full
// load), and the next commit writes the WAL from its start again. The
// writer's own automatic checkpoint (every 1,000 frames, in the commit
// path) cost every commit that waited behind it several milliseconds,
// sixteen times a second at full load.
const (
	checkpointEvery = 2048  // transactions between passive checkpoints
	restartFrames   = 32768 // 128 MiB of 4 KiB pages
)

// checkpointer runs a checkpoint when the committer kicks it.
func (s *Store) checkpointer() {
	defer s.wg.Done()
	for {
		select {
		case <-s.kick:
		case <-s.quit:
			return
		}
		if err := s.checkpoint(); err != nil {
			s.stats.checkpointErrors.Add(1)
		}
	}
}

// checkpoint copies what it can of the WAL into the database and, once the
// WAL has grown past restartFrames, has the next commit rewind it.
func (s *Store) checkpoint() error {
	var busy, frames, copied int64
	if err := s.ckpt.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
		return err
	}
	s.stats.checkpoints.Add(1)
	if frames <= s.restartAt {
		return nil
	}
	// Another passive pass first copies what was written during the first,
	// so that the restart, which makes commits wait, has little left to do.
	if err := s.ckpt.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
		return err
	}
	if err := s.ckpt.QueryRow(`PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &frames, &copied); err != nil {
		return err
	}
	s.stats.restarts.Add(1)
	return nil
}

// committer writes the sites' batches: whatever is waiting when it is free
// goes in one transaction, so sites that commit at once share the WAL write
// (and, with SyncFull, the fsync). If that transaction fails, each batch is
// tried alone, so one site's bad batch fails only that site.
func (s *Store) committer() {
	defer s.wg.Done()
	group := make([]*commitReq, 0, maxGroup)
	for {
		select {
		case r := <-s.reqs:
			group = append(group[:0], r)
		case <-s.quit:
			return
		}
	drain:
		for len(group) < maxGroup {
			select {
			case r := <-s.reqs:
				group = append(group, r)
			default:
				break drain
			}
		}
		err := s.write(group)
		if err != nil && len(group) > 1 {
			for _, r := range group {
				r.done <- s.write([]*commitReq{r})
			}
			continue
		}
		for _, r := range group {
			r.done <- err
		}
	}
}

// write commits a group of batches in one transaction.
func (s *Store) write(group []*commitReq) error {
	tx, err := s.db.Begin()
	if err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	insert := tx.Stmt(s.insEvent)
	for _, r := range group {
		for i := range r.events {
			e := &r.events[i]
			s.buf = e.AppendCanonical(s.buf[:0])
			if _, err := insert.Exec(r.site, e.Seq, e.At, int(e.Kind), e.Parcel, s.buf, e.Prev[:], e.Hash[:]); err != nil {
				tx.Rollback()
				return fmt.Errorf("committing %s event %d: %w", r.site, e.Seq, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	s.count(group)
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		s.wg.Wait()
		s.insEvent.Close()
		var ckptErr error
		if s.ckpt != nil {
			ckptErr = s.ckpt.Close()
		}
		s.closeErr = errors.Join(ckptErr, s.db.Close(), s.lock.Close())
	})
	return s.closeErr
}

// Sites lists the sites with events, sorted.
func (s *Store) Sites() ([]string, error) {
	rows, err := s.db.Query(`SELECT DISTINCT site FROM events ORDER BY site`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var site string
		if err := rows.Scan(&site); err != nil {
			return nil, err
		}
		out = append(out, site)
	}
	return out, rows.Err()
}

// Events reads a site's whole log in order and verifies its hash chain.
func (s *Store) Events(site string) ([]controller.Event, error) {
	rows, err := s.db.Query(`SELECT seq, body, prev, hash FROM events WHERE site = ? ORDER BY seq`, site)
	if err != nil {
		return nil, fmt.Errorf("reading %s's log: %w", site, err)
	}
	defer rows.Close()
	var out []controller.Event
	for rows.Next() {
		var seq uint64
		var body, prev, hash []byte
		if err := rows.Scan(&seq, &body, &prev, &hash); err != nil {
			return nil, err
		}
		e, err := controller.DecodeCanonical(body)
		if err != nil {
			return nil, fmt.Errorf("%s's log, entry %d: %w", site, seq, err)
		}
		if e.Seq != seq || len(prev) != 32 || len(hash) != 32 {
			return nil, fmt.Errorf("%s's log, entry %d: %w", site, seq, controller.ErrChainBroken)
		}
		copy(e.Prev[:], prev)
		copy(e.Hash[:], hash)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := controller.Verify(out); err != nil {
		return nil, fmt.Errorf("%s's log: %w", site, err)
	}
	return out, nil
}

// History returns one parcel's events in order (their chain is verified as
// part of the site's log by Verify).
func (s *Store) History(site, parcel string) ([]controller.Event, error) {
	rows, err := s.db.Query(`SELECT body, prev, hash FROM events WHERE site = ? AND parcel = ? ORDER BY seq`, site, parcel)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []controller.Event
	for rows.Next() {
		var body, prev, hash []byte
		if err := rows.Scan(&body, &prev, &hash); err != nil {
			return nil, err
		}
		e, err := controller.DecodeCanonical(body)
		if err != nil {
			return nil, fmt.Errorf("%s's log: %w", site, err)
		}
		copy(e.Prev[:], prev)
		copy(e.Hash[:], hash)
		out = append(out, e)
	}
	return out, rows.Err()
}

// SaveSite records a site's layout (what its inventory is built from), once:
// a different layout for an existing site is refused, since its log would no
// longer replay.
func (s *Store) SaveSite(id string, layout []byte) error {
	var existing []byte
	err := s.db.QueryRow(`SELECT layout FROM sites WHERE id = ?`, id).Scan(&existing)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = s.db.Exec(`INSERT INTO sites (id, layout) VALUES (?, ?)`, id, layout)
		return err
	case err != nil:
		return err
	case string(existing) != string(layout):
		return fmt.Errorf("site %s is already provisioned with another layout; a site's layout cannot change in place, "+
			"for its log names its compartments: provision the new layout as a new site, or start from a new data directory", id)
	}
	return nil
}

// Pin records value under name in the store's meta table, unless a value
// is recorded there already: the first value stays for good, and Pinned
// reads it. A caller compares it with what it has now to find that
// something the store depends on (the key its pickup codes were issued
// under) has changed.
func (s *Store) Pin(name, value string) error {
	if name == "schema" {
		return errors.New("the schema version is not pinned by callers")
	}
	_, err := s.db.Exec(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, name, value)
	return err
}

// Pinned returns what Pin recorded under name, and whether there is any.
func (s *Store) Pinned(name string) (string, bool, error) {
	var stored string
	err := s.db.QueryRow(`SELECT value FROM meta WHERE key = ?`, name).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return stored, err == nil, err
}

// SiteLayouts returns every provisioned site's layout, by id.
func (s *Store) SiteLayouts() (map[string][]byte, error) {
	rows, err := s.db.Query(`SELECT id, layout FROM sites ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var id string
		var layout []byte
		if err := rows.Scan(&id, &layout); err != nil {
			return nil, err
		}
		out[id] = layout
	}
	return out, rows.Err()
}

// Verify re-reads a site's log and checks its chain (the audit endpoint).
func (s *Store) Verify(site string) (int, error) {
	events, err := s.Events(site)
	return len(events), err
}

// SiteLog is a site's controller.Log: Append buffers; Commit makes the
// buffer durable in one transaction.
type SiteLog struct {
	s       *Store
	site    string
	mu      sync.Mutex
	pending []controller.Event
}

// Log returns the log of a site.
func (s *Store) Log(site string) *SiteLog { return &SiteLog{s: s, site: site} }

// Append buffers an event (controller.Log).
func (l *SiteLog) Append(e *controller.Event) error {
	l.mu.Lock()
	l.pending = append(l.pending, *e)
	l.mu.Unlock()
	return nil
}

// Commit writes the buffered events in one transaction (none buffered: no
// transaction). On error nothing was written and the buffer is dropped: the
// caller must rebuild its core from the store, which no longer matches it.
func (l *SiteLog) Commit() error {
	l.mu.Lock()
	events := l.pending
	l.pending = nil
	l.mu.Unlock()
	if len(events) == 0 {
		return nil
	}
	r := &commitReq{site: l.site, events: events, done: make(chan error, 1)}
	var err error
	select {
	case l.s.reqs <- r:
		err = <-r.done
	case <-l.s.quit:
		err = ErrClosed
	}
	// Written or dropped, the events are done with (the committer answers
	// last): their buffer takes the next batch, unless another batch was
	// appended meanwhile.
	l.mu.Lock()
	if l.pending == nil {
		clear(events)
		l.pending = events[:0]
	}
	l.mu.Unlock()
	return err
}

// lockFile takes an exclusive lock on path (created if needed), or fails
// with ErrInUse if another process holds it.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("store %s is in use by another process (one lockerd per data directory): %w", path, ErrInUse)
		}
		return nil, fmt.Errorf("store lock %s: %w", path, err)
	}
	return f, nil
}
