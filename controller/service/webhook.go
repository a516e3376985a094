package service

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lockertwin/lockertwin/controller"
)

// Webhook delivers notifications as JSON POSTs to a URL, from a bounded
// queue, retrying a failed delivery a few times with backoff. A full queue
// drops (and counts) rather than stalling a site.
//
// Each POST carries one notification (WebhookBody; /v1/openapi.json has it
// under "webhooks") and is signed: the header Lockerd-Signature is
// "t=<unix seconds>,v1=<hex HMAC-SHA256(key, t + "." + body)>", with the
// key lockerd keeps in its data directory (WebhookKeyFile), so that a
// receiver can tell lockerd's pickup codes from anyone else's POSTs and
// refuse an old one replayed (VerifyWebhook does both). A retry is signed
// afresh and carries the same id, so a receiver that got the first try
// (whose answer was lost) can tell the second for a repeat.
type Webhook struct {
	URL     string
	key     []byte
	client  *http.Client
	queue   chan webhookMsg
	log     *slog.Logger
	Dropped atomic.Int64
	Failed  atomic.Int64
	Sent    atomic.Int64
	done    chan struct{}
	backoff time.Duration // before the first retry; doubling
}

type webhookMsg struct {
	site string
	n    controller.Notification
}

// WebhookBody is what a webhook POSTs: one notification.
type WebhookBody struct {
	// ID names the notification: its site and the sequence number of its
	// notified event in the site's log. A retry has the same id.
	ID          string `json:"id"`
	Site        string `json:"site"`
	Kind        string `json:"kind"` // arrival, reminder, expiry, code_reissued, returned
	Parcel      string `json:"parcel"`
	Recipient   string `json:"recipient"`
	Cabinet     string `json:"cabinet,omitempty"`
	Compartment int    `json:"compartment,omitempty"`
	// Code is the pickup code: arrival and code_reissued only. lockerd
	// keeps only its HMAC: this is the one time it is sent.
	Code     string     `json:"code,omitempty"`
	Deadline *time.Time `json:"deadline,omitempty"` // when it goes back, if it has a pickup window
	At       time.Time  `json:"at"`
}

func webhookBody(site string, n controller.Notification) WebhookBody {
	b := WebhookBody{
		ID: site + "-" + strconv.FormatUint(n.Seq, 10), Site: site, Kind: string(n.Kind), Parcel: n.Parcel,
		Recipient: n.Recipient, Cabinet: n.Cabinet, Compartment: n.Compartment, Code: n.Code, At: n.At.UTC(),
	}
	if !n.Deadline.IsZero() {
		d := n.Deadline.UTC()
		b.Deadline = &d
	}
	return b
}

// WebhookKeyFile is the file in lockerd's data directory that holds the
// key webhooks are signed with: text, made on first use (64 hex digits),
// or the operator's own of 32 characters or more.
const WebhookKeyFile = "webhook.key"

// LoadWebhookKey reads the webhook signing key from dataDir, or makes it.
func LoadWebhookKey(dataDir string) ([]byte, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dataDir, WebhookKeyFile)
	b, _, err := readOrMake(path, func() ([]byte, error) {
		raw, err := randomBytes(32)
		return []byte(hex.EncodeToString(raw) + "\n"), err
	})
	if err != nil {
		return nil, err
	}
	if key := bytes.TrimSpace(b); len(key) >= 32 {
		return key, nil
	}
	return nil, fmt.Errorf("%s: a webhook key needs 32 characters or more, this one has %d", path, len(bytes.TrimSpace(b)))
}

// SignatureHeader is the header a webhook's signature travels in.
const SignatureHeader = "Lockerd-Signature"

func signWebhook(key, body []byte, at time.Time) string {
	t := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(t))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + t + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Errors of VerifyWebhook.
var (
	ErrWebhookSignature = errors.New("webhook signature does not match")
	ErrWebhookStale     = errors.New("webhook signed too long ago (or in the future)")
)

// VerifyWebhook checks a webhook's signature header against its body and
// key, and that it was signed within tolerance of now: for a receiver
// written in Go (others follow the same recipe, Webhook's doc).
func VerifyWebhook(key, body []byte, header string, now time.Time, tolerance time.Duration) error {
	var t, v1 string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			t = v
		case "v1":
			v1 = v
		}
	}
	sec, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v1 == "" {
		return fmt.Errorf("%w: header %q is not t=…,v1=…", ErrWebhookSignature, header)
	}
	if !hmac.Equal([]byte(signWebhook(key, body, time.Unix(sec, 0))), []byte("t="+t+",v1="+v1)) {
		return ErrWebhookSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %v before now", ErrWebhookStale, d.Round(time.Second))
	}
	return nil
}

// NewWebhook starts a webhook sender to an http or https URL, signing with
// key; Close stops it. A URL that could never be posted to is refused
// here, not found out at the first notification.
func NewWebhook(target string, key []byte, log *slog.Logger) (*Webhook, error) {
	u, err := url.Parse(target)
	switch {
	case err != nil:
		return nil, fmt.Errorf("webhook URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("webhook URL %q: want http:// or https://", target)
	case u.Host == "":
		return nil, fmt.Errorf("webhook URL %q names no host", target)
	case len(key) == 0:
		return nil, errors.New("webhook: no signing key")
	}
	if log == nil {
		log = slog.Default()
	}
	w := &Webhook{URL: target, key: key, client: &http.Client{Timeout: 5 * time.Second}, queue: make(chan webhookMsg, 4096),
		log: log, done: make(chan struct{}), backoff: 200 * time.Millisecond}
	go w.run()
	return w, nil
}

// Notify queues a notification (Notifier).
func (w *Webhook) Notify(site string, n controller.Notification) {
	select {
	case w.queue <- webhookMsg{site: site, n: n}:
	default:
		w.Dropped.Add(1)
	}
}

func (w *Webhook) run() {
	defer close(w.done)
	for m := range w.queue {
		body, _ := json.Marshal(webhookBody(m.site, m.n))
		var err error
		for attempt, backoff := 0, w.backoff; attempt < 4; attempt, backoff = attempt+1, backoff*2 {
			if err = w.post(body); err == nil {
				w.Sent.Add(1)
				break
			}
			if attempt < 3 {
				time.Sleep(backoff)
			}
		}
		if err != nil {
			w.Failed.Add(1)
			if m.n.Code != "" { // the recipient has no code, and lockerd cannot send this one again
				w.log.Error("webhook delivery failed: the recipient has no pickup code; POST /v1/sites/"+m.site+"/parcels/"+m.n.Parcel+"/code sends a new one",
					"site", m.site, "parcel", m.n.Parcel, "kind", m.n.Kind, "err", err)
				continue
			}
			w.log.Error("webhook delivery failed", "site", m.site, "parcel", m.n.Parcel, "kind", m.n.Kind, "err", err)
		}
	}
}

func (w *Webhook) post(body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, signWebhook(w.key, body, time.Now()))
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// WebhookCounts are a webhook's notifications: delivered, given up on
// after the retries, and dropped because the queue was full.
type WebhookCounts struct{ Sent, Failed, Dropped int64 }

// Counts reports them (lockerd's metrics).
func (w *Webhook) Counts() WebhookCounts {
	return WebhookCounts{Sent: w.Sent.Load(), Failed: w.Failed.Load(), Dropped: w.Dropped.Load()}
}

// Close delivers what is queued (best effort) and stops.
func (w *Webhook) Close() {
	close(w.queue)
	<-w.done
}
