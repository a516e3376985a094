// Package atomicfile writes small files that must survive a crash or a
// power cut whole: the controller's code key, tokens and cabinet
// credentials, and lockerfleet's memory of its cabinets.
//
// os.WriteFile truncates the file and then writes it: killed in between,
// it leaves a short file. Renaming a finished temporary file over it
// fixes that for a crash, but not for a power cut: the file system may
// commit the rename before the data, and a freshly written file comes
// back empty. Write syncs the data before the rename and the directory
// after it, so that after a power cut the file holds the old contents or
// the new, never a part or nothing.
package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// Write replaces path with data, atomically and durably, with permissions
// perm. If it fails before the new file is in place, path is as it was and
// no temporary file is left; if only the final sync of the directory
// fails, the new contents are in place but may not survive a power cut.
func Write(path string, data []byte, perm os.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return err
	}
	if err := finish(f, data, perm); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return syncDir(dir)
}

// finish writes and syncs the temporary file and closes it.
func finish(f *os.File, data []byte, perm os.FileMode) error {
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// syncDir makes a rename in dir durable. A file system that cannot sync a
// directory (some refuse with EINVAL) has nothing more to do.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
