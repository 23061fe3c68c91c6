package vhd1

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/vhdkit/vhd/internal/testutil"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// openRO opens path read-only and closes it when the test ends.
func openRO(t *testing.T, path string) *Disk {
	t.Helper()
	d, err := Open(path, &vdisk.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// contentSHA256 hashes the whole virtual content of d.
func contentSHA256(t *testing.T, d *Disk) string {
	t.Helper()
	return testutil.SHA256(t, d, d.Size())
}

// checkClean runs Check on path and fails on any finding of severity
// error. Every test that writes an image calls it on the result.
func checkClean(t *testing.T, path string, opts *vdisk.OpenOptions) []vdisk.Finding {
	t.Helper()
	f, err := vdisk.OpenOSFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs, err := Check(f, path, opts)
	if err != nil {
		t.Fatalf("Check(%s): %v", path, err)
	}
	for _, x := range fs {
		if x.Severity == vdisk.SeverityError {
			t.Errorf("Check(%s): %+v", path, x)
		}
	}
	return fs
}

// hasRule reports whether fs holds a finding with rule.
func hasRule(fs []vdisk.Finding, rule string) bool {
	for _, f := range fs {
		if f.Rule == rule {
			return true
		}
	}
	return false
}

// wantCorrupt fails unless err matches vdisk.ErrCorrupt.
func wantCorrupt(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, vdisk.ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	var ce *vdisk.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *vdisk.CorruptError", err)
	}
}

// readAll reads the whole virtual disk.
func readAll(t *testing.T, r io.ReaderAt, size int64) []byte {
	t.Helper()
	b := make([]byte, size)
	if n, err := r.ReadAt(b, 0); n != len(b) || err != nil && err != io.EOF {
		t.Fatalf("ReadAt(0, %d) = %d, %v", size, n, err)
	}
	return b
}

// fileBytes reads a host file.
func fileBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func isZero(b []byte) bool { return bytes.Count(b, []byte{0}) == len(b) }
