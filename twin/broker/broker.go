package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/lockertwin/lockertwin/twin"
)

// Config configures the embedded broker.
type Config struct {
	// TCPAddr is the MQTT listener, e.g. "127.0.0.1:1883" or ":0" for any port.
	TCPAddr string
	// WSAddr, when set, adds a WebSocket listener (browsers, some gateways).
	WSAddr      string
	Credentials *Credentials
	Logger      *slog.Logger
	// MaxWritesPending bounds each client's outbound queue. mochi drops a
	// message for a client whose queue is full and only counts it; the
	// default 8,192 dropped bursts in our probes, so we raise it to 65,536.
	MaxWritesPending int32
	// MaxMessageExpiry caps how long any message may wait for a subscriber
	// (retained states included); default 24 h.
	MaxMessageExpiry time.Duration
}

// Broker is lockertwin's embedded MQTT broker.
type Broker struct {
	cfg    Config
	srv    *mqtt.Server
	tcp    *listeners.TCP
	ws     *wsListener
	inline *mqtt.Client
	hook   *aclHook
	subID  atomic.Int32
	closed atomic.Bool
}

// Stats are the broker's counters.
type Stats struct {
	ClientsConnected int64
	MessagesReceived int64
	MessagesSent     int64
	MessagesDropped  int64
	Denied           int64 // connections, publishes and subscriptions refused by the ACL
	Wills            int64 // last wills handled (cabinets that vanished)
	StaleWills       int64 // of those, wills of sessions already taken over: not delivered
}

// New builds a broker; Start listens.
func New(cfg Config) (*Broker, error) {
	if cfg.Credentials == nil {
		return nil, errors.New("broker: no credentials: the broker denies by default and would admit nobody")
	}
	if cfg.TCPAddr == "" {
		cfg.TCPAddr = "127.0.0.1:0"
	}
	if cfg.MaxWritesPending <= 0 {
		cfg.MaxWritesPending = 65536
	}
	if cfg.MaxMessageExpiry <= 0 {
		cfg.MaxMessageExpiry = 24 * time.Hour
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumClientWritesPending = cfg.MaxWritesPending
	caps.MaximumMessageExpiryInterval = int64(cfg.MaxMessageExpiry / time.Second)
	caps.MaximumSessionExpiryInterval = 3600
	caps.MaximumPacketSize = twin.MaxPayloadBytes + 1024
	srv := mqtt.New(&mqtt.Options{
		Capabilities: caps, InlineClient: true, Logger: logger,
		ClientNetWriteBufferSize: 64 << 10, ClientNetReadBufferSize: 64 << 10,
	})
	b := &Broker{cfg: cfg, srv: srv, hook: &aclHook{srv: srv, creds: cfg.Credentials, ids: map[string]Identity{},
		conns: map[*mqtt.Client]uint64{}, current: map[string]uint64{}}}
	// Ours is the only auth hook: mochi ORs hooks, so an allow-all hook
	// beside it would open everything.
	if err := srv.AddHook(b.hook, nil); err != nil {
		return nil, err
	}
	b.tcp = listeners.NewTCP(listeners.Config{ID: "tcp", Address: cfg.TCPAddr})
	if err := srv.AddListener(b.tcp); err != nil {
		return nil, fmt.Errorf("broker: listening on %s: %w", cfg.TCPAddr, err)
	}
	if cfg.WSAddr != "" {
		ws, err := newWSListener("ws", cfg.WSAddr)
		if err != nil {
			b.tcp.Close(func(string) {}) // bound already: give the port back
			return nil, fmt.Errorf("broker: websocket on %s: %w", cfg.WSAddr, err)
		}
		b.ws = ws
		if err := srv.AddListener(b.ws); err != nil {
			return nil, fmt.Errorf("broker: websocket on %s: %w", cfg.WSAddr, err)
		}
	}
	b.inline = srv.NewClient(nil, "local", "lockerd-inline", true)
	return b, nil
}

// Start serves the listeners in the background.
func (b *Broker) Start() error { return b.srv.Serve() }

// Addr is the TCP listener's address (the real port when configured with :0).
func (b *Broker) Addr() string { return b.tcp.Address() }

// WSAddr is the WebSocket listener's address (the real port when
// configured with :0), or "".
func (b *Broker) WSAddr() string {
	if b.ws == nil {
		return ""
	}
	return b.ws.Address()
}

// Close disconnects everyone and stops the listeners.
//
// mochi's own Close disconnects each listener's clients through
// Clients.GetByListener, which takes the client map's read lock twice (it
// calls Len inside). A client detaching at that moment waits for the write
// lock, and Go's RWMutex then blocks the second read lock behind it: both
// wait for ever (seen in CI). So the listeners are closed first with a
// closer that reads the map once; mochi's Close then finds them closed.
// (Each is closed directly: Listeners.CloseAll would also wait on mochi's
// client WaitGroup, which a connection still being accepted may be adding
// to, a race the detector reports.)
func (b *Broker) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.tcp.Close(b.disconnectListenerClients)
	if b.ws != nil {
		b.ws.Close(b.disconnectListenerClients)
	}
	return b.srv.Close()
}

// disconnectListenerClients disconnects the clients of one listener.
func (b *Broker) disconnectListenerClients(listener string) {
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Listener == listener && !cl.Closed() {
			_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}
	}
}

// Publish sends a message as the broker's own (in-process) client at QoS 1.
// expiry > 0 sets the MQTT 5 message expiry: a command not delivered in time
// is dropped by the broker rather than delivered late.
func (b *Broker) Publish(topic string, payload []byte, retain bool, expiry time.Duration) error {
	if retain && isCommandTopic(topic) {
		return fmt.Errorf("broker: refusing a retained command on %s", topic)
	}
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: retain},
		TopicName:   topic,
		Payload:     payload,
		PacketID:    1, // the inline client's inbound QoS is not processed; validity needs an id
	}
	if expiry > 0 {
		pk.Properties.MessageExpiryInterval = uint32((expiry + time.Second - 1) / time.Second)
	}
	return b.srv.InjectPacket(b.inline, pk)
}

// Subscribe delivers messages matching filter to handler, in-process. The
// returned function unsubscribes.
func (b *Broker) Subscribe(filter string, handler func(topic string, payload []byte)) (func(), error) {
	id := int(b.subID.Add(1))
	err := b.srv.Subscribe(filter, id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		if b.hook.stale(&pk) {
			b.hook.staleWills.Add(1)
			return
		}
		handler(pk.TopicName, pk.Payload)
	})
	if err != nil {
		return nil, err
	}
	return func() { _ = b.srv.Unsubscribe(filter, id) }, nil
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	info := b.srv.Info
	return Stats{
		ClientsConnected: atomic.LoadInt64(&info.ClientsConnected),
		MessagesReceived: atomic.LoadInt64(&info.MessagesReceived),
		MessagesSent:     atomic.LoadInt64(&info.MessagesSent),
		MessagesDropped:  atomic.LoadInt64(&info.MessagesDropped),
		Denied:           b.hook.denied.Load(),
		Wills:            b.hook.wills.Load(),
		StaleWills:       b.hook.staleWills.Load(),
	}
}

// aclHook is lockertwin's deny-by-default authentication and ACL.
type aclHook struct {
	mqtt.HookBase
	srv    *mqtt.Server
	creds  *Credentials
	mu     sync.RWMutex
	ids    map[string]Identity // client id → authenticated identity
	denied atomic.Int64
	// wills counts wills handled; staleWills those not delivered because
	// their session had been taken over.
	wills, staleWills atomic.Int64
	// Each authenticated connection gets a serial; current is the latest
	// per client id, conns the serial of each live connection.
	serial  atomic.Uint64
	conns   map[*mqtt.Client]uint64
	current map[string]uint64
}

// connKey is the user property a will carries: its connection's serial.
const connKey = "lockertwin-conn"

// stale reports whether pk is the will of a connection that a newer
// connection under the same client id has replaced.
func (h *aclHook) stale(pk *packets.Packet) bool {
	for _, u := range pk.Properties.User {
		if u.Key != connKey {
			continue
		}
		n, err := strconv.ParseUint(u.Val, 10, 64)
		h.mu.RLock()
		cur := h.current[pk.Origin]
		h.mu.RUnlock()
		return err == nil && n != cur
	}
	return false
}

func (h *aclHook) ID() string { return "lockertwin-acl" }

func (h *aclHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnSessionEstablish, mqtt.OnACLCheck, mqtt.OnWill, mqtt.OnPublish, mqtt.OnSubscribe, mqtt.OnDisconnect}, []byte{b})
}

func (h *aclHook) deny() bool {
	h.denied.Add(1)
	return false
}

// OnConnectAuthenticate admits a client whose credentials check out and
// whose client id is its username: so no identity can resume, or take over,
// another's session (mochi #398).
func (h *aclHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if cl.Net.Inline {
		return true
	}
	if !pk.Connect.UsernameFlag || !pk.Connect.PasswordFlag {
		return h.deny()
	}
	id, ok := h.creds.Check(string(pk.Connect.Username), pk.Connect.Password)
	if !ok || cl.ID != id.Username {
		return h.deny()
	}
	n := h.serial.Add(1)
	h.mu.Lock()
	h.ids[cl.ID] = id
	h.conns[cl] = n
	h.current[cl.ID] = n
	h.mu.Unlock()
	return true
}

func (h *aclHook) identity(cl *mqtt.Client) (Identity, bool) {
	h.mu.RLock()
	id, ok := h.ids[cl.ID]
	h.mu.RUnlock()
	return id, ok && string(cl.Properties.Username) == id.Username
}

// OnACLCheck grants exact topics only: a cabinet publishes to its own evt,
// state and status and subscribes to its own cmd; a controller publishes
// commands and reads events, states and statuses. No prefix matching, no
// '#' for anyone.
func (h *aclHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	id, ok := h.identity(cl)
	if !ok {
		return h.deny()
	}
	switch id.Role {
	case RoleCabinet:
		if write {
			for _, ch := range []twin.Channel{twin.ChanEvt, twin.ChanState, twin.ChanStatus} {
				if topic == twin.CabinetTopic(id.Site, id.Cabinet, ch) {
					return true
				}
			}
			return h.deny()
		}
		if topic == twin.CabinetTopic(id.Site, id.Cabinet, twin.ChanCmd) {
			return true
		}
		return h.deny()
	case RoleController:
		if write {
			if t, err := twin.ParseTopic(topic); err == nil && t.Channel == twin.ChanCmd {
				return true
			}
			return h.deny()
		}
		if controllerFilter(topic) {
			return true
		}
		return h.deny()
	}
	return h.deny()
}

// controllerFilter admits lockers/v1/{site|+}/{cabinet|+}/{evt|state|status}.
func controllerFilter(f string) bool {
	rest, ok := strings.CutPrefix(f, twin.TopicPrefix)
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts[:2] {
		if p != "+" && !twin.ValidID(p) {
			return false
		}
	}
	switch twin.Channel(parts[2]) {
	case twin.ChanEvt, twin.ChanState, twin.ChanStatus:
		return true
	}
	return false
}

// OnWill forces a cabinet's will to its own status topic, retained
// "offline": wills bypass mochi's ACL (mochi #503), so whatever a client
// asked for is replaced.
//
// The will carries its connection's serial. When a cabinet reconnects
// before the broker noticed its old connection die, mochi closes the old
// one and sends its will from the old connection's goroutine, which may
// run after the new session published "online". The new connection is
// authenticated (and becomes current) before that, so Subscribe's
// handlers never see a will whose serial is not current: the controller
// does not take a connected cabinet for offline. (The retained copy for
// outside subscribers may still end "offline" until the cabinet next
// publishes its status; mochi offers no hook to stop it.)
func (h *aclHook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	h.wills.Add(1)
	id, ok := h.identity(cl)
	h.mu.RLock()
	n := h.conns[cl]
	h.mu.RUnlock()
	will.User = append(will.User[:0:0], packets.UserProperty{Key: connKey, Val: strconv.FormatUint(n, 10)})
	if !ok {
		will.TopicName, will.Payload, will.Retain = "lockertwin/void", nil, false
		return will, nil
	}
	switch id.Role {
	case RoleCabinet:
		will.TopicName = twin.CabinetTopic(id.Site, id.Cabinet, twin.ChanStatus)
	default:
		will.TopicName = "lockertwin/controllers/" + id.Username + "/status"
	}
	will.Payload, will.Retain, will.Qos = []byte(twin.StatusOffline), true, 1
	return will, nil
}

// OnDisconnect forgets a connection's serial (its will, if any, is sent).
// takeoverWait bounds how long a reconnecting client waits for its
// previous connection to be gone (its socket is closed at once; this is the
// time for that connection's goroutine to tidy up).
const takeoverWait = 2 * time.Second

// OnSessionEstablish completes a takeover before mochi's own. When a client
// id reconnects while its old connection is alive, mochi disconnects the old
// one and adds the new one to its client map, while the old connection's
// goroutine, unless it has already seen the takeover, deletes the map entry
// under that id on its way out: the new client's, sometimes. The new
// session then receives nothing (its subscriptions stand, but delivery finds
// no client) until it reconnects. So for a session that ends with its
// connection (clean, no expiry: every lockertwin client), the old connection
// is disconnected here and its tidying up awaited, and mochi finds no one to
// take over.
func (h *aclHook) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	if cl.Net.Inline {
		return
	}
	old, ok := h.srv.Clients.Get(cl.ID)
	if !ok || old == cl {
		return
	}
	p := &old.Properties
	if !(p.ProtocolVersion == 5 && p.Props.SessionExpiryInterval == 0 || p.ProtocolVersion < 5 && p.Clean) {
		return // a lasting session: mochi hands it over, and keeps the entry
	}
	_ = h.srv.DisconnectClient(old, packets.ErrSessionTakenOver)
	for deadline := time.Now().Add(takeoverWait); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cur, ok := h.srv.Clients.Get(cl.ID); !ok || cur != old {
			return
		}
	}
}

func (h *aclHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.mu.Lock()
	delete(h.conns, cl)
	h.mu.Unlock()
}

// OnSubscribe grants every subscription at QoS 0. mochi v2.7.9 (and 2.6.6)
// can deadlock on a client's outbound QoS 1 window: Inflight.NextImmediate
// takes the read lock and calls GetAll, which takes it again; a publisher
// waiting in Inflight.Set between the two blocks both for ever (the same
// recursive-RLock pattern as mochi #488). QoS 0 outbound never touches that
// map. Nothing is lost by it: commands are acknowledged by the cabinet and
// retried by the controller (at least once), and executed once per id.
// Publishes into the broker stay QoS 1.
func (h *aclHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	for i := range pk.Filters {
		pk.Filters[i].Qos = 0
	}
	return pk
}

func isCommandTopic(topic string) bool { return strings.HasSuffix(topic, "/"+string(twin.ChanCmd)) }

// OnPublish refuses retained commands from anyone: a retained "open" would
// reach a cabinet that reconnects later. An MQTT 5 client gets "not
// authorised" in its PUBACK; any other publish of it is dropped (mochi would
// route a packet whose hook error is anything else).
func (h *aclHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Retain && isCommandTopic(pk.TopicName) {
		h.denied.Add(1)
		if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos > 0 {
			return pk, packets.ErrNotAuthorized
		}
		return pk, packets.ErrRejectPacket
	}
	return pk, nil
}
