package vhdx

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/vhdkit/vhd/internal/testutil"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// countingFile counts the bytes written through it.
type countingFile struct {
	vdisk.File
	n *int64
}

func (c countingFile) WriteAt(p []byte, off int64) (int, error) {
	*c.n += int64(len(p))
	return c.File.WriteAt(p, off)
}

// sliceWriter writes into a byte slice that is long enough.
type sliceWriter []byte

func (s sliceWriter) WriteAt(p []byte, off int64) (int, error) { return copy(s[off:], p), nil }

// zeroLogImage returns the path of a valid image whose log holds one
// entry zeroing n bytes from the 1 MiB-aligned end of the file, with
// the image's content.
func zeroLogImage(t *testing.T, n int64) (string, int64, []byte) {
	t.Helper()
	img, content := validImage(t)
	d, err := OpenFile(newROFile(img), "", &vdisk.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	h, slot := d.hdr, d.hdrSlot
	d.Close()
	g := GUID{9, 9, 9}
	end := roundUp(int64(len(img)), miB)
	w := newLogWriter(sliceWriter(img), int64(h.LogOffset), h.LogLength, [16]byte(g))
	if err := w.append([]logUpdate{{Offset: end, ZeroLength: n}}, uint64(len(img))&^(miB-1), uint64(end)); err != nil {
		t.Fatal(err)
	}
	h.LogGUID = g
	h.SequenceNumber++
	off := int64(header2Offset)
	if slot == 1 {
		off = header1Offset
	}
	copy(img[off:], h.encode())
	p := filepath.Join(t.TempDir(), "x.vhdx")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, end, content
}

// TestReplayZeroPastEOF replays a log whose zero descriptor covers 1 TiB
// past the end of a small file: a writable open must extend the file
// (sparse) instead of writing a terabyte of zeros, and keep the content.
func TestReplayZeroPastEOF(t *testing.T) {
	p, end, content := zeroLogImage(t, 1<<40)
	var written int64
	d, err := Open(p, &vdisk.OpenOptions{OpenFile: func(path string, ro bool) (vdisk.File, error) {
		f, err := vdisk.OpenOSFile(path, ro)
		return countingFile{f, &written}, err
	}})
	if errors.Is(err, syscall.EFBIG) {
		testutil.Missing(t, "file system without 1 TiB sparse files: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if written > 64*miB {
		t.Fatalf("replay wrote %d bytes", written)
	}
	if d.fileSize < end+1<<40 {
		t.Errorf("file size %d, want at least %d", d.fileSize, end+1<<40)
	}
	got := make([]byte, d.Size())
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) {
		t.Error("content changed")
	}
}

// TestReplayZeroBeyondAnyFile: a zero descriptor reaching past the
// largest VHDX file (64 TiB of payload plus structures) is corrupt, in
// a read-only and a writable open, and the file is not extended.
func TestReplayZeroBeyondAnyFile(t *testing.T) {
	p, _, _ := zeroLogImage(t, 1<<52)
	before, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{true, false} {
		_, err := Open(p, &vdisk.OpenOptions{ReadOnly: ro})
		if !errors.Is(err, vdisk.ErrCorrupt) {
			t.Errorf("read-only %t: %v, want ErrCorrupt", ro, err)
		}
	}
	if after, err := os.Stat(p); err != nil || after.Size() != before.Size() {
		t.Errorf("file size %d, was %d (%v)", after.Size(), before.Size(), err)
	}
}
