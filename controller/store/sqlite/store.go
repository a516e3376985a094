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
	"sync"
	"sync/atomic"

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
	db   *sql.DB
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
	stats     struct{ transactions, batches, events atomic.Int64 }
}

// Stats counts what the store has committed since it was opened.
type Stats struct {
	Transactions int64 // SQLite transactions
	Batches      int64 // sites' commits (several share a transaction)
	Events       int64
}

// Stats returns the counts so far; safe from any goroutine.
func (s *Store) Stats() Stats {
	return Stats{Transactions: s.stats.transactions.Load(), Batches: s.stats.batches.Load(), Events: s.stats.events.Load()}
}

func (s *Store) count(group []*commitReq) {
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

const sqliteBusy = 5 // SQLITE_BUSY

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
	// Exclusive locking: the one connection takes the file's lock at its
	// first access and keeps it, so a transaction makes no lock system calls
	// and WAL needs no shared-memory index (set before journal_mode, as
	// SQLite requires for that). It also keeps a second process from
	// writing the same chain.
	dsn := "file:" + path + "?_pragma=locking_mode(EXCLUSIVE)&_pragma=journal_mode(WAL)&_pragma=synchronous(" + pragma + ")&_pragma=busy_timeout(1000)&_pragma=foreign_keys(ON)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	// One connection, the only writer.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		var coded interface{ Code() int }
		if errors.As(err, &coded) && coded.Code()&0xff == sqliteBusy {
			return nil, fmt.Errorf("store %s is in use by another process (one lockerd per data directory): %w", path, ErrInUse)
		}
		return nil, fmt.Errorf("creating schema in %s: %w", path, err)
	}
	if _, err := db.Exec(dropOutbox); err != nil {
		db.Close()
		return nil, fmt.Errorf("dropping the old outbox of %s: %w", path, err)
	}
	var version string
	err = db.QueryRow(`SELECT value FROM meta WHERE key = 'schema'`).Scan(&version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := db.Exec(`INSERT INTO meta (key, value) VALUES ('schema', ?)`, SchemaVersion); err != nil {
			db.Close()
			return nil, err
		}
	case err != nil:
		db.Close()
		return nil, fmt.Errorf("reading schema version: %w", err)
	case version != SchemaVersion:
		db.Close()
		return nil, fmt.Errorf("store %s has schema %s; this build reads %s", path, version, SchemaVersion)
	}
	st := &Store{db: db, path: path}
	const insert = `INSERT INTO events (site, seq, at, kind, parcel, body, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	if st.insEvent, err = db.Prepare(insert); err != nil {
		db.Close()
		return nil, fmt.Errorf("preparing %q: %w", insert, err)
	}
	st.reqs, st.quit = make(chan *commitReq), make(chan struct{})
	st.wg.Add(1)
	go st.committer()
	return st, nil
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
		if err == nil {
			s.count(group)
		}
		if err != nil && len(group) > 1 {
			for _, r := range group {
				err := s.write([]*commitReq{r})
				if err == nil {
					s.count([]*commitReq{r})
				}
				r.done <- err
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
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		s.wg.Wait()
		s.insEvent.Close()
		s.closeErr = s.db.Close()
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
		return fmt.Errorf("site %s is already provisioned with another layout", id)
	}
	return nil
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

// Buffered is the number of events waiting for Commit.
func (l *SiteLog) Buffered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending)
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
