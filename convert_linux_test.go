package vhd

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// checkUsage checks that the file at path takes about as much disk as
// the data it holds: at most 3% more plus 8 MiB of metadata.
func checkUsage(t *testing.T, path string, data int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	used := fi.Sys().(*syscall.Stat_t).Blocks * 512
	t.Logf("%s: %d bytes on disk for %d bytes of data", filepath.Base(path), used, data)
	if limit := data + data*3/100 + 8<<20; used > limit {
		t.Errorf("%s uses %d bytes on disk, want at most %d for %d bytes of data",
			filepath.Base(path), used, limit, data)
	}
	if used < data {
		t.Errorf("%s uses %d bytes on disk, less than its %d bytes of data",
			filepath.Base(path), used, data)
	}
}
