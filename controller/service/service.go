// Package service is lockerd as a library: the controller core of every
// site, each serialised on its own goroutine (sites share nothing), the
// embedded MQTT broker for cabinets, the SQLite store, and the HTTP API.
// controller/cmd/lockerd only parses flags and calls New, Start, Shutdown;
// tests run the whole service in-process on port 0.
//
// What it must never do: publish a command before the event that caused it
// is durable, answer "accepted" before it is durable, or answer a caller's
// mistake with a 500.
package service

import (
	"context"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/lockertwin/lockertwin/controller"
	"github.com/lockertwin/lockertwin/controller/store/sqlite"
	"github.com/lockertwin/lockertwin/internal/atomicfile"
	"github.com/lockertwin/lockertwin/twin"
	"github.com/lockertwin/lockertwin/twin/broker"
)

// Config configures a service.
type Config struct {
	HTTPAddr string // e.g. ":8080", "127.0.0.1:0"
	MQTTAddr string // e.g. ":1883", "127.0.0.1:0"
	WSAddr   string // optional MQTT over WebSocket
	DataDir  string // the store, keys and tokens live here
	// Sites to provision at start (idempotent; a changed layout is refused).
	Sites []SiteLayout
	// AdminToken and CourierToken authenticate API callers; empty ones are
	// generated on first start and kept in DataDir/tokens.json.
	AdminToken, CourierToken string
	// Sync is the store's durability (sqlite.SyncFull by default).
	Sync sqlite.Sync
	// CommandTiming overrides the door-command timing of every site when
	// its fields are set (AckTimeout, MaxAttempts, CommandTTL).
	CommandTiming controller.Settings
	// ViewDir, when set, is served at /view/: the browser build of the live
	// view (make view-web builds it).
	ViewDir string
	// StatusGrace is how long a site waits after it starts for each
	// cabinet to report online; a cabinet that has not is taken as
	// offline (nothing is reserved in it) until it does. The log may say
	// online from before a restart, and a cabinet that never comes back
	// publishes no will. Zero means DefaultStatusGrace; negative, never.
	StatusGrace time.Duration
	// Notifier receives notifications (with pickup codes) after they are
	// durable; nil logs them without the code.
	Notifier Notifier
	Logger   *slog.Logger
	// BodyTimeout is how long a POST has from the end of its headers to
	// send its body; zero means DefaultBodyTimeout.
	BodyTimeout time.Duration
}

// DefaultBodyTimeout: a request body is at most 64 KiB of JSON, sent in
// one go by any real client.
const DefaultBodyTimeout = 30 * time.Second

// idleTimeout is how long lockerd keeps an idle keep-alive connection
// open: without one, a client that opens connections and leaves them idle
// holds them, and their file descriptors, for good.
const idleTimeout = 2 * time.Minute

// DefaultStatusGrace: cabinets reconnect within seconds of a restart
// (lockerfleet's 2,000 in under 2 s); two minutes leaves room for real
// firmware on a slow link.
const DefaultStatusGrace = 2 * time.Minute

// Notifier delivers notifications to recipients (a webhook, say).
type Notifier interface {
	Notify(site string, n controller.Notification)
}

// Service is a running lockerd.
type Service struct {
	cfg    Config
	log    *slog.Logger
	store  *sqlite.Store
	creds  *broker.Credentials
	broker *broker.Broker
	key    []byte
	tokens tokens

	mu    sync.RWMutex
	sites map[string]*site

	hub     *hub
	metrics *metrics
	http    *http.Server
	httpLn  net.Listener
	ready   bool
	wg      sync.WaitGroup
	stop    context.CancelFunc
	ctx     context.Context
	unsub   []func()
}

type tokens struct {
	Admin   string `json:"admin"`
	Courier string `json:"courier"`
}

// New opens the store, loads or provisions sites and credentials, and
// rebuilds every site's core from its log. Nothing listens until Start.
func New(cfg Config) (*Service, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("service: a data directory is required")
	}
	if err := checkViewDir(cfg.ViewDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("service: data directory: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	if cfg.MQTTAddr == "" {
		cfg.MQTTAddr = "127.0.0.1:0"
	}
	st, err := sqlite.OpenSync(filepath.Join(cfg.DataDir, "lockerd.db"), cfg.Sync)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, log: cfg.Logger, store: st, sites: map[string]*site{}, hub: newHub(), ctx: ctx, stop: stop}
	s.metrics = newMetrics(s)
	fail := func(err error) (*Service, error) {
		stop()
		st.Close()
		return nil, err
	}
	if s.key, err = loadCodeKey(st, filepath.Join(cfg.DataDir, "code.key")); err != nil {
		return fail(err)
	}
	if s.tokens, err = loadTokens(filepath.Join(cfg.DataDir, "tokens.json"), cfg.AdminToken, cfg.CourierToken); err != nil {
		return fail(err)
	}
	s.creds = broker.NewCredentials()
	if err := s.loadCredentials(); err != nil {
		return fail(err)
	}
	var fresh []CabinetSecret
	for _, l := range cfg.Sites {
		secrets, err := s.provision(l)
		if err != nil {
			return fail(fmt.Errorf("provisioning %s: %w", l.ID, err))
		}
		fresh = append(fresh, secrets...)
	}
	if err := s.recordSecrets(fresh); err != nil {
		return fail(err)
	}
	layouts, err := st.SiteLayouts()
	if err != nil {
		return fail(err)
	}
	ids := make([]string, 0, len(layouts))
	for id := range layouts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		var l SiteLayout
		if err := json.Unmarshal(layouts[id], &l); err != nil {
			return fail(fmt.Errorf("site %s layout: %w", id, err))
		}
		if err := s.startSite(l); err != nil {
			return fail(fmt.Errorf("site %s: %w", id, err))
		}
	}
	s.broker, err = broker.New(broker.Config{TCPAddr: cfg.MQTTAddr, WSAddr: cfg.WSAddr, Credentials: s.creds, Logger: cfg.Logger})
	if err != nil {
		return fail(err)
	}
	return s, nil
}

// Tokens returns the API tokens (admin, courier).
func (s *Service) Tokens() (admin, courier string) { return s.tokens.Admin, s.tokens.Courier }

// loadOrCreateSecret reads a key of n bytes, or makes one if there is
// none. Only a missing file makes a new key: a key that cannot be read is
// an error, not replaced, since every code issued under it would then fail.
func loadOrCreateSecret(path string, n int) ([]byte, error) {
	b, made, err := readOrMake(path, func() ([]byte, error) { return randomBytes(n) })
	if err == nil && !made && len(b) != n {
		return nil, fmt.Errorf("%s: expected %d bytes, has %d", path, n, len(b))
	}
	return b, err
}

// readOrMake reads a secret's file, or, only if there is none, makes the
// secret and writes it (0600). made says which.
func readOrMake(path string, makeSecret func() ([]byte, error)) (b []byte, made bool, err error) {
	b, err = os.ReadFile(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return b, false, err
	}
	if b, err = makeSecret(); err != nil {
		return nil, false, err
	}
	return b, true, atomicfile.Write(path, b, 0o600)
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := crand.Read(b)
	return b, err
}

// loadCodeKey reads the key pickup codes are issued under, or makes it on
// a store's first start, and holds it to the store: the store keeps the
// id of its key, and a store whose key was lost, replaced or taken from
// another data directory does not start (nor is a lost key made anew).
// Its active pickup codes were issued under the old key, and not one would
// open a door.
func loadCodeKey(st *sqlite.Store, path string) ([]byte, error) {
	pinned, has, err := st.Pinned("code_key_id")
	if err != nil {
		return nil, fmt.Errorf("reading the code key's id: %w", err)
	}
	putBack := "put back the code.key of this data directory; with another key, no issued code would open its door"
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && has {
		return nil, fmt.Errorf("%s is missing, and this store's pickup codes were issued under the key with id %s: %s", path, pinned, putBack)
	}
	key, err := loadOrCreateSecret(path, 32)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("lockertwin code key id"))
	id := hex.EncodeToString(mac.Sum(nil)[:8])
	if !has {
		if err := st.Pin("code_key_id", id); err != nil {
			return nil, fmt.Errorf("recording the code key's id: %w", err)
		}
		return key, nil
	}
	if pinned != id {
		return nil, fmt.Errorf("%s is not the key this store's pickup codes were issued under (the store's key has id %s, this one %s): %s", path, pinned, id, putBack)
	}
	return key, nil
}

func loadTokens(path, admin, courier string) (tokens, error) {
	var t tokens
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &t); err != nil {
			return t, fmt.Errorf("%s: %w", path, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return t, err
	}
	if admin != "" {
		t.Admin = admin
	}
	if courier != "" {
		t.Courier = courier
	}
	if t.Admin == "" {
		if t.Admin, err = broker.NewSecret(); err != nil {
			return t, err
		}
	}
	if t.Courier == "" {
		if t.Courier, err = broker.NewSecret(); err != nil {
			return t, err
		}
	}
	b, _ = json.MarshalIndent(t, "", "  ")
	return t, atomicfile.Write(path, b, 0o600)
}

// credentials persist as hashed entries in DataDir/credentials.db.json.
func (s *Service) credentialsPath() string {
	return filepath.Join(s.cfg.DataDir, "mqtt-credentials.json")
}

func (s *Service) loadCredentials() error {
	b, err := os.ReadFile(s.credentialsPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var list []broker.Stored
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("%s: %w", s.credentialsPath(), err)
	}
	s.creds.Import(list)
	return nil
}

func (s *Service) saveCredentials() error {
	b, err := json.MarshalIndent(s.creds.Export(), "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(s.credentialsPath(), b, 0o600)
}

// CabinetSecret is a newly provisioned cabinet's MQTT login, with what a
// virtual cabinet needs to stand in for it (lockerfleet reads these).
type CabinetSecret struct {
	Site     string `json:"site"`
	Cabinet  string `json:"cabinet"`
	Username string `json:"username"`
	Secret   string `json:"secret"`
	// Chilled lists the cabinet's compartments in slot order: true where chilled.
	Chilled []bool `json:"chilled"`
}

// provision stores a site's layout and creates credentials for cabinets that
// have none, returning the new secrets (see recordSecrets).
func (s *Service) provision(l SiteLayout) ([]CabinetSecret, error) {
	if err := l.check(); err != nil {
		return nil, err // nothing stored: a bad layout must not outlive the request
	}
	b, err := l.encode()
	if err != nil {
		return nil, err
	}
	if err := s.store.SaveSite(l.ID, b); err != nil {
		return nil, err
	}
	zones := map[string]string{}
	for _, c := range l.Classes {
		zones[c.Name] = c.Zone
	}
	var fresh []CabinetSecret
	for _, cab := range l.Cabinets {
		user := broker.CabinetUsername(l.ID, cab.Name)
		if s.creds.Has(user) {
			continue
		}
		_, secret, err := s.creds.AddCabinet(l.ID, cab.Name)
		if err != nil {
			return nil, err
		}
		chilled := make([]bool, len(cab.Compartments))
		for i, c := range cab.Compartments {
			chilled[i] = zones[c.Class] == "chilled"
		}
		fresh = append(fresh, CabinetSecret{Site: l.ID, Cabinet: cab.Name, Username: user, Secret: secret, Chilled: chilled})
	}
	return fresh, nil
}

// recordSecrets persists the (hashed) credentials and appends the new
// cabinets' secrets to DataDir/new-cabinet-secrets.json, the only place they
// ever appear in clear, in one atomic write.
func (s *Service) recordSecrets(fresh []CabinetSecret) error {
	if len(fresh) == 0 {
		return nil
	}
	if err := s.saveCredentials(); err != nil {
		return err
	}
	existing, err := NewCabinetSecrets(s.cfg.DataDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	out, err := json.MarshalIndent(append(existing, fresh...), "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(s.cfg.DataDir, "new-cabinet-secrets.json"), out, 0o600)
}

// NewCabinetSecrets reads the secrets of cabinets provisioned by this data
// directory (for lockerfleet and tests).
func NewCabinetSecrets(dataDir string) ([]CabinetSecret, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "new-cabinet-secrets.json"))
	if err != nil {
		return nil, err
	}
	var out []CabinetSecret
	return out, json.Unmarshal(b, &out)
}

func (s *Service) startSite(l SiteLayout) error {
	inv, pol, set, err := l.build()
	if err != nil {
		return err
	}
	if t := s.cfg.CommandTiming; t.AckTimeout > 0 || t.MaxAttempts > 0 || t.CommandTTL > 0 {
		set.AckTimeout, set.MaxAttempts, set.CommandTTL = t.AckTimeout, t.MaxAttempts, t.CommandTTL
	}
	st := &site{svc: s, id: l.ID, layout: l, log: s.store.Log(l.ID), inbox: make(chan job, 1024)}
	cfg := controller.Config{Site: l.ID, Inventory: inv, Policy: pol, Settings: set,
		Clock: twin.PostingClock{Post: st.postTimer}, Rand: controller.CryptoRand{}, CodeKey: s.key,
		Log: st.log, Out: st, RetainFinished: true}
	events, err := s.store.Events(l.ID)
	if err != nil {
		return err
	}
	st.core, err = controller.Rebuild(cfg, events)
	if err != nil {
		return err
	}
	st.cfg = cfg
	st.core.AddHook(st)
	st.seen, st.behind = map[string]bool{}, map[string]bool{}
	if grace := s.cfg.StatusGrace; grace >= 0 {
		if grace == 0 {
			grace = DefaultStatusGrace
		}
		cfg.Clock.AfterFunc(grace, st.markUnseenOffline)
	}
	s.mu.Lock()
	s.sites[l.ID] = st
	s.mu.Unlock()
	return nil
}

// Start listens on HTTP and MQTT, subscribes the sites to their cabinets,
// and starts each site's goroutine.
func (s *Service) Start() error {
	if err := s.broker.Start(); err != nil {
		return err
	}
	for _, sub := range []struct {
		filter string
		fn     func(string, []byte)
	}{
		{"lockers/v1/+/+/evt", s.onEvent}, {"lockers/v1/+/+/state", s.onState}, {"lockers/v1/+/+/status", s.onStatus},
	} {
		unsub, err := s.broker.Subscribe(sub.filter, sub.fn)
		if err != nil {
			return err
		}
		s.unsub = append(s.unsub, unsub)
	}
	s.mu.RLock()
	for _, st := range s.sites {
		s.wg.Add(1)
		go st.run()
	}
	s.mu.RUnlock()
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("service: http listener: %w", err)
	}
	s.httpLn = ln
	s.http = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idleTimeout}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server", "err", err)
		}
	}()
	s.mu.Lock()
	s.ready = true
	s.mu.Unlock()
	s.log.Info("lockerd started", "http", s.HTTPAddr(), "mqtt", s.MQTTAddr(), "ws", s.WSAddr(), "sites", len(s.sites))
	return nil
}

func (s *Service) sortedSites() []*site {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*site, 0, len(s.sites))
	for _, st := range s.sites {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// HTTPAddr is the API's address.
func (s *Service) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// MQTTAddr is the broker's TCP address.
func (s *Service) MQTTAddr() string { return s.broker.Addr() }

// WSAddr is the broker's MQTT-over-WebSocket address, or "" when off.
func (s *Service) WSAddr() string { return s.broker.WSAddr() }

// Shutdown stops accepting work, finishes what is in each site's queue and
// closes the broker and the store.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.ready = false
	s.mu.Unlock()
	var errs []error
	if s.http != nil {
		errs = append(errs, s.http.Shutdown(ctx))
	}
	for _, u := range s.unsub {
		u()
	}
	s.stop()
	s.wg.Wait()
	s.hub.close()
	if s.broker != nil {
		errs = append(errs, s.broker.Close())
	}
	errs = append(errs, s.store.Close())
	return errors.Join(errs...)
}

func (s *Service) site(id string) (*site, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, ok := s.sites[id]
	return st, ok
}

// ---- MQTT inbound -----------------------------------------------------------

func (s *Service) route(topic string, want twin.Channel) (*site, string, bool) {
	t, err := twin.ParseTopic(topic)
	if err != nil || t.Channel != want {
		s.metrics.mqttRejected.Inc()
		return nil, "", false
	}
	st, ok := s.site(t.Site)
	if !ok {
		s.metrics.mqttRejected.Inc()
		return nil, "", false
	}
	return st, t.Cabinet, true
}

func (s *Service) onEvent(topic string, payload []byte) {
	st, cab, ok := s.route(topic, twin.ChanEvt)
	if !ok {
		return
	}
	ev, err := twin.DecodeEvent(payload)
	if err != nil {
		s.metrics.mqttRejected.Inc()
		s.log.Warn("rejected cabinet event", "topic", topic, "err", err)
		return
	}
	st.post(func() error {
		err := st.core.HandleEvent(cab, ev)
		switch {
		case err == nil:
		case errors.Is(err, controller.ErrDuplicateEvent):
			s.metrics.eventsDropped.Inc() // a redelivery under QoS 1, or a cabinet behind its sequence
			if errors.Is(err, controller.ErrSequenceBehind) {
				st.warnBehind(cab, ev.Seq)
			}
		default:
			s.metrics.mqttRejected.Inc()
			s.log.Warn("cabinet event refused", "site", st.id, "cabinet", cab, "err", err)
		}
		return nil
	})
}

func (s *Service) onState(topic string, payload []byte) {
	st, cab, ok := s.route(topic, twin.ChanState)
	if !ok {
		return
	}
	state, err := twin.DecodeState(payload)
	if err != nil {
		s.metrics.mqttRejected.Inc()
		return
	}
	st.post(func() error {
		// The state a cabinet publishes when it connects carries its
		// sequence number: one behind the events handled from it means it
		// counts again from a lower number, and its events will be dropped.
		if last, ok := st.core.CabinetSequence(cab); ok && state.Seq < last {
			st.warnBehind(cab, state.Seq)
		}
		if err := st.core.HandleState(cab, state); err != nil && !errors.Is(err, twin.ErrStaleState) {
			s.log.Warn("cabinet state refused", "site", st.id, "cabinet", cab, "err", err)
		}
		return nil
	})
}

func (s *Service) onStatus(topic string, payload []byte) {
	st, cab, ok := s.route(topic, twin.ChanStatus)
	if !ok {
		return
	}
	status, err := twin.DecodeStatus(payload)
	if err != nil {
		s.metrics.mqttRejected.Inc()
		return
	}
	st.post(func() error {
		st.seen[cab] = true
		if status == twin.StatusOnline {
			delete(st.behind, cab) // warn again if this connection is behind too
		}
		return st.core.CabinetOnline(cab, status == twin.StatusOnline)
	})
}

// ---- sites -------------------------------------------------------------------

// site runs one core on its own goroutine. Every input runs as a unit:
// the core acts, its events and commands are committed in one transaction,
// and only then are commands published and notifications sent.
type site struct {
	svc    *Service
	id     string
	layout SiteLayout
	cfg    controller.Config
	core   *controller.Core
	log    *sqlite.SiteLog
	inbox  chan job
	cmds   []cabinetCommand // the batch's commands, published after its commit
	notes  []controller.Notification
	events []controller.Event
	seen   map[string]bool // cabinets that reported a status since start
	// behind: cabinets whose events were dropped as behind their sequence
	// and were warned about, since they last reported online.
	behind map[string]bool
}

// warnBehind says, once per connection of a cabinet, that it reports a
// sequence number (seq) behind the events handled from it: it restarted
// without keeping its count, and its events are dropped until its numbers
// pass the last handled.
func (st *site) warnBehind(cab string, seq uint64) {
	if st.behind[cab] {
		return
	}
	st.behind[cab] = true
	last, _ := st.core.CabinetSequence(cab)
	st.svc.log.Warn("cabinet is behind its own sequence: it reports a number below the last handled from it, "+
		"as a cabinet restarted without its non-volatile memory does (PROTOCOL.md: keep seq across restarts); "+
		"its events are dropped as already handled until its numbers pass the last",
		"site", st.id, "cabinet", cab, "seq", seq, "last_handled", last)
}

// cabinetCommand is a door command waiting for its event's commit.
type cabinetCommand struct {
	cabinet string
	cmd     twin.Command
}

// markUnseenOffline ends the status grace: every cabinet that has not
// reported since the site started is recorded offline.
func (st *site) markUnseenOffline() {
	for _, cb := range st.core.Inventory().Cabinets() {
		if st.seen[cb.Name] {
			continue
		}
		if err := st.core.CabinetOnline(cb.Name, false); err != nil {
			st.svc.log.Error("marking a silent cabinet offline", "site", st.id, "cabinet", cb.Name, "err", err)
			continue
		}
		st.svc.log.Warn("cabinet has not reported since start; taken as offline", "site", st.id, "cabinet", cb.Name)
	}
}

// job is one input for a site; done (if set) receives its result once it
// is durable.
type job struct {
	f    func() error
	done chan error
}

// maxBatch bounds how many queued inputs share one commit.
const maxBatch = 128

// lazyCommit is how long a batch nothing waits on may wait for company.
const lazyCommit = time.Millisecond

// run is the site's goroutine. It takes every input waiting (up to
// maxBatch), runs them in order, commits them in one transaction (one fsync
// for the lot: group commit), publishes, and only then answers them.
//
// A batch nothing waits on (cabinet events whose effects stay inside the
// core: an acknowledgement, a door opening, a parcel picked up) has no
// caller, command or notification to release, so it is not committed on
// its own at once: it waits up to lazyCommit for more input and is
// committed with it. Under load that saves a third of the transactions.
// Only observers of the event stream see such events up to lazyCommit
// later; a crash in that window loses what a crash just before a commit
// always could (the cabinet's acknowledgement or door report, which the
// core recovers by resending the command and from the cabinet's state).
func (st *site) run() {
	defer st.svc.wg.Done()
	batch := make([]job, 0, maxBatch)
	errs := make([]error, 0, maxBatch)
	deadline := time.NewTimer(time.Hour)
	deadline.Stop()
	for {
		select {
		case j := <-st.inbox:
			batch = append(batch[:0], j)
		case <-st.svc.ctx.Done():
			if err := st.log.Commit(); err != nil {
				st.svc.log.Error("committing the site's log at shutdown", "site", st.id, "err", err)
			}
			return
		}
		errs = errs[:0]
		waited, armed := false, false
	gather:
		for {
		drain:
			for len(batch) < maxBatch {
				select {
				case j := <-st.inbox:
					batch = append(batch, j)
				default:
					break drain
				}
			}
			for _, j := range batch[len(errs):] {
				errs = append(errs, j.f())
				waited = waited || j.done != nil
			}
			if waited || len(st.cmds) > 0 || len(st.notes) > 0 || len(batch) == maxBatch {
				break
			}
			if !armed {
				deadline.Reset(lazyCommit)
				armed = true
			}
			select {
			case j := <-st.inbox:
				batch = append(batch, j)
			case <-deadline.C:
				armed = false
				break gather
			case <-st.svc.ctx.Done():
				break gather
			}
		}
		if armed {
			deadline.Stop()
		}
		if err := st.commit(); err != nil {
			for i := range errs {
				errs[i] = err
			}
		}
		for i, j := range batch {
			if j.done != nil {
				j.done <- errs[i]
			}
		}
	}
}

func (st *site) enqueue(j job) bool {
	select {
	case st.inbox <- j:
		return true
	case <-st.svc.ctx.Done():
		return false
	}
}

// post runs f on the site's goroutine, without waiting.
func (st *site) post(f func() error) { st.enqueue(job{f: f}) }

// call runs f on the site's goroutine and waits until its effects are durable.
func (st *site) call(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	if !st.enqueue(job{f: f, done: done}) {
		return errShuttingDown
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errShuttingDown = errors.New("service is shutting down")

func (st *site) postTimer(f func()) { st.enqueue(job{f: func() error { f(); return nil }}) }

// commit makes the batch durable, then publishes its commands and delivers
// its observations and notifications. If the commit fails the core no longer
// matches the store: it is rebuilt from the store, the batch's outputs are
// dropped, and every input of the batch gets ErrLogFailed (a 503), never a
// false yes.
func (st *site) commit() error {
	cerr := st.log.Commit()
	// The buffers are reused: nothing below appends to them (publishing,
	// observing and notifying do not call the core).
	cmds, notes, events := st.cmds, st.notes, st.events
	st.cmds, st.notes, st.events = cmds[:0], notes[:0], events[:0]
	if cerr != nil {
		st.svc.log.Error("commit failed; rebuilding the site from its store", "site", st.id, "err", cerr)
		if rerr := st.rebuild(); rerr != nil {
			st.svc.log.Error("rebuild failed", "site", st.id, "err", rerr)
		}
		return fmt.Errorf("%w: %v", controller.ErrLogFailed, cerr)
	}
	st.publish(cmds)
	for _, e := range events {
		st.svc.hub.publish(e.Kind, func() Observation { return st.observation(&e) })
		st.svc.metrics.observe(st, &e)
	}
	for _, n := range notes {
		if st.svc.cfg.Notifier != nil {
			st.svc.cfg.Notifier.Notify(st.id, n)
		} else {
			st.svc.log.Info("notification", "site", st.id, "parcel", n.Parcel, "kind", n.Kind, "recipient", n.Recipient)
		}
	}
	return nil
}

func (st *site) rebuild() error {
	events, err := st.svc.store.Events(st.id)
	if err != nil {
		return err
	}
	inv, pol, _, err := st.layout.build()
	if err != nil {
		return err
	}
	cfg := st.cfg
	cfg.Inventory, cfg.Policy = inv, pol
	core, err := controller.Rebuild(cfg, events)
	if err != nil {
		return err
	}
	core.AddHook(st)
	st.core = core
	return nil
}

// publish sends committed commands to their cabinets. One already expired
// (its commit was slow) is never sent late: the core's retry or timeout
// takes it from there.
func (st *site) publish(cmds []cabinetCommand) {
	for i := range cmds {
		c := &cmds[i]
		ttl := time.Until(c.cmd.ExpiresAt)
		if ttl <= 0 {
			continue
		}
		payload, err := twin.EncodeCommand(&c.cmd)
		if err != nil {
			st.svc.log.Error("core produced an invalid command", "err", err)
			continue
		}
		if err := st.svc.broker.Publish(twin.CabinetTopic(st.id, c.cabinet, twin.ChanCmd), payload, false, ttl); err != nil {
			st.svc.log.Error("publishing a command", "cabinet", c.cabinet, "err", err)
		}
	}
}

// Send holds a command until the event that issued it is durable (Outputs).
func (st *site) Send(cabinet string, cmd twin.Command) {
	st.cmds = append(st.cmds, cabinetCommand{cabinet, cmd})
}

// Notify holds a notification until its events are durable (Outputs).
func (st *site) Notify(n controller.Notification) { st.notes = append(st.notes, n) }

// OnLogged collects events for observers after the commit (controller.Hook).
func (st *site) OnLogged(_ *controller.Core, e *controller.Event) { st.events = append(st.events, *e) }

// checkViewDir makes sure a directory to serve at /view/ holds the browser
// view (make view-web's output): a mistyped path would only show as a 404
// in the browser, and any other directory would be published over HTTP.
func checkViewDir(dir string) error {
	if dir == "" {
		return nil
	}
	for _, name := range []string{"index.html", "lockerview.wasm", "wasm_exec.js"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("service: view directory %s has no %s (make view-web builds it into bin/view)", dir, name)
		}
	}
	return nil
}
