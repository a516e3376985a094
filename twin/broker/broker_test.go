package broker

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/lockertwin/lockertwin/twin"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const waitFor = 3 * time.Second

// observer records every message the broker routes, through an in-process
// subscription (which the ACL does not apply to).
type observer struct {
	mu  sync.Mutex
	got map[string][]string
	ch  chan [2]string
}

func watch(t *testing.T, b *Broker) *observer {
	o := &observer{got: map[string][]string{}, ch: make(chan [2]string, 1024)}
	_, err := b.Subscribe("#", func(topic string, payload []byte) {
		o.mu.Lock()
		o.got[topic] = append(o.got[topic], string(payload))
		o.mu.Unlock()
		select { // never block the broker: a benchmark does not read the channel
		case o.ch <- [2]string{topic, string(payload)}:
		default:
		}
	})
	require.NoError(t, err)
	return o
}

// until waits for a message on topic with payload, skipping others.
func (o *observer) until(t *testing.T, topic, payload string) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case m := <-o.ch:
			if m[0] == topic && m[1] == payload {
				return
			}
		case <-deadline:
			t.Fatalf("no %q on %s", payload, topic)
		}
	}
}

func (o *observer) saw(topic, payload string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range o.got[topic] {
		if p == payload {
			return true
		}
	}
	return false
}

type client struct {
	*paho.Client
	conn  net.Conn
	inbox chan *paho.Publish
}

func connect(t *testing.T, addr, clientID, user, pass string, will *paho.WillMessage) (*client, error) {
	return connectWindow(t, addr, clientID, user, pass, will, 64)
}

// connectWindow connects with a given MQTT 5 Receive Maximum.
func connectWindow(t *testing.T, addr, clientID, user, pass string, will *paho.WillMessage, recvMax uint16) (*client, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	inbox := make(chan *paho.Publish, 4096)
	c := paho.NewClient(paho.ClientConfig{ClientID: clientID, Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(r paho.PublishReceived) (bool, error) {
			inbox <- r.Packet
			return true, nil
		}}})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	// Set explicitly: paho otherwise allocates a 512 KiB window per client.
	cp := &paho.Connect{ClientID: clientID, KeepAlive: 30, CleanStart: true, WillMessage: will,
		Properties: &paho.ConnectProperties{ReceiveMaximum: &recvMax}}
	if user != "" {
		cp.Username, cp.UsernameFlag = user, true
		cp.Password, cp.PasswordFlag = []byte(pass), true
	}
	ack, err := c.Connect(ctx, cp)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if ack.ReasonCode != 0 {
		conn.Close()
		return nil, &net.OpError{Op: "connect", Err: errRefused(ack.ReasonCode)}
	}
	cl := &client{Client: c, conn: conn, inbox: inbox}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}); conn.Close() })
	return cl, nil
}

type errRefused byte

func (e errRefused) Error() string { return "refused" }

func (c *client) publish(t *testing.T, topic, payload string, qos byte, retain bool) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	resp, err := c.Publish(ctx, &paho.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain})
	if resp != nil {
		return resp.ReasonCode // paho also returns an error for a refusal
	}
	require.NoError(t, err)
	return 0
}

func (c *client) subscribe(t *testing.T, filter string) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ack, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	if ack != nil && len(ack.Reasons) == 1 {
		return ack.Reasons[0] // paho also returns an error for a refusal
	}
	require.NoError(t, err)
	return 0xff
}

type fixture struct {
	b                 *Broker
	obs               *observer
	secretA, secretB  string
	ctrlUser, ctrlKey string
}

func newFixture(t *testing.T) *fixture {
	creds := NewCredentials()
	_, a, err := creds.AddCabinet("lobby", "a1")
	require.NoError(t, err)
	_, bsec, err := creds.AddCabinet("lobby", "a2")
	require.NoError(t, err)
	key, err := NewSecret()
	require.NoError(t, err)
	require.NoError(t, creds.Set(Identity{Username: "controller", Role: RoleController}, key))
	b, err := New(Config{TCPAddr: "127.0.0.1:0", Credentials: creds})
	require.NoError(t, err)
	require.NoError(t, b.Start())
	t.Cleanup(func() { b.Close() })
	return &fixture{b: b, obs: watch(t, b), secretA: a, secretB: bsec, ctrlUser: "controller", ctrlKey: key}
}

var (
	aEvt, aState, aStatus, aCmd = twin.CabinetTopic("lobby", "a1", twin.ChanEvt), twin.CabinetTopic("lobby", "a1", twin.ChanState),
		twin.CabinetTopic("lobby", "a1", twin.ChanStatus), twin.CabinetTopic("lobby", "a1", twin.ChanCmd)
	bEvt, bState, bStatus, bCmd = twin.CabinetTopic("lobby", "a2", twin.ChanEvt), twin.CabinetTopic("lobby", "a2", twin.ChanState),
		twin.CabinetTopic("lobby", "a2", twin.ChanStatus), twin.CabinetTopic("lobby", "a2", twin.ChanCmd)
)

// TestPermissionMatrix asserts every cell: identities × actions × topics,
// against the real embedded broker on loopback.
func TestPermissionMatrix(t *testing.T) {
	f := newFixture(t)
	addr := f.b.Addr()

	t.Run("connect", func(t *testing.T) {
		tests := []struct {
			name, clientID, user, pass string
			ok                         bool
		}{
			{"cabinet A", "lobby.a1", "lobby.a1", f.secretA, true},
			{"cabinet B", "lobby.a2", "lobby.a2", f.secretB, true},
			{"controller", "controller", "controller", f.ctrlKey, true},
			{"anonymous", "anon", "", "", false},
			{"wrong password", "lobby.a1", "lobby.a1", f.secretB, false},
			{"unknown user", "lobby.a9", "lobby.a9", f.secretA, false},
			{"B resuming A's session", "lobby.a1", "lobby.a2", f.secretB, false},
			{"A under another client id", "free-id", "lobby.a1", f.secretA, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := connect(t, addr, tt.clientID, tt.user, tt.pass, nil)
				if tt.ok {
					require.NoError(t, err)
				} else {
					require.Error(t, err)
				}
			})
		}
	})

	a, err := connect(t, addr, "lobby.a1", "lobby.a1", f.secretA, nil)
	require.NoError(t, err)
	b, err := connect(t, addr, "lobby.a2", "lobby.a2", f.secretB, nil)
	require.NoError(t, err)
	ctrl, err := connect(t, addr, "controller", "controller", f.ctrlKey, nil)
	require.NoError(t, err)
	ids := map[string]*client{"A": a, "B": b, "controller": ctrl}
	sentinel := map[string]string{"A": aEvt, "B": bEvt, "controller": aCmd}

	t.Run("publish", func(t *testing.T) {
		topics := []string{aEvt, aState, aStatus, aCmd, bEvt, bState, bStatus, bCmd,
			"lockers/v1/lobby/a1", "lockers/v1/lobby/a1/evt/extra", "lockers/v1/other/a1/evt", "elsewhere"}
		allowed := map[string][]string{
			"A":          {aEvt, aState, aStatus},
			"B":          {bEvt, bState, bStatus},
			"controller": {aCmd, bCmd},
		}
		n := 0
		for _, who := range []string{"A", "B", "controller"} {
			for _, topic := range topics {
				n++
				payload := who + "→" + topic + "#" + itoa(n)
				want := contains(allowed[who], topic)
				t.Run(who+" "+topic, func(t *testing.T) {
					code := ids[who].publish(t, topic, payload, 1, false)
					// A sentinel from the same client orders after it.
					mark := "sentinel-" + itoa(n)
					require.Zero(t, ids[who].publish(t, sentinel[who], mark, 1, false))
					f.obs.until(t, sentinel[who], mark)
					require.Equal(t, want, f.obs.saw(topic, payload))
					if !want {
						require.Equal(t, byte(0x87), code, "MQTT 5: not authorized")
					}
				})
			}
		}
	})

	t.Run("subscribe", func(t *testing.T) {
		filters := []string{aCmd, bCmd, aEvt, bEvt, aState, aStatus, "lockers/v1/#", "#", "lockers/v1/lobby/+/cmd",
			"lockers/v1/+/+/evt", "lockers/v1/+/+/state", "lockers/v1/+/+/status", "lockers/v1/lobby/a1/+", "$SYS/#"}
		allowed := map[string][]string{
			"A":          {aCmd},
			"B":          {bCmd},
			"controller": {aEvt, bEvt, aState, aStatus, "lockers/v1/+/+/evt", "lockers/v1/+/+/state", "lockers/v1/+/+/status"},
		}
		for _, who := range []string{"A", "B", "controller"} {
			for _, filter := range filters {
				t.Run(who+" "+filter, func(t *testing.T) {
					code := ids[who].subscribe(t, filter)
					if contains(allowed[who], filter) {
						require.Less(t, code, byte(0x80), "granted")
					} else {
						require.GreaterOrEqual(t, code, byte(0x80), "refused")
					}
				})
			}
		}
	})

	t.Run("a cabinet receives only its own commands", func(t *testing.T) {
		require.Zero(t, ctrl.publish(t, bCmd, "for B", 1, false))
		require.Zero(t, ctrl.publish(t, aCmd, "for A", 1, false))
		select {
		case m := <-a.inbox:
			require.Equal(t, aCmd, m.Topic)
			require.Equal(t, "for A", string(m.Payload))
		case <-time.After(waitFor):
			t.Fatal("A got nothing")
		}
		select {
		case m := <-b.inbox:
			require.Equal(t, "for B", string(m.Payload))
		case <-time.After(waitFor):
			t.Fatal("B got nothing")
		}
	})

	t.Run("retained", func(t *testing.T) {
		require.Zero(t, a.publish(t, aState, "state-v7", 1, true))
		f.obs.until(t, aState, "state-v7")
		reader, err := connect(t, addr, "controller", "controller", f.ctrlKey, nil)
		require.NoError(t, err)
		require.Less(t, reader.subscribe(t, aState), byte(0x80))
		select {
		case m := <-reader.inbox:
			require.Equal(t, "state-v7", string(m.Payload), "a retained state reaches a late subscriber")
		case <-time.After(waitFor):
			t.Fatal("no retained state")
		}
		// A retained command is refused, even from the controller.
		require.Equal(t, byte(0x87), reader.publish(t, aCmd, "retained-open", 1, true))
		require.Error(t, f.b.Publish(aCmd, []byte("inline-retained-open"), true, time.Minute))
		late, err := connect(t, addr, "lobby.a1", "lobby.a1", f.secretA, nil)
		require.NoError(t, err)
		require.Less(t, late.subscribe(t, aCmd), byte(0x80))
		// (reader took over the controller's session: same identity, same id.)
		require.Zero(t, reader.publish(t, aCmd, "after", 1, false))
		select {
		case m := <-late.inbox:
			require.Equal(t, "after", string(m.Payload), "no retained command was waiting")
		case <-time.After(waitFor):
			t.Fatal("the session that took over receives nothing")
		}
		require.False(t, f.obs.saw(aCmd, "retained-open"))
		require.False(t, f.obs.saw(aCmd, "inline-retained-open"))
	})

	t.Run("will forced to the cabinet's own status", func(t *testing.T) {
		will := &paho.WillMessage{Topic: bStatus, Payload: []byte("online"), QoS: 1, Retain: true}
		c, err := connect(t, addr, "lobby.a1", "lobby.a1", f.secretA, will)
		require.NoError(t, err)
		c.conn.Close() // dies without a DISCONNECT: the will is sent
		f.obs.until(t, aStatus, twin.StatusOffline)
		require.False(t, f.obs.saw(bStatus, "online"), "A cannot speak for B through its will")
	})

	require.Positive(t, f.b.Stats().Denied)
}

func TestInlinePublishAndExpiry(t *testing.T) {
	f := newFixture(t)
	a, err := connect(t, f.b.Addr(), "lobby.a1", "lobby.a1", f.secretA, nil)
	require.NoError(t, err)
	require.Less(t, a.subscribe(t, aCmd), byte(0x80))
	require.NoError(t, f.b.Publish(aCmd, []byte("open 3"), false, 60*time.Second))
	select {
	case m := <-a.inbox:
		require.Equal(t, "open 3", string(m.Payload))
		require.Equal(t, byte(0), m.QoS, "granted at QoS 0: see OnSubscribe")
		require.NotNil(t, m.Properties)
		require.NotNil(t, m.Properties.MessageExpiry, "the command's expiry travels with it")
		require.LessOrEqual(t, *m.Properties.MessageExpiry, uint32(60))
	case <-time.After(waitFor):
		t.Fatal("nothing delivered")
	}
	unsubscribe, err := f.b.Subscribe(aEvt, func(string, []byte) {})
	require.NoError(t, err)
	unsubscribe()
	_, err = f.b.Subscribe("bad/#/filter", func(string, []byte) {})
	require.Error(t, err)
}

func TestCredentials(t *testing.T) {
	c := NewCredentials()
	user, secret, err := c.AddCabinet("lobby", "a1")
	require.NoError(t, err)
	require.Equal(t, "lobby.a1", user)
	id, ok := c.Check(user, []byte(secret))
	require.True(t, ok)
	require.Equal(t, Identity{Username: user, Role: RoleCabinet, Site: "lobby", Cabinet: "a1"}, id)
	_, ok = c.Check(user, []byte(secret+"x"))
	require.False(t, ok)
	_, ok = c.Check("nobody", []byte(secret))
	require.False(t, ok)
	for _, bad := range []Identity{
		{Username: "", Role: RoleController},
		{Username: "a/b", Role: RoleController},
		{Username: "lobby.a1", Role: RoleCabinet, Site: "lobby", Cabinet: "a2"},
		{Username: "x", Role: 9},
	} {
		require.Error(t, c.Set(bad, "0123456789abcdef"))
	}
	require.Error(t, c.Set(Identity{Username: "ctl", Role: RoleController}, "short"))
	require.Equal(t, []string{"lobby.a1"}, c.Usernames())
	_, err = New(Config{})
	require.Error(t, err, "no credentials, no broker")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func itoa(n int) string {
	const digits = "0123456789"
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{digits[n%10]}, b...)
	}
	return string(b)
}

// TestNoDeadlockUnderCommandBurst: before subscriptions were granted at
// QoS 0, a burst of QoS 1 commands to a cabinet acking them deadlocked
// mochi's inflight lock after a few thousand messages (see OnSubscribe).
func TestNoDeadlockUnderCommandBurst(t *testing.T) {
	f := newFixture(t)
	a, err := connect(t, f.b.Addr(), "lobby.a1", "lobby.a1", f.secretA, nil)
	require.NoError(t, err)
	require.Less(t, a.subscribe(t, aCmd), byte(0x80))
	const n = 20000
	done := make(chan struct{})
	go func() {
		for i := 0; i < n; i++ {
			<-a.inbox
		}
		close(done)
	}()
	published := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := f.b.Publish(aCmd, []byte("open"), false, time.Minute); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	select {
	case err := <-published:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("publishing blocked: the broker is deadlocked")
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("delivery stalled; dropped %d", f.b.Stats().MessagesDropped)
	}
}

func TestCredentialsExportImport(t *testing.T) {
	a := NewCredentials()
	user, secret, err := a.AddCabinet("lobby", "a1")
	require.NoError(t, err)
	b := NewCredentials()
	b.Import(a.Export())
	require.True(t, b.Has(user))
	_, ok := b.Check(user, []byte(secret))
	require.True(t, ok, "a restarted broker still admits the cabinet")
	for _, s := range a.Export() {
		require.NotContains(t, string(s.Digest[:]), secret)
	}
}

// TestTakenOverSessionsWillIsNotTheLastWord: a cabinet that reconnects
// before the broker noticed its old connection die takes its session over;
// the old session's will must never land after the new "online", or the
// controller takes a connected cabinet for offline. Without the fix this
// failed within a few rounds.
func TestTakenOverSessionsWillIsNotTheLastWord(t *testing.T) {
	f := newFixture(t)
	will := &paho.WillMessage{Topic: aStatus, Payload: []byte(twin.StatusOffline), QoS: 1, Retain: true}
	prev, err := connect(t, f.b.Addr(), "lobby.a1", "lobby.a1", f.secretA, will)
	require.NoError(t, err)
	const rounds = 10
	checked := 0
	for i := 1; i <= rounds; i++ {
		next, err := connect(t, f.b.Addr(), "lobby.a1", "lobby.a1", f.secretA, will) // takes prev's session over
		require.NoError(t, err)
		require.Zero(t, next.publish(t, aStatus, twin.StatusOnline, 1, true))
		f.obs.until(t, aStatus, twin.StatusOnline)
		// Once the old connection's OnDisconnect ran (after its will, if
		// mochi sends one), nothing of it can arrive any more.
		ended := assert.Eventually(noT{}, func() bool {
			f.b.hook.mu.RLock()
			defer f.b.hook.mu.RUnlock()
			return len(f.b.hook.conns) == 1
		}, time.Second, time.Millisecond)
		if ended {
			checked++
			f.obs.mu.Lock()
			statuses := append([]string(nil), f.obs.got[aStatus]...)
			f.obs.mu.Unlock()
			require.Equal(t, twin.StatusOnline, statuses[len(statuses)-1], "round %d: after %v", i, statuses)
		}
		prev.conn.Close()
		prev = next
	}
	require.Positive(t, checked, "some takeover ends the old session within a second (all do on an idle machine)")
	t.Logf("%d takeovers (%d checked): %d wills sent, %d of them stale and not delivered",
		rounds, checked, f.b.Stats().Wills, f.b.Stats().StaleWills)
}

// noT swallows a failed poll: a round whose old session outlives the wait
// is not checked rather than failed.
type noT struct{}

func (noT) Errorf(string, ...any) {}

// TestStaleWillIsRecognised: the mechanism itself, without timing. A will
// (mochi publishes it with the old client's id as origin) stamped with a
// superseded connection's serial is stale; one of the current connection,
// or any message without a stamp, is not.
func TestStaleWillIsRecognised(t *testing.T) {
	f := newFixture(t)
	f.b.hook.mu.Lock()
	f.b.hook.current["lobby.a2"] = 7
	f.b.hook.mu.Unlock()
	will := func(serial string) *packets.Packet {
		pk := &packets.Packet{TopicName: bStatus, Payload: []byte(twin.StatusOffline), Origin: "lobby.a2"}
		if serial != "" {
			pk.Properties.User = []packets.UserProperty{{Key: "other", Val: "x"}, {Key: connKey, Val: serial}}
		}
		return pk
	}
	tests := []struct {
		serial string
		stale  bool
	}{{"6", true}, {"7", false}, {"", false}, {"not-a-number", false}}
	for _, tt := range tests {
		require.Equal(t, tt.stale, f.b.hook.stale(will(tt.serial)), "serial %q", tt.serial)
	}
}

// TestCloseWhileClientsLeave: closing the broker while clients disconnect
// on their own used to deadlock inside mochi (a recursive read lock behind
// a waiting writer; seen once in CI). Each round connects clients, lets half
// of them leave, each on its own goroutine, as the broker closes, and
// requires Close to return. The window is narrow: this guards the fix
// rather than reproducing the race on every run.
func TestCloseWhileClientsLeave(t *testing.T) {
	const clients = 32
	for round := range 20 {
		creds := NewCredentials()
		secrets := map[string]string{}
		for i := range clients {
			name := "c" + itoa(i)
			_, sec, err := creds.AddCabinet("lobby", name)
			require.NoError(t, err)
			secrets[name] = sec
		}
		b, err := New(Config{TCPAddr: "127.0.0.1:0", Credentials: creds})
		require.NoError(t, err)
		require.NoError(t, b.Start())
		var leaving []*client
		for i := range clients {
			name := "c" + itoa(i)
			c, err := connect(t, b.Addr(), "lobby."+name, "lobby."+name, secrets[name], nil)
			require.NoError(t, err)
			if i%2 == 0 {
				leaving = append(leaving, c)
			}
		}
		closed := make(chan error, 1)
		for _, c := range leaving {
			go func() {
				_ = c.Disconnect(&paho.Disconnect{})
				c.conn.Close()
			}()
		}
		go func() { closed <- b.Close() }()
		select {
		case err := <-closed:
			require.NoError(t, err, "round %d", round)
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: Close deadlocked with clients leaving", round)
		}
	}
}
