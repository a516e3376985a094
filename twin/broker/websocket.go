package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// wsListener serves MQTT over WebSocket (subprotocol "mqtt", binary
// frames). It replaces mochi's listeners.Websocket, which binds only when
// Serve runs in its goroutine: a port already in use was logged and the
// broker started anyway, with nothing listening, and ":0" never told its
// port. Here Init binds, so New fails on a bad address and Address is real.
type wsListener struct {
	id        string
	ln        net.Listener
	srv       *http.Server
	log       atomic.Pointer[slog.Logger]
	establish atomic.Pointer[listeners.EstablishFn]
	upgrader  websocket.Upgrader
	once      sync.Once

	// The WebSocket sessions being served, so that Close can end them and
	// wait: http.Server.Shutdown does not wait for hijacked connections,
	// and a session still being set up when mochi's Close runs adds to its
	// client WaitGroup while Close waits on it (a race the detector saw).
	mu       sync.Mutex
	closing  bool
	sessions map[*websocket.Conn]struct{}
	serving  sync.WaitGroup
}

var _ listeners.Listener = (*wsListener)(nil)

func newWSListener(id, addr string) (*wsListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	l := &wsListener{
		id: id, ln: ln, sessions: map[*websocket.Conn]struct{}{},
		upgrader: websocket.Upgrader{
			Subprotocols: []string{"mqtt"},
			// Cabinets and gateways are not browsers; who may do what is
			// decided by the MQTT credentials, not by the page's origin.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
	l.srv = &http.Server{Handler: http.HandlerFunc(l.serveWS), ReadHeaderTimeout: 10 * time.Second}
	return l, nil
}

func (l *wsListener) ID() string       { return l.id }
func (l *wsListener) Address() string  { return l.ln.Addr().String() }
func (l *wsListener) Protocol() string { return "ws" }

func (l *wsListener) Init(log *slog.Logger) error {
	l.log.Store(log)
	return nil
}

func (l *wsListener) serveWS(w http.ResponseWriter, r *http.Request) {
	establish := l.establish.Load()
	if establish == nil {
		http.Error(w, "broker not serving yet", http.StatusServiceUnavailable)
		return
	}
	c, err := l.upgrader.Upgrade(w, r, nil) // answers a non-WebSocket request with 400
	if err != nil {
		return
	}
	defer c.Close()
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return
	}
	l.sessions[c] = struct{}{}
	l.serving.Add(1)
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.sessions, c)
		l.mu.Unlock()
		l.serving.Done()
	}()
	c.SetReadLimit(maxWSMessage)
	if err := (*establish)(l.id, &wsConn{Conn: c.NetConn(), c: c}); err != nil {
		if log := l.log.Load(); log != nil {
			log.Debug("websocket client ended", "remote", c.RemoteAddr().String(), "error", err)
		}
	}
}

func (l *wsListener) Serve(establish listeners.EstablishFn) {
	l.establish.Store(&establish)
	if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		if log := l.log.Load(); log != nil {
			log.Error("websocket listener stopped", "error", err)
		}
	}
}

func (l *wsListener) Close(closeClients listeners.CloseFn) {
	l.once.Do(func() {
		l.mu.Lock()
		l.closing = true
		l.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.srv.Shutdown(ctx)
		_ = l.ln.Close()   // when Serve never ran
		closeClients(l.id) // once, as mochi's TCP listener does
		// Sessions not yet attached as clients (still reading CONNECT) are
		// not among them: end those too, and wait for every session to return.
		l.mu.Lock()
		for c := range l.sessions {
			_ = c.NetConn().Close()
		}
		l.mu.Unlock()
		l.serving.Wait()
	})
}

// maxWSMessage bounds one WebSocket message: an MQTT packet is at most the
// broker's maximum packet size, and clients send one packet per message or
// split them; nothing legitimate needs more.
const maxWSMessage = 1 << 20

// errTextFrame: MQTT over WebSocket is binary frames only (MQTT 5 §6).
var errTextFrame = errors.New("websocket: MQTT needs binary messages")

// wsConn presents a WebSocket as the byte stream mochi reads packets from.
// A packet may span messages and a message may hold several packets.
// gorilla allows one reader and one writer at a time; MQTT clients and
// servers write from several goroutines (publishes, acks), so writes take a
// lock (wm).
//
// mochi writes a packet in one Write. paho.golang writes one in several
// (its fixed header, then each part) and, beside a publish, its pinger
// writes PINGREQs: over a bare TCP connection a packet is one writev, but
// over anything else the two interleave unless the connection is a
// sync.Locker, which paho then holds for the whole packet. wsConn is one
// (pm), so a client on it sends whole packets; without it a PINGREQ landed
// inside a PUBLISH now and then, the broker read the payload "own" as
// "\xc0\x00o" and then dropped the connection on the malformed rest.
type wsConn struct {
	net.Conn
	c  *websocket.Conn
	r  io.Reader // the current message, nil between messages
	wm sync.Mutex
	pm sync.Mutex
}

var _ sync.Locker = (*wsConn)(nil)

// Lock is held by a writer across the Writes of one packet (paho.golang).
func (ws *wsConn) Lock() { ws.pm.Lock() }

// Unlock ends a packet's Writes.
func (ws *wsConn) Unlock() { ws.pm.Unlock() }

func (ws *wsConn) Read(p []byte) (int, error) {
	for {
		if ws.r == nil {
			op, r, err := ws.c.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, errTextFrame
			}
			ws.r = r
		}
		n, err := ws.r.Read(p)
		if errors.Is(err, io.EOF) {
			ws.r = nil
			err = nil
			if n == 0 {
				continue // an empty or finished message: read the next one
			}
		}
		return n, err
	}
}

func (ws *wsConn) Write(p []byte) (int, error) {
	ws.wm.Lock()
	defer ws.wm.Unlock()
	if err := ws.c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Deadlines go to the underlying connection (Conn): gorilla's own setters
// are not safe beside a running read or write.
