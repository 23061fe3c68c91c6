package vhd

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vhdkit/vhd/internal/testfile"
)

func TestDetect(t *testing.T) {
	withAt := func(size int, off int, s string) []byte {
		b := make([]byte, size)
		copy(b[off:], s)
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
		want Format
	}{
		{"empty", nil, FormatRaw},
		{"zeros", make([]byte, 4096), FormatRaw},
		{"vhdx", withAt(1<<16, 0, "vhdxfile"), FormatVHDX},
		{"vhd footer copy at 0", withAt(4096, 0, "conectix"), FormatVHD},
		{"vhd footer at end", withAt(4096, 4096-512, "conectix"), FormatVHD},
		{"vhd 511-byte footer", withAt(4096, 4096-511, "conectix"), FormatVHD},
		{"footer-sized file", withAt(512, 0, "conectix"), FormatVHD},
		{"cookie elsewhere", withAt(4096, 1000, "conectix"), FormatRaw},
		{"short", []byte("vhdxfil"), FormatRaw},
		{"cookie at end-513", withAt(4096, 4096-513, "conectix"), FormatRaw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Detect(bytes.NewReader(tc.data), int64(len(tc.data)))
			if err != nil || got != tc.want {
				t.Fatalf("Detect = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// failReader fails every read.
type failReader struct{}

var errRead = errors.New("read failed")

func (failReader) ReadAt([]byte, int64) (int, error) { return 0, errRead }

func TestDetectReadError(t *testing.T) {
	if _, err := Detect(failReader{}, 4096); !errors.Is(err, errRead) {
		t.Fatalf("Detect on failing reader: %v, want the read error", err)
	}
}

func TestOpenFileRaw(t *testing.T) {
	f := testfile.FromBytes(bytes.Repeat([]byte{7}, 8192))
	d, err := OpenFile(f, "mem.img", &OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if info := d.Info(); info.Format != FormatRaw || info.VirtualSize != 8192 {
		t.Fatalf("info = %+v", info)
	}
	if _, err := d.WriteAt([]byte{1}, 0); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write to read-only disk: %v, want ErrReadOnly", err)
	}
}

func TestFormatFromPath(t *testing.T) {
	for name, want := range map[string]Format{
		"a.vhdx": FormatVHDX, "b.AVHDX": FormatVHDX, "c.vhd": FormatVHD,
		"d.avhd": FormatVHD, "e.img": FormatRaw, "f.raw": FormatRaw,
		"g.bin": FormatRaw, "h.qcow2": FormatUnknown, "noext": FormatUnknown,
	} {
		if got := FormatFromPath(name); got != want {
			t.Errorf("FormatFromPath(%q) = %v, want %v", name, got, want)
		}
	}
}
