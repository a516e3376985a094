// Package broker embeds an MQTT broker (mochi-mqtt, wrapped behind our own
// small type) with lockertwin's access control: every cabinet authenticates
// with its own credentials, may publish only its own evt/state/status topics
// and subscribe only to its own cmd topic, cannot take over another's
// session, and has its will forced to its own status topic. Everything not
// granted is denied.
//
// What it must never do: allow by default, match topics by prefix, or let a
// stale command reach a door (commands carry a message expiry and are never
// retained).
package broker

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/lockertwin/lockertwin/twin"
)

// Role is what an identity may do.
type Role uint8

const (
	// RoleCabinet: one cabinet; its own topics only.
	RoleCabinet Role = iota + 1
	// RoleController: a controller instance outside the broker's process;
	// it publishes commands to every cabinet and reads every cabinet's
	// events, state and status.
	RoleController
)

// Identity is an authenticated MQTT user.
type Identity struct {
	Username      string
	Role          Role
	Site, Cabinet string // for cabinets
}

// CabinetUsername is a cabinet's MQTT username and client id: "site.cabinet".
func CabinetUsername(site, cabinet string) string { return site + "." + cabinet }

type credential struct {
	id   Identity
	salt [16]byte
	hash [32]byte
}

// Credentials is the broker's user table. Secrets are stored only as salted
// SHA-256 digests. They are machine-generated 256-bit tokens, so a fast hash
// is enough: slow password hashing protects guessable passwords, and would
// cost seconds when thousands of cabinets reconnect at once.
type Credentials struct {
	mu    sync.RWMutex
	users map[string]credential
}

// NewCredentials returns an empty table.
func NewCredentials() *Credentials { return &Credentials{users: map[string]credential{}} }

func digest(salt [16]byte, secret string) [32]byte {
	h := sha256.New()
	h.Write(salt[:])
	h.Write([]byte(secret))
	return [32]byte(h.Sum(nil))
}

// NewSecret returns a fresh 256-bit secret, base64url-encoded.
func NewSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating a secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Set adds or replaces an identity with a secret.
func (c *Credentials) Set(id Identity, secret string) error {
	switch {
	case id.Username == "" || len(id.Username) > 128 || strings.ContainsAny(id.Username, "/+#"):
		return fmt.Errorf("broker: invalid username %q", id.Username)
	case len(secret) < 16:
		return fmt.Errorf("broker: secret for %s is shorter than 16 characters", id.Username)
	case id.Role == RoleCabinet && (!twin.ValidID(id.Site) || !twin.ValidID(id.Cabinet) || id.Username != CabinetUsername(id.Site, id.Cabinet)):
		return fmt.Errorf("broker: cabinet identity %q must be %q", id.Username, CabinetUsername(id.Site, id.Cabinet))
	case id.Role != RoleCabinet && id.Role != RoleController:
		return fmt.Errorf("broker: unknown role for %s", id.Username)
	}
	cr := credential{id: id}
	if _, err := rand.Read(cr.salt[:]); err != nil {
		return err
	}
	cr.hash = digest(cr.salt, secret)
	c.mu.Lock()
	c.users[id.Username] = cr
	c.mu.Unlock()
	return nil
}

// AddCabinet provisions a cabinet with a fresh secret and returns it.
func (c *Credentials) AddCabinet(site, cabinet string) (username, secret string, err error) {
	secret, err = NewSecret()
	if err != nil {
		return "", "", err
	}
	username = CabinetUsername(site, cabinet)
	return username, secret, c.Set(Identity{Username: username, Role: RoleCabinet, Site: site, Cabinet: cabinet}, secret)
}

// Check authenticates a username and password in constant time per user.
func (c *Credentials) Check(username string, password []byte) (Identity, bool) {
	c.mu.RLock()
	cr, ok := c.users[username]
	c.mu.RUnlock()
	if !ok {
		// Same work as a real check, so timing does not tell users apart.
		var zero [16]byte
		d := digest(zero, string(password))
		subtle.ConstantTimeCompare(d[:], d[:])
		return Identity{}, false
	}
	d := digest(cr.salt, string(password))
	if subtle.ConstantTimeCompare(d[:], cr.hash[:]) != 1 {
		return Identity{}, false
	}
	return cr.id, true
}

// Usernames lists the identities, sorted.
func (c *Credentials) Usernames() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, 0, len(c.users))
	for u := range c.users {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// Stored is a credential as kept on disk: the identity, salt and digest,
// never the secret.
type Stored struct {
	Identity Identity
	Salt     [16]byte
	Digest   [32]byte
}

// Export returns every credential, sorted by username, for persisting.
func (c *Credentials) Export() []Stored {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Stored, 0, len(c.users))
	for _, cr := range c.users {
		out = append(out, Stored{Identity: cr.id, Salt: cr.salt, Digest: cr.hash})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Identity.Username < out[j].Identity.Username })
	return out
}

// Import adds stored credentials (after a restart).
func (c *Credentials) Import(list []Stored) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range list {
		c.users[s.Identity.Username] = credential{id: s.Identity, salt: s.Salt, hash: s.Digest}
	}
}

// Has reports whether a username is provisioned.
func (c *Credentials) Has(username string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.users[username]
	return ok
}
