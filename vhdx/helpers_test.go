package vhdx

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vhdkit/vhd/internal/vdisk"
)

var errorsIs = errors.Is

// checkFindings runs Check on the file at path and fails t on any
// error-severity finding.
func checkFindings(t testing.TB, path string) {
	t.Helper()
	f, err := vdisk.OpenOSFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	checkFile(t, f, path, nil)
}

// checkFile runs Check on f and fails t on any error-severity finding.
func checkFile(t testing.TB, f vdisk.File, path string, opts *vdisk.OpenOptions) []vdisk.Finding {
	t.Helper()
	fs, err := Check(f, path, opts)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	for _, x := range fs {
		if x.Severity == vdisk.SeverityError {
			t.Errorf("check: %s at 0x%x: %s (%s)", x.Rule, x.Offset, x.Message, x.Structure)
		}
	}
	return fs
}

// roFile is a read-only vdisk.File over a byte slice, without copying.
type roFile struct{ *bytes.Reader }

func newROFile(b []byte) roFile { return roFile{bytes.NewReader(b)} }

func (roFile) WriteAt([]byte, int64) (int, error) { return 0, errors.New("roFile: write") }
func (roFile) Sync() error                        { return nil }
func (roFile) Truncate(int64) error               { return errors.New("roFile: truncate") }
func (f roFile) Size() (int64, error)             { return f.Reader.Size(), nil }
func (roFile) Close() error                       { return nil }
