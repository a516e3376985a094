// Package sqlite is the controller's durable store in SQLite (modernc.org/sqlite,
// pure Go, no cgo): every site's hash-chained event log, and a transactional
// outbox of cabinet commands.
//
// How the service uses it: a site's core appends its events to a SiteLog,
// which only buffers them; after each batch of inputs the service commits the
// buffer together with the commands the inputs produced, in one transaction,
// and publishes the commands only after that commit. One committer writes
// every site's batches, so sites committing at once share a transaction (and
// its fsync). Published commands leave the outbox with the site's next
// commit. A crash therefore loses no accepted parcel (its events are durable
// before the caller hears yes) and opens no door twice (a command still in
// the outbox is republished with the same id after a restart only if the
// rebuilt core still awaits it; the cabinet executes an id once).
//
// What it must never do: hand back events whose chain does not verify, or
// publish before commit.
package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

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
CREATE TABLE IF NOT EXISTS outbox (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	site    TEXT NOT NULL,
	cabinet TEXT NOT NULL,
	topic   TEXT NOT NULL,
	payload BLOB NOT NULL,
	expires INTEGER NOT NULL,
	sent    INTEGER NOT NULL DEFAULT 0
);
`

// The outbox is a queue: a published command's row is deleted (the event
// log keeps its DoorCommanded), so the table holds only what is still to
// send, stays a page or two, and needs no index. Stores written before that
// had sent rows and an index over them; opening one tidies it.
const tidyOutbox = `
DROP INDEX IF EXISTS outbox_pending;
DELETE FROM outbox WHERE sent <> 0;
`

// SchemaVersion is the store's on-disk format.
const SchemaVersion = "1"

// Store is an open database.
type Store struct {
	db   *sql.DB
	path string
	// Statements every commit runs, prepared once: preparing them per
	// transaction compiled the SQL on every group commit.
	insEvent, insOutbox, markSent *sql.Stmt

	// Group commit across sites: a site's commit is a request to one
	// committer, which writes every request waiting in one transaction.
	reqs      chan *commitReq
	quit      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	buf       []byte // the committer's
}

// maxGroup bounds how many sites' batches share one transaction.
const maxGroup = 64

// ErrClosed is returned for a commit after Close.
var ErrClosed = errors.New("store closed")

// commitReq is one site's batch for the committer.
type commitReq struct {
	site   string
	events []controller.Event
	cmds   []Command
	sent   []int64
	done   chan error
}

// Sync is how hard a commit is made durable.
type Sync string

const (
	// SyncFull fsyncs the WAL on every commit: a commit survives a process
	// crash and a power cut. The default.
	SyncFull Sync = "full"
	// SyncNormal fsyncs at checkpoints only: a commit survives a process
	// crash (SIGKILL) but the last ones may be lost on a power cut. About
	// twice the throughput; for load tests and machines with protected power.
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
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(" + pragma + ")&_pragma=busy_timeout(5000)&_pragma=foreign_keys(ON)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	// One writer: SQLite serialises writes anyway, and one connection keeps
	// transactions from waiting on each other's locks.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("creating schema in %s: %w", path, err)
	}
	if _, err := db.Exec(tidyOutbox); err != nil {
		db.Close()
		return nil, fmt.Errorf("tidying the outbox of %s: %w", path, err)
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
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&st.insEvent, `INSERT INTO events (site, seq, at, kind, parcel, body, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`},
		{&st.insOutbox, `INSERT INTO outbox (site, cabinet, topic, payload, expires) VALUES (?, ?, ?, ?, ?)`},
		{&st.markSent, `DELETE FROM outbox WHERE id = ?`},
	} {
		if *p.stmt, err = db.Prepare(p.sql); err != nil {
			db.Close()
			return nil, fmt.Errorf("preparing %q: %w", p.sql, err)
		}
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
	insert, outbox, mark := tx.Stmt(s.insEvent), tx.Stmt(s.insOutbox), tx.Stmt(s.markSent)
	for _, r := range group {
		for i := range r.events {
			e := &r.events[i]
			s.buf = e.AppendCanonical(s.buf[:0])
			if _, err := insert.Exec(r.site, e.Seq, e.At, int(e.Kind), e.Parcel, s.buf, e.Prev[:], e.Hash[:]); err != nil {
				tx.Rollback()
				return fmt.Errorf("committing %s event %d: %w", r.site, e.Seq, err)
			}
		}
		for i := range r.cmds {
			c := &r.cmds[i]
			res, err := outbox.Exec(r.site, c.Cabinet, c.Topic, c.Payload, c.Expires.UnixNano())
			if err != nil {
				tx.Rollback()
				return fmt.Errorf("committing %s outbox: %w", r.site, err)
			}
			if c.ID, err = res.LastInsertId(); err != nil {
				tx.Rollback()
				return err
			}
		}
		for _, id := range r.sent {
			if _, err := mark.Exec(id); err != nil {
				tx.Rollback()
				return fmt.Errorf("committing %s sent marks: %w", r.site, err)
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
		for _, st := range []*sql.Stmt{s.insEvent, s.insOutbox, s.markSent} {
			st.Close()
		}
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

// Command is a cabinet command waiting in the outbox.
type Command struct {
	ID      int64
	Site    string
	Cabinet string
	Topic   string
	Payload []byte
	Expires time.Time
}

// Pending lists a site's unsent, unexpired commands in order: after a
// restart the service publishes these (same ids: the cabinets dedup). It
// scans the outbox, which holds only unsent commands.
func (s *Store) Pending(site string, now time.Time) ([]Command, error) {
	// What expired unsent (its publish failed, then the process stopped)
	// will never be sent: it goes.
	if _, err := s.db.Exec(`DELETE FROM outbox WHERE site = ? AND expires <= ?`, site, now.UnixNano()); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(`SELECT id, cabinet, topic, payload, expires FROM outbox
		WHERE site = ? AND sent = 0 AND expires > ? ORDER BY id`, site, now.UnixNano())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Command
	for rows.Next() {
		c := Command{Site: site}
		var exp int64
		if err := rows.Scan(&c.ID, &c.Cabinet, &c.Topic, &c.Payload, &exp); err != nil {
			return nil, err
		}
		c.Expires = time.Unix(0, exp).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// SiteLog is a site's controller.Log: Append buffers; Commit makes the
// buffer and the outbox entries durable in one transaction.
type SiteLog struct {
	s       *Store
	site    string
	mu      sync.Mutex
	pending []controller.Event
	outbox  []Command
	sent    []int64 // published commands, marked sent with the next commit
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

// Enqueue buffers a command for the outbox, to be committed with the events.
func (l *SiteLog) Enqueue(cabinet, topic string, payload []byte, expires time.Time) {
	l.mu.Lock()
	l.outbox = append(l.outbox, Command{Site: l.site, Cabinet: cabinet, Topic: topic, Payload: payload, Expires: expires})
	l.mu.Unlock()
}

// MarkSent records that commands were published. The mark rides on the
// site's next commit rather than costing a transaction (and an fsync) of
// its own. Until then a restart republishes them, as it would after a crash
// between publishing and marking: a command carries its id and expiry, and
// cabinets acknowledge a repeated id without acting on it again.
func (l *SiteLog) MarkSent(ids ...int64) {
	l.mu.Lock()
	l.sent = append(l.sent, ids...)
	l.mu.Unlock()
}

// Buffered is the number of events waiting for Commit.
func (l *SiteLog) Buffered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending)
}

// Flush commits what is buffered, sent marks included: at shutdown.
func (l *SiteLog) Flush() error {
	_, err := l.commit(true)
	return err
}

// Commit writes the buffered events and commands in one transaction and
// returns the commands with their outbox ids, to be published now. On
// error nothing was written and the buffer is dropped: the caller must
// rebuild its core from the store, which no longer matches it.
func (l *SiteLog) Commit() ([]Command, error) { return l.commit(false) }

func (l *SiteLog) commit(flush bool) ([]Command, error) {
	l.mu.Lock()
	events, cmds, sent := l.pending, l.outbox, l.sent
	if len(events) == 0 && len(cmds) == 0 && !(flush && len(sent) > 0) {
		l.mu.Unlock()
		return nil, nil // sent marks alone wait for a commit with content
	}
	l.pending, l.outbox, l.sent = nil, nil, nil
	l.mu.Unlock()
	r := &commitReq{site: l.site, events: events, cmds: cmds, sent: sent, done: make(chan error, 1)}
	var err error
	select {
	case l.s.reqs <- r:
		err = <-r.done
	case <-l.s.quit:
		err = ErrClosed
	}
	if err != nil {
		l.mu.Lock()
		l.sent = append(sent, l.sent...) // they are still true; they go next time
		l.mu.Unlock()
		return nil, err
	}
	return cmds, nil
}
