package service

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/lockertwin/lockertwin/controller"
	"github.com/stretchr/testify/require"
)

func TestWebhookDeliversAndRetries(t *testing.T) {
	var calls atomic.Int64
	got := make(chan webhookMsg, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable) // the first try fails
			return
		}
		var m webhookMsg
		require.NoError(t, json.NewDecoder(r.Body).Decode(&m))
		got <- m
	}))
	defer srv.Close()
	wh, err := NewWebhook(srv.URL, nil)
	require.NoError(t, err)
	wh.Notify("lobby", controller.Notification{Kind: controller.NotifyArrival, Parcel: "p1", Code: "123456789012"})
	wh.Close()
	m := <-got
	require.Equal(t, "p1", m.Notification.Parcel)
	require.Equal(t, "123456789012", m.Notification.Code)
	require.Equal(t, int64(1), wh.Sent.Load())
	require.Equal(t, int64(2), calls.Load())
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
		wh, err := NewWebhook(tt.url, nil)
		require.Error(t, err, tt.url)
		require.Nil(t, wh)
		require.Contains(t, err.Error(), tt.want, tt.url)
	}
}
