package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/lockertwin/lockertwin/controller"
)

// Webhook delivers notifications as JSON POSTs to a URL, from a bounded
// queue, retrying a failed delivery a few times with backoff. A full queue
// drops (and counts) rather than stalling a site.
type Webhook struct {
	URL     string
	client  *http.Client
	queue   chan webhookMsg
	log     *slog.Logger
	Dropped atomic.Int64
	Failed  atomic.Int64
	Sent    atomic.Int64
	done    chan struct{}
}

type webhookMsg struct {
	Site         string                  `json:"site"`
	Notification controller.Notification `json:"notification"`
}

// NewWebhook starts a webhook sender to an http or https URL; Close stops
// it. A URL that could never be posted to is refused here, not found out
// at the first notification.
func NewWebhook(target string, log *slog.Logger) (*Webhook, error) {
	u, err := url.Parse(target)
	switch {
	case err != nil:
		return nil, fmt.Errorf("webhook URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("webhook URL %q: want http:// or https://", target)
	case u.Host == "":
		return nil, fmt.Errorf("webhook URL %q names no host", target)
	}
	if log == nil {
		log = slog.Default()
	}
	w := &Webhook{URL: target, client: &http.Client{Timeout: 5 * time.Second}, queue: make(chan webhookMsg, 4096), log: log, done: make(chan struct{})}
	go w.run()
	return w, nil
}

// Notify queues a notification (Notifier).
func (w *Webhook) Notify(site string, n controller.Notification) {
	select {
	case w.queue <- webhookMsg{Site: site, Notification: n}:
	default:
		w.Dropped.Add(1)
	}
}

func (w *Webhook) run() {
	defer close(w.done)
	for m := range w.queue {
		body, _ := json.Marshal(m)
		var err error
		for attempt, backoff := 0, 200*time.Millisecond; attempt < 4; attempt, backoff = attempt+1, backoff*2 {
			if err = w.post(body); err == nil {
				w.Sent.Add(1)
				break
			}
			time.Sleep(backoff)
		}
		if err != nil {
			w.Failed.Add(1)
			w.log.Error("webhook delivery failed", "parcel", m.Notification.Parcel, "kind", m.Notification.Kind, "err", err)
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

// Close delivers what is queued (best effort) and stops.
func (w *Webhook) Close() {
	close(w.queue)
	<-w.done
}
