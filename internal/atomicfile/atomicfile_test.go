package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	tests := []struct {
		name string
		data string
		perm os.FileMode
	}{
		{"creates", "first", 0o600},
		{"replaces", "second, longer than the first", 0o600},
		{"replaces with less", "3", 0o644},
		{"empty", "", 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, Write(path, []byte(tt.data), tt.perm))
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, tt.data, string(got))
			st, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, tt.perm, st.Mode().Perm())
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "no temporary file left")
		})
	}
}

func TestWriteRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	require.NoError(t, Write("memory.json", []byte("{}"), 0o600))
	got, err := os.ReadFile("memory.json")
	require.NoError(t, err)
	require.Equal(t, "{}", string(got))
}

// A write that cannot finish leaves what was there, and nothing else.
func TestFailedWriteKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "code.key")
	require.NoError(t, os.WriteFile(path, []byte("old"), 0o600))

	// Renaming over a directory fails after the data is written and synced.
	blocked := filepath.Join(dir, "blocked")
	require.NoError(t, os.Mkdir(blocked, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(blocked, "x"), nil, 0o600))
	require.Error(t, Write(blocked, []byte("new"), 0o600))

	// A directory that does not exist cannot take the temporary file.
	require.Error(t, Write(filepath.Join(dir, "missing", "code.key"), []byte("new"), 0o600))

	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "old", string(got))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{"code.key", "blocked"}, names, "no temporary file left")
}
