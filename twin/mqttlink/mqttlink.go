// Package mqttlink runs a virtual cabinet in wall-clock time against any
// MQTT 5 broker (lockerd's embedded one, or mosquitto): the cabinet's
// uplink publishes its events, state and status, and commands from its cmd
// topic reach it. The MQTT client is eclipse/paho.golang's autopaho (it
// reconnects by itself), wrapped here so nothing else depends on it.
//
// A Runner owns its cabinet on one goroutine: commands, timers and people's
// actions are all posted to it, so the cabinet's state machine stays
// single-threaded as in the simulator.
package mqttlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/lockertwin/lockertwin/twin"
)

// Config says where and as whom a cabinet connects.
type Config struct {
	Broker        string // e.g. "mqtt://127.0.0.1:1883"
	Site, Cabinet string
	Secret        string
	KeepAlive     time.Duration // default 30 s
	// ReceiveMaximum is advertised to the broker; set explicitly because
	// paho otherwise sizes a 512 KiB window per client. Default 64.
	ReceiveMaximum uint16
	// OutboxSize bounds events waiting to be published; default 1,024.
	OutboxSize int
	Logger     *slog.Logger
	// OnConnectError, if set, hears every failed connection attempt (the
	// runner retries every second): lockerfleet says why it is waiting.
	OnConnectError func(error)
}

// brokerSchemes are the URL schemes autopaho connects with.
var brokerSchemes = map[string]bool{"mqtt": true, "tcp": true, "ws": true, "wss": true, "tls": true, "ssl": true, "mqtts": true}

// ParseBroker checks a broker URL: a scheme the client speaks and a host.
func ParseBroker(broker string) (*url.URL, error) {
	u, err := url.Parse(broker)
	switch {
	case err != nil:
		return nil, fmt.Errorf("mqttlink: broker URL %q: want mqtt://, tcp://, tls://, ws:// or wss:// and a host (%w)", broker, err)
	case !brokerSchemes[strings.ToLower(u.Scheme)]:
		return nil, fmt.Errorf("mqttlink: broker URL %q: want mqtt://, tcp://, tls://, ws:// or wss:// and a host", broker)
	case u.Host == "":
		return nil, fmt.Errorf("mqttlink: broker URL %q names no host", broker)
	}
	return u, nil
}

// Stats are a runner's counters.
type Stats struct {
	Published, PublishRetries, CommandsReceived, CommandsInvalid, OutboxDropped int64
	Connections                                                                 int64
}

type outMsg struct {
	topic   string
	payload []byte
	retain  bool
}

// Runner is one virtual cabinet connected over MQTT.
type Runner struct {
	cfg   Config
	cm    *autopaho.ConnectionManager
	cab   *twin.Cabinet
	inbox chan func()
	out   chan outMsg
	ready chan struct{}
	up    atomic.Bool
	// conn ends when the current connection goes down, so that a publish
	// waiting for its PUBACK on a dead connection returns at once (paho
	// would wait its 10 s packet timeout) and is retried on the next one.
	connMu sync.Mutex
	conn   context.Context
	drop   context.CancelFunc
	ctx    context.Context
	stop   context.CancelFunc
	done   chan struct{}
	log    *slog.Logger

	published, retries, received, invalid, dropped, conns atomic.Int64
	lastConnErr                                           atomic.Pointer[error]
}

// Start connects a new virtual cabinet; it returns once the first connection
// is up (or ctx ends).
func Start(ctx context.Context, cfg Config, cab twin.CabinetConfig, streams twin.Streams, obs twin.Observer) (*Runner, error) {
	u, err := ParseBroker(cfg.Broker)
	if err != nil {
		return nil, err
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	if cfg.ReceiveMaximum == 0 {
		cfg.ReceiveMaximum = 64
	}
	if cfg.OutboxSize <= 0 {
		cfg.OutboxSize = 1024
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	cab.Site, cab.Name = cfg.Site, cfg.Cabinet
	runCtx, stop := context.WithCancel(context.Background())
	r := &Runner{cfg: cfg, inbox: make(chan func(), 256), out: make(chan outMsg, cfg.OutboxSize),
		ready: make(chan struct{}), ctx: runCtx, stop: stop, done: make(chan struct{}), log: log}
	r.cab, err = twin.NewCabinet(cab, twin.PostingClock{Post: r.post}, r, obs, streams)
	if err != nil {
		stop()
		return nil, err
	}
	user := cfg.Site + "." + cfg.Cabinet
	status := twin.CabinetTopic(cfg.Site, cfg.Cabinet, twin.ChanStatus)
	cmdTopic := twin.CabinetTopic(cfg.Site, cfg.Cabinet, twin.ChanCmd)
	recvMax := cfg.ReceiveMaximum
	pc := autopaho.ClientConfig{
		ServerUrls: []*url.URL{u}, KeepAlive: uint16(cfg.KeepAlive / time.Second),
		CleanStartOnInitialConnection: true, SessionExpiryInterval: 0,
		ConnectRetryDelay: time.Second, ConnectTimeout: 5 * time.Second,
		ConnectUsername: user, ConnectPassword: []byte(cfg.Secret),
		WillMessage: &paho.WillMessage{Topic: status, Payload: []byte(twin.StatusOffline), QoS: 1, Retain: true},
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			r.conns.Add(1)
			conn, drop := context.WithCancel(runCtx)
			r.connMu.Lock()
			r.conn, r.drop = conn, drop
			r.connMu.Unlock()
			r.up.Store(true)
			// Subscribe and announce from a goroutine: this callback must not block.
			go func() {
				if _, err := cm.Subscribe(runCtx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: cmdTopic, QoS: 1}}}); err != nil {
					r.log.Warn("subscribing to commands", "cabinet", user, "err", err)
				}
				r.post(func() {
					r.PublishStatus(cfg.Cabinet, twin.StatusOnline)
					r.PublishState(cfg.Cabinet, r.cab.State())
				})
				select {
				case <-r.ready:
				default:
					close(r.ready)
				}
			}()
		},
		OnConnectionDown: func() bool {
			r.up.Store(false)
			r.connMu.Lock()
			if r.drop != nil {
				r.drop()
			}
			r.connMu.Unlock()
			return true
		},
		OnConnectError: func(err error) {
			r.lastConnErr.Store(&err)
			r.log.Debug("connect failed", "cabinet", user, "err", err)
			if cfg.OnConnectError != nil {
				cfg.OnConnectError(err)
			}
		},
		ClientConfig: paho.ClientConfig{
			ClientID: user,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
				r.received.Add(1)
				cmd, err := twin.DecodeCommand(pr.Packet.Payload)
				if err != nil || pr.Packet.Topic != cmdTopic {
					r.invalid.Add(1)
					return true, nil
				}
				r.post(func() { r.cab.HandleCommand(cmd) })
				return true, nil
			}},
		},
	}
	pc.SetConnectPacketConfigurator(func(c *paho.Connect) (*paho.Connect, error) {
		if c.Properties == nil {
			c.Properties = &paho.ConnectProperties{}
		}
		c.Properties.ReceiveMaximum = &recvMax
		return c, nil
	})
	r.cm, err = autopaho.NewConnection(runCtx, pc)
	if err != nil {
		stop()
		return nil, fmt.Errorf("mqttlink: %w", err)
	}
	go r.loop()
	go r.sender()
	select {
	case <-r.ready:
		return r, nil
	case <-ctx.Done():
		r.Close(context.Background())
		if last := r.lastConnErr.Load(); last != nil {
			return nil, fmt.Errorf("mqttlink: cabinet %s did not connect: %w (the last attempt: %v)", user, ctx.Err(), *last)
		}
		return nil, fmt.Errorf("mqttlink: cabinet %s did not connect: %w", user, ctx.Err())
	}
}

// post runs f on the cabinet's goroutine.
func (r *Runner) post(f func()) {
	select {
	case r.inbox <- f:
	case <-r.ctx.Done():
	}
}

// Do runs f with the cabinet on its goroutine and waits for it: how a person
// (or a test) acts at the cabinet.
func (r *Runner) Do(f func(c *twin.Cabinet)) {
	done := make(chan struct{})
	r.post(func() { f(r.cab); close(done) })
	select {
	case <-done:
	case <-r.ctx.Done():
	}
}

func (r *Runner) loop() {
	defer close(r.done)
	for {
		select {
		case f := <-r.inbox:
			f()
		case <-r.ctx.Done():
			return
		}
	}
}

// sender publishes queued messages in order, waiting out disconnections.
func (r *Runner) sender() {
	for {
		select {
		case m := <-r.out:
			for {
				_, err := r.cm.Publish(r.connection(), &paho.Publish{Topic: m.topic, Payload: m.payload, QoS: 1, Retain: m.retain})
				if err == nil {
					r.published.Add(1)
					break
				}
				if r.ctx.Err() != nil {
					return
				}
				r.retries.Add(1)
				wait, cancel := context.WithTimeout(r.ctx, time.Second)
				_ = r.cm.AwaitConnection(wait)
				cancel()
			}
		case <-r.ctx.Done():
			return
		}
	}
}

// connection is the context of the current connection (the runner's
// before the first).
func (r *Runner) connection() context.Context {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	if r.conn == nil {
		return r.ctx
	}
	return r.conn
}

func (r *Runner) enqueue(m outMsg) {
	select {
	case r.out <- m:
	default:
		r.dropped.Add(1)
	}
}

// PublishEvent sends an event (twin.Uplink).
func (r *Runner) PublishEvent(cabinet string, ev twin.Event) {
	data, err := twin.EncodeEvent(&ev)
	if err != nil {
		r.log.Error("cabinet produced an invalid event", "cabinet", cabinet, "err", err)
		return
	}
	r.enqueue(outMsg{topic: twin.CabinetTopic(r.cfg.Site, cabinet, twin.ChanEvt), payload: data})
}

// PublishState sends the reported state, retained (twin.Uplink).
func (r *Runner) PublishState(cabinet string, st twin.State) {
	data, err := twin.EncodeState(&st)
	if err != nil {
		r.log.Error("cabinet produced an invalid state", "cabinet", cabinet, "err", err)
		return
	}
	r.enqueue(outMsg{topic: twin.CabinetTopic(r.cfg.Site, cabinet, twin.ChanState), payload: data, retain: true})
}

// PublishStatus sends online/offline, retained (twin.Uplink).
func (r *Runner) PublishStatus(cabinet string, status string) {
	r.enqueue(outMsg{topic: twin.CabinetTopic(r.cfg.Site, cabinet, twin.ChanStatus), payload: []byte(status), retain: true})
}

// Connected reports whether the MQTT connection is up.
func (r *Runner) Connected() bool { return r.up.Load() }

// Stats returns the runner's counters.
func (r *Runner) Stats() Stats {
	return Stats{Published: r.published.Load(), PublishRetries: r.retries.Load(), CommandsReceived: r.received.Load(),
		CommandsInvalid: r.invalid.Load(), OutboxDropped: r.dropped.Load(), Connections: r.conns.Load()}
}

// Memory is the cabinet's non-volatile memory (twin.Cabinet.Memory), read
// on its goroutine while it runs and as it stopped once Close has returned:
// what a fleet saves to restart its cabinets where they were.
func (r *Runner) Memory() twin.Memory {
	got := make(chan twin.Memory, 1)
	select {
	case r.inbox <- func() { got <- r.cab.Memory() }:
		select {
		case m := <-got:
			return m
		case <-r.done: // it stopped first: nothing else touches the cabinet now
		}
	case <-r.done:
	}
	return r.cab.Memory()
}

// Drop cuts the connection without a DISCONNECT (the broker sends the
// will); autopaho reconnects by itself. For fault injection and tests.
func (r *Runner) Drop() { r.cm.TerminateConnectionForTest() }

// Close publishes offline, disconnects cleanly and stops the cabinet.
func (r *Runner) Close(ctx context.Context) error {
	if r.up.Load() {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, _ = r.cm.Publish(pctx, &paho.Publish{Topic: twin.CabinetTopic(r.cfg.Site, r.cfg.Cabinet, twin.ChanStatus),
			Payload: []byte(twin.StatusOffline), QoS: 1, Retain: true})
		cancel()
	}
	err := r.cm.Disconnect(ctx)
	r.stop()
	<-r.done
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
