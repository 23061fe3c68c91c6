package vhdx

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdkit/vhd/internal/testutil"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// TestCheckFindings checks that damage is reported with its rule and
// file offset, and that Check goes on after a finding where it can.
func TestCheckFindings(t *testing.T) {
	img, _ := validImage(t)
	cases := []struct {
		name string
		mod  func([]byte)
		rule string
		off  int64
		sev  vdisk.Severity
	}{
		{"header 1 crc", func(b []byte) { b[header1Offset+4]++ }, "vhdx.header_1.checksum", header1Offset + 4, vdisk.SeverityWarning},
		{"region table 1 crc", func(b []byte) { b[regionTable1Offset+4]++ }, "vhdx.region_table_1.checksum", regionTable1Offset + 4, vdisk.SeverityError},
		{"metadata item length", func(b []byte) { le.PutUint32(b[createMetaOffset+32+20:], 2*miB) }, "vhdx.metadata_table.length", createMetaOffset + 32 + 20, vdisk.SeverityError},
		{"BAT state", func(b []byte) { le.PutUint64(b[createBATOffset+8*5:], 4) }, "vhdx.bat.state", createBATOffset + 8*5, vdisk.SeverityError},
		{"BAT overlap", func(b []byte) { le.PutUint64(b[createBATOffset+8*5:], 6|createMetaOffset) }, "vhdx.bat.file_offset_mb", createBATOffset + 8*5, vdisk.SeverityError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := append([]byte(nil), img...)
			c.mod(b)
			fs, err := Check(newROFile(b), "", nil)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, f := range fs {
				found = found || f.Rule == c.rule && f.Offset == c.off && f.Severity == c.sev
			}
			if !found {
				t.Errorf("no %s %s at 0x%x in %+v", c.sev, c.rule, c.off, fs)
			}
		})
	}

	// Two independent BAT errors are both reported.
	b := append([]byte(nil), img...)
	le.PutUint64(b[createBATOffset+8*5:], 4)
	le.PutUint64(b[createBATOffset+8*6:], 5<<4|1)
	le.PutUint64(b[createBATOffset+8*7:], 6|1<<40)
	fs, err := Check(newROFile(b), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fs {
		if f.Severity == vdisk.SeverityError {
			n++
		}
	}
	if n < 2 {
		t.Errorf("want findings for entries 5 and 7, got %+v", fs)
	}

	// I/O errors are errors, not findings.
	if _, err := Check(&failingFile{newROFile(img)}, "", nil); !errors.Is(err, errIO) {
		t.Errorf("I/O error: %v", err)
	}
}

var errIO = errors.New("injected read error")

type failingFile struct{ roFile }

func (failingFile) ReadAt([]byte, int64) (int, error) { return 0, errIO }

// TestCheckCorpus: the corpus VHDX files and qemu's fixed disk (ZERO
// entries, last block past EOF) have no error findings; the dirty log is
// a warning when checked read-only.
func TestCheckCorpus(t *testing.T) {
	for _, c := range corpusCases {
		t.Run(c.name, func(t *testing.T) {
			path := testutil.Corpus(t, c.name)
			f, err := vdisk.OpenOSFile(path, true)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fs := checkFile(t, f, path, nil)
			dirty := false
			for _, x := range fs {
				dirty = dirty || x.Rule == "vhdx.log.dirty"
			}
			if dirty != (c.name == "iotest-dirtylog-10G-4M.vhdx.bz2") {
				t.Errorf("log.dirty finding %t: %+v", dirty, fs)
			}
		})
	}
	t.Run("qemu-fixed", func(t *testing.T) {
		path := t.TempDir() + "/f.vhdx"
		testutil.Run(t, "qemu-img", "create", "-q", "-f", "vhdx", "-o", "subformat=fixed,block_size=8M,block_state_zero=off", path, "20M")
		checkFindings(t, path)
		d, err := Open(path, &vdisk.OpenOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if got := countState(d, BlockFullyPresent); got != 3 {
			t.Fatalf("%d blocks fully present, want 3", got)
		}
		last := d.bat[d.geo.payloadIndex(2)].offset()
		if last+8*miB <= d.fileSize {
			t.Fatalf("last block [%d, +8 MiB) inside the %d-byte file: not the case under test", last, d.fileSize)
		}
		buf := make([]byte, 4*miB)
		if _, err := d.ReadAt(buf, 16*miB); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCheckQemuFixed: qemu-img makes fixed disks with every block in
// state ZERO (space allocated); check gives one warning for all of them,
// not one per block.
func TestCheckQemuFixed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qf.vhdx")
	testutil.Run(t, "qemu-img", "create", "-q", "-f", "vhdx", "-o", "subformat=fixed,block_size=8M", path, "64M")
	f, err := vdisk.OpenOSFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs, err := Check(f, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fs {
		if f.Severity == vdisk.SeverityError {
			t.Errorf("error: %+v", f)
		}
		if f.Rule == "vhdx.bat.fixed_not_present" {
			n++
			if !strings.Contains(f.Message, "8 payload blocks") {
				t.Errorf("message %q", f.Message)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d fixed_not_present findings, want 1: %+v", n, fs)
	}
}
