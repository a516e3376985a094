package service

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The code key is made once and then only read: a key that is there but
// wrong or unreadable is an error, never replaced, since every pickup code
// issued under the old key would stop working.
func TestCodeKeyIsMadeOnceAndNeverReplaced(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		err     string
	}{
		{"missing: made", func(*testing.T, string) {}, ""},
		{"short", func(t *testing.T, path string) { require.NoError(t, os.WriteFile(path, []byte("short"), 0o600)) }, "expected 32 bytes, has 5"},
		{"unreadable", func(t *testing.T, path string) { require.NoError(t, os.Mkdir(path, 0o700)) }, "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "code.key")
			tt.prepare(t, path)
			before, _ := os.Stat(path)
			key, err := loadOrCreateSecret(path, 32)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				after, statErr := os.Stat(path)
				require.NoError(t, statErr)
				require.Equal(t, before.ModTime(), after.ModTime(), "left as it was")
				require.Equal(t, before.Size(), after.Size())
				return
			}
			require.NoError(t, err)
			require.Len(t, key, 32)
			st, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
			again, err := loadOrCreateSecret(path, 32)
			require.NoError(t, err)
			require.Equal(t, key, again, "read back, not made anew")
		})
	}
}

func TestTokensAreKeptOrMade(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	first, err := loadTokens(path, "", "")
	require.NoError(t, err)
	require.NotEmpty(t, first.Admin)
	require.NotEmpty(t, first.Courier)
	again, err := loadTokens(path, "", "")
	require.NoError(t, err)
	require.Equal(t, first, again)
	given, err := loadTokens(path, "admin-from-flag", "")
	require.NoError(t, err)
	require.Equal(t, "admin-from-flag", given.Admin)
	require.Equal(t, first.Courier, given.Courier)

	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o600))
	_, err = loadTokens(path, "", "")
	require.ErrorContains(t, err, "tokens.json")
	raw, _ := os.ReadFile(path)
	require.Equal(t, "{not json", string(raw), "a damaged file is reported, not overwritten")

	unreadable := filepath.Join(dir, "dir-tokens.json")
	require.NoError(t, os.Mkdir(unreadable, 0o700))
	_, err = loadTokens(unreadable, "", "")
	require.ErrorContains(t, err, "is a directory")
}

// A store starts only with the code key its codes were issued under: a
// lost key made anew, or another directory's, would leave every active
// pickup code unable to open its door, with nothing said.
func TestStoreRefusesAnotherCodeKey(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, newInbox())
	h.stop()
	path := filepath.Join(dir, "code.key")
	key, err := os.ReadFile(path)
	require.NoError(t, err)

	other := bytes.Repeat([]byte{7}, 32)
	for _, tt := range []struct {
		name    string
		prepare func()
		err     string
		after   []byte // code.key's contents after the refusal; nil: none
	}{
		{"replaced", func() { require.NoError(t, os.WriteFile(path, other, 0o600)) },
			"code.key is not the key this store's pickup codes were issued under", other},
		{"lost", func() { require.NoError(t, os.Remove(path)) },
			"code.key is missing, and this store's pickup codes were issued under the key with id", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.prepare()
			_, err := New(Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0"})
			require.ErrorContains(t, err, tt.err)
			require.ErrorContains(t, err, "put back the code.key of this data directory")
			got, err := os.ReadFile(path)
			if tt.after == nil {
				require.ErrorIs(t, err, os.ErrNotExist, "a lost key is not made anew")
			} else {
				require.Equal(t, tt.after, got)
			}
		})
	}

	require.NoError(t, os.WriteFile(path, key, 0o600))
	h = start(t, dir, newInbox())
	h.stop()
}
