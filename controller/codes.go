package controller

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lockertwin/lockertwin/internal/digest"
	"github.com/lockertwin/lockertwin/twin"
)

// Pickup codes.
//
// Format: 12 decimal digits, a number n in [0, 10^12) that names its
// compartment: n mod 512 is the compartment's slot in its cabinet minus
// one (twin.MaxCompartments is 512), and n div 512, the secret, is drawn
// uniformly from [0, 10^12 / 512) = [0, 1,953,125,000) with the injected
// randomness. A keypad shows them as three groups of four. A compartment
// holds one parcel and a parcel at most one live code, so the codes live at
// a cabinet are unique by construction, and a typed code leads to the one
// parcel it can open without an index: no table of codes, no second MAC.
//
// Limits per cabinet (CodeLimits): a wrong code counts as a failure; 5
// failures within 15 minutes lock the keypad for 15 minutes, and 10
// failures within 24 hours lock it until 24 hours after the first of them.
// Each lockout raises an alarm. QR codes and app openings still work while
// the keypad is locked, so an attacker cannot lock recipients out.
//
// Limits per code: a wrong code that names a compartment holding a live
// code counts against that code as well, and the third such failure locks
// the code for an hour (an alarm too): the right code is then refused with
// a LockoutError until the hour has passed, and wrong ones are wrong codes
// as ever (counted by the keypad, not again by the locked code). So one
// parcel's code faces at most 3 guesses an hour, however the keypad limits
// are set. The attacker is told "wrong code" on the third guess too: the
// answer that locks a code is the answer for an empty compartment.
// (Its time is not: it logs the lockout. An attacker who spends three of
// the keypad's ten daily guesses on one compartment can learn that it is
// full; the codes' secrecy does not rest on hiding that.)
//
// The arithmetic the limits rest on (the keypad's; the per-code limit only
// takes guesses away): an attacker at one cabinet can make at
// most 10 wrong guesses in any 24 hours, so at most 10 × ⌈30⌉ = 300 in a
// 30-day month (310 in a 31-day one). A guess names one compartment and
// opens it only if it equals that compartment's live code, whose secret is
// uniform among 1,953,125,000: a chance of at most 1 / 1,953,125,000 a
// guess, however many parcels the cabinet holds (with 200 or with 512). By
// the union bound the chance of any success in a month is at most
// 310 / 1,953,125,000 = 1.6 × 10^-7, below the 10^-6 target by a factor
// of 6. Bare 6-digit codes with "5 tries per 15 minutes" would give
// 480 × 200 / 10^6 ≈ 9 % per day. AttackSuccessBound computes this; a test
// holds it to 10^-6.
//
// Storage: the plain code leaves the core once, in the arrival notification.
// The core keeps HMAC-SHA256(key, cabinet|parcel|code) to verify a code
// bound to its parcel, compared in constant time; a code naming an empty
// compartment is hashed all the same, so that the time a wrong code takes
// does not tell which compartments are full.
const (
	CodeDigits  = 12
	codeSpace   = 1_000_000_000_000
	codeSlots   = twin.MaxCompartments  // n mod codeSlots: the slot minus one
	codeSecrets = codeSpace / codeSlots // 1,953,125,000 secrets per compartment
)

// codeSlots divides the code space, so that every secret is as likely
// (this fails to compile otherwise).
const _ uint = -(codeSpace % codeSlots)

// CodeLimits are the attempt limits: per cabinet (the keypad) and per code.
type CodeLimits struct {
	ShortWindow  time.Duration // 15 min
	ShortMax     int           // 5 failures in ShortWindow → lockout
	ShortLockout time.Duration // 15 min
	LongWindow   time.Duration // 24 h
	LongMax      int           // 10 failures in LongWindow → lockout until the window clears
	CodeMax      int           // 3 failures naming one live code → that code locks (zero: 3; at most 255)
	CodeLockout  time.Duration // 1 h, how long (zero: 1 h)
}

// DefaultCodeLimits are the limits the bound in the package doc assumes.
var DefaultCodeLimits = CodeLimits{
	ShortWindow: 15 * time.Minute, ShortMax: 5, ShortLockout: 15 * time.Minute,
	LongWindow: 24 * time.Hour, LongMax: 10,
	CodeMax: 3, CodeLockout: time.Hour,
}

// withDefaults is l with zero limits replaced by DefaultCodeLimits' (all of
// them if l is zero; else only the per-code ones, which came later).
func (l CodeLimits) withDefaults() CodeLimits {
	if l == (CodeLimits{}) {
		return DefaultCodeLimits
	}
	if l.CodeMax <= 0 {
		l.CodeMax = DefaultCodeLimits.CodeMax
	}
	l.CodeMax = min(l.CodeMax, 255) // a parcel counts them in a byte
	if l.CodeLockout <= 0 {
		l.CodeLockout = DefaultCodeLimits.CodeLockout
	}
	return l
}

// MaxFailures bounds the wrong guesses one cabinet accepts in a period.
func (l CodeLimits) MaxFailures(period time.Duration) int {
	windows := int(math.Ceil(float64(period) / float64(l.LongWindow)))
	return windows * l.LongMax
}

// AttackSuccessBound is the union bound on a brute-force attacker's chance
// of opening any compartment of one cabinet with active codes, in period.
// A guess can match only the code of the compartment it names, so the
// bound does not grow with the number of active codes (none: no chance).
func AttackSuccessBound(l CodeLimits, active int, period time.Duration) float64 {
	if active <= 0 {
		return 0
	}
	return float64(l.MaxFailures(period)) / codeSecrets
}

// Rand is the core's randomness for codes: crypto-grade in the service
// (CryptoRand), a seeded stream in simulation so runs are reproducible.
// *math/rand/v2.Rand satisfies it.
type Rand interface {
	Uint64() uint64
}

// CryptoRand draws from crypto/rand.
type CryptoRand struct{}

// Uint64 returns 64 random bits from the operating system.
func (CryptoRand) Uint64() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return binary.LittleEndian.Uint64(b[:])
}

// coder issues and checks codes and QR payloads with one key.
type coder struct {
	mac *digest.HMAC
	buf []byte
}

func newCoder(key []byte) *coder {
	return &coder{mac: digest.NewHMAC(key), buf: make([]byte, 0, 128)}
}

// drawCode returns a code for the compartment at slot (1-based) of its
// cabinet: a secret uniform in [0, codeSecrets), by rejection, and the slot.
func drawCode(r Rand, slot int) uint64 {
	const limit = math.MaxUint64 - math.MaxUint64%codeSecrets
	for {
		if x := r.Uint64(); x < limit {
			return x%codeSecrets*codeSlots + uint64(slot-1)
		}
	}
}

// codeSlot is the compartment slot a normalised code names.
func codeSlot(norm string) int {
	var n uint64
	for i := 0; i < len(norm); i++ {
		n = n*10 + uint64(norm[i]-'0')
	}
	return int(n%codeSlots) + 1
}

func formatCode(n uint64) string {
	var b [CodeDigits]byte
	for i := CodeDigits - 1; i >= 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[:])
}

// normalizeCode accepts digits with optional spaces or dashes (as printed).
func normalizeCode(s string) (string, bool) {
	if len(s) > 3*CodeDigits {
		return "", false
	}
	if len(s) == CodeDigits && allDigits(s) {
		return s, true // as typed on a keypad: nothing to strip
	}
	var b [CodeDigits]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if n == CodeDigits {
				return "", false
			}
			b[n] = c
			n++
		case c == ' ' || c == '-':
		default:
			return "", false
		}
	}
	if n != CodeDigits {
		return "", false
	}
	return string(b[:]), true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// sumOf is HMAC(key, parts joined by '|'), written to the MAC in one piece.
func (c *coder) sumOf(parts ...string) [32]byte {
	c.buf = c.buf[:0]
	for i, p := range parts {
		if i > 0 {
			c.buf = append(c.buf, '|')
		}
		c.buf = append(c.buf, p...)
	}
	return c.mac.Sum(c.buf)
}

// bind is the digest that binds a code to its cabinet and parcel.
func (c *coder) bind(cabinet, parcel, code string) [32]byte {
	return c.sumOf(cabinet, parcel, code)
}

// equalDigest compares two digests in constant time: four words XORed and
// ORed together, with no branch on their contents. (subtle's byte loop is
// the same comparison at eight times the instructions, and it is on every
// pickup.)
func equalDigest(a, b *[32]byte) bool {
	var diff uint64
	for i := 0; i < 32; i += 8 {
		diff |= binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:])
	}
	return diff == 0
}

// QR payloads: "LT1.{parcel}.{cabinet}.{compartment}.{expiry unix}.{gen}.{mac}",
// the mac being a base64url HMAC-SHA256 truncated to 128 bits over the rest.
// A QR opens its parcel's compartment once, before expiry, and only for the
// code generation it was issued with.
const qrPrefix = "LT1"

func (c *coder) signQR(parcel, cabinet string, slot int, expiry int64, gen uint32) string {
	body := qrPrefix + "." + parcel + "." + cabinet + "." + strconv.Itoa(slot) + "." +
		strconv.FormatInt(expiry, 10) + "." + strconv.FormatUint(uint64(gen), 10)
	s := c.sumOf("qr", body)
	return body + "." + base64.RawURLEncoding.EncodeToString(s[:16])
}

type qrClaims struct {
	parcel, cabinet string
	slot            int
	expiry          int64
	gen             uint32
}

func (c *coder) verifyQR(payload string) (qrClaims, bool) {
	if len(payload) > 512 {
		return qrClaims{}, false
	}
	i := strings.LastIndexByte(payload, '.')
	if i < 0 {
		return qrClaims{}, false
	}
	body, mac := payload[:i], payload[i+1:]
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || len(got) != 16 {
		return qrClaims{}, false
	}
	want := c.sumOf("qr", body)
	if subtle.ConstantTimeCompare(got, want[:16]) != 1 {
		return qrClaims{}, false
	}
	parts := strings.Split(body, ".")
	if len(parts) != 6 || parts[0] != qrPrefix {
		return qrClaims{}, false
	}
	slot, err1 := strconv.Atoi(parts[3])
	exp, err2 := strconv.ParseInt(parts[4], 10, 64)
	gen, err3 := strconv.ParseUint(parts[5], 10, 32)
	if err1 != nil || err2 != nil || err3 != nil {
		return qrClaims{}, false
	}
	return qrClaims{parcel: parts[1], cabinet: parts[2], slot: slot, expiry: exp, gen: uint32(gen)}, true
}
