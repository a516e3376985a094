package service

import (
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/controller"
	"github.com/stretchr/testify/require"
)

// TestWebhookDeliversAndRetries: the first try fails, the second is
// delivered with the same id, each signed afresh; the body is the
// documented one, with no deadline or code where there is none.
func TestWebhookDeliversAndRetries(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	type post struct {
		body []byte
		sig  string
	}
	posts := make(chan post, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		posts <- post{body, r.Header.Get(SignatureHeader)}
		if len(posts) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable) // the first try fails
		}
	}))
	defer srv.Close()
	wh, err := NewWebhook(srv.URL, key, nil)
	require.NoError(t, err)
	wh.backoff = time.Millisecond // set before the first Notify, which hands it to the sender
	at := time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)
	wh.Notify("lobby", controller.Notification{Kind: controller.NotifyArrival, Parcel: "p1", Recipient: "ana@example.org",
		Cabinet: "c1", Compartment: 7, Code: "123456789012", Deadline: at.Add(72 * time.Hour), At: at, Seq: 41})
	wh.Notify("lobby", controller.Notification{Kind: controller.NotifyReturned, Parcel: "p2", Recipient: "bo@example.org", At: at, Seq: 42})
	wh.Close()
	close(posts)
	var got []post
	for p := range posts {
		got = append(got, p)
	}
	require.Len(t, got, 3)
	require.Equal(t, got[0].body, got[1].body, "a retry is the same notification, with the same id")
	require.JSONEq(t, `{"id":"lobby-41","site":"lobby","kind":"arrival","parcel":"p1","recipient":"ana@example.org",
		"cabinet":"c1","compartment":7,"code":"123456789012","deadline":"2026-12-01T09:30:00Z","at":"2026-11-28T09:30:00Z"}`, string(got[1].body))
	require.JSONEq(t, `{"id":"lobby-42","site":"lobby","kind":"returned","parcel":"p2","recipient":"bo@example.org","at":"2026-11-28T09:30:00Z"}`, string(got[2].body))
	for _, p := range got {
		require.NoError(t, VerifyWebhook(key, p.body, p.sig, time.Now(), time.Minute))
	}
	require.Equal(t, WebhookCounts{Sent: 2}, wh.Counts())
}

// TestVerifyWebhook: a receiver refuses a body or signature changed on
// the way, another key's signature, an old one replayed, and a malformed
// header.
func TestVerifyWebhook(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	body := []byte(`{"id":"lobby-1","code":"123456789012"}`)
	now := time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)
	sig := signWebhook(key, body, now)
	require.NoError(t, VerifyWebhook(key, body, sig, now.Add(time.Minute), 5*time.Minute))
	tests := []struct {
		name   string
		key    []byte
		body   string
		header string
		now    time.Time
		want   error
	}{
		{"another code", key, `{"id":"lobby-1","code":"999999999999"}`, sig, now, ErrWebhookSignature},
		{"another key", []byte(strings.Repeat("x", 32)), string(body), sig, now, ErrWebhookSignature},
		{"another time", key, string(body), strings.Replace(sig, "t=", "t=1", 1), now, ErrWebhookSignature},
		{"replayed an hour on", key, string(body), sig, now.Add(time.Hour), ErrWebhookStale},
		{"from the future", key, string(body), sig, now.Add(-time.Hour), ErrWebhookStale},
		{"no signature", key, string(body), "", now, ErrWebhookSignature},
		{"no v1", key, string(body), "t=1764322200", now, ErrWebhookSignature},
		{"not a time", key, string(body), "t=soon,v1=00", now, ErrWebhookSignature},
	}
	for _, tt := range tests {
		require.ErrorIs(t, VerifyWebhook(tt.key, []byte(tt.body), tt.header, tt.now, 5*time.Minute), tt.want, tt.name)
	}
}

// TestWebhookKeyIsMadeOnceAndKept: the first start makes a key of 64 hex
// digits (0600); the next reads the same; an operator's own key is taken,
// a short one refused.
func TestWebhookKeyIsMadeOnceAndKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	key, err := LoadWebhookKey(dir)
	require.NoError(t, err)
	require.Regexp(t, `^[0-9a-f]{64}$`, string(key))
	st, err := os.Stat(filepath.Join(dir, WebhookKeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	again, err := LoadWebhookKey(dir)
	require.NoError(t, err)
	require.Equal(t, key, again)

	own := "correct horse battery staple, and more of it"
	require.NoError(t, os.WriteFile(filepath.Join(dir, WebhookKeyFile), []byte(own+"\n"), 0o600))
	key, err = LoadWebhookKey(dir)
	require.NoError(t, err)
	require.Equal(t, own, string(key))
	require.NoError(t, os.WriteFile(filepath.Join(dir, WebhookKeyFile), []byte("short"), 0o600))
	_, err = LoadWebhookKey(dir)
	require.ErrorContains(t, err, "32 characters or more")
}

// TestAFailedCodeWebhookSaysWhatToDo: when the notification that carries a
// code cannot be delivered, the log names the parcel and the remedy.
func TestAFailedCodeWebhookSaysWhatToDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	var logs syncBuffer
	wh, err := NewWebhook(srv.URL, []byte(strings.Repeat("k", 32)), slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	wh.backoff = time.Millisecond
	wh.Notify("lobby", controller.Notification{Kind: controller.NotifyArrival, Parcel: "p1", Code: "123456789012", Seq: 1})
	wh.Close()
	require.Equal(t, int64(1), wh.Counts().Failed)
	require.Contains(t, logs.String(), "POST /v1/sites/lobby/parcels/p1/code sends a new one")
	require.NotContains(t, logs.String(), "123456789012", "the code is not logged")
}

func TestWebhookRefusesAURLItCannotPostTo(t *testing.T) {
	tests := []struct{ url, want string }{
		{"not a url", "want http:// or https://"},
		{"ftp://example.org/hook", "want http:// or https://"},
		{"http://", "names no host"},
		{"https://exa mple.org/", "webhook URL"},
		{"example.org/hook", "want http:// or https://"},
	}
	for _, tt := range tests {
		wh, err := NewWebhook(tt.url, []byte(strings.Repeat("k", 32)), nil)
		require.Error(t, err, tt.url)
		require.Nil(t, wh)
		require.Contains(t, err.Error(), tt.want, tt.url)
	}
}

// TestWebhookBodyIsTheDocumentedOne: every field a webhook can send is in
// openapi.json's Notification schema, and the schema names no other.
func TestWebhookBodyIsTheDocumentedOne(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Required   []string
				Properties map[string]any
			}
		}
		Webhooks map[string]any
	}
	require.NoError(t, json.Unmarshal(openapi, &doc))
	require.Contains(t, doc.Webhooks, "notification")
	schema := doc.Components.Schemas["Notification"]
	at := time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)
	full, err := json.Marshal(webhookBody("lobby", controller.Notification{Kind: controller.NotifyArrival, Parcel: "p1", Recipient: "r",
		Cabinet: "c1", Compartment: 1, Code: "123456789012", Deadline: at, At: at, Seq: 1}))
	require.NoError(t, err)
	var fields map[string]any
	require.NoError(t, json.Unmarshal(full, &fields))
	require.ElementsMatch(t, slices.Collect(maps.Keys(schema.Properties)), slices.Collect(maps.Keys(fields)))
	bare, err := json.Marshal(webhookBody("lobby", controller.Notification{Kind: controller.NotifyReturned, Parcel: "p1", Recipient: "r", At: at, Seq: 2}))
	require.NoError(t, err)
	fields = nil
	require.NoError(t, json.Unmarshal(bare, &fields))
	require.ElementsMatch(t, schema.Required, slices.Collect(maps.Keys(fields)), "what is always sent is what is required")
}

// TestWebhookCountsAreMetrics: lockerd exports its webhook's deliveries.
func TestWebhookCountsAreMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})) // 200
	defer srv.Close()
	wh, err := NewWebhook(srv.URL+"/hook", []byte(strings.Repeat("k", 32)), nil)
	require.NoError(t, err)
	h := startWith(t, t.TempDir(), Config{Notifier: wh})
	defer h.stop()
	wh.Notify("lobby", controller.Notification{Kind: controller.NotifyReminder, Parcel: "p1", Seq: 1})
	wh.Notify("lobby", controller.Notification{Kind: controller.NotifyExpiry, Parcel: "p1", Seq: 2})
	wh.Close() // both delivered
	resp, err := http.Get(h.base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	for _, line := range []string{"lockerd_webhook_sent_total 2", "lockerd_webhook_failed_total 0", "lockerd_webhook_dropped_total 0"} {
		require.Contains(t, string(text), line+"\n")
	}
}
