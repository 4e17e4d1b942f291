//go:build !unix

package spool

import (
	"os"
	"path/filepath"
)

// lockDir opens dir/LOCK; without flock(2), two processes sharing one
// spool directory are not detected.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
}

func unlockDir(f *os.File) error { return f.Close() }

// lockFile opens path; without flock(2) it does not exclude others.
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
}
