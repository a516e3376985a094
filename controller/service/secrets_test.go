package service

import (
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
