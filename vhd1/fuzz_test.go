package vhd1

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/vhdkit/vhd/internal/testfile"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// fuzzSeeds returns whole files to seed the fuzzers: disks we create,
// the files under testdata/seeds, and the small corpus files when the
// corpus is present.
func fuzzSeeds(f *testing.F) [][]byte {
	f.Helper()
	seeds := [][]byte{sampleDynamic(f), fixedSample(f), differencingSample(f)}
	paths, _ := filepath.Glob(filepath.Join("testdata", "seeds", "*.vhd"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			seeds = append(seeds, b)
		}
	}
	return seeds
}

func FuzzFooter(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b[len(b)-512:])
		f.Add(b[:512])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ft, err := DecodeFooter(b, 0)
		if err != nil {
			wantCorrupt(t, err)
			return
		}
		_ = CHS(int64(ft.CurrentSize))
		// Encoding round trips, reserved bytes included.
		enc := ft.Encode()
		ft2, err := DecodeFooter(enc, 0)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if *ft2 != *ft {
			t.Fatal("footer does not round trip")
		}
		if len(b) == FooterSize && !bytes.Equal(enc, b) {
			t.Fatal("Encode changed the bytes of a valid footer")
		}
	})
}

func FuzzDynamicHeader(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		if len(b) >= 1536 {
			f.Add(b[512:1536])
		}
	}
	ft, _ := ParseFooter(sampleDynamic(f)[:512])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeDynamicHeader(b, 512)
		if err != nil {
			wantCorrupt(t, err)
			return
		}
		_ = h.ParentName()
		_ = h.BitmapSize()
		for _, l := range h.ParentLocators {
			l.DataSpaceBytes()
		}
		enc := h.Encode()
		if !bytes.Equal(enc, b) {
			t.Fatal("Encode changed the bytes of a valid header")
		}
		// The placement rules never panic, whatever the values.
		l := &layout{fileSize: 1 << 20, end: 1<<20 - 512, footer: &ft, header: h}
		tableIssues(l)
		locatorIssues(l)
		locatorRegions(l)
	})
}

func FuzzBAT(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		if len(b) >= 2048 {
			f.Add(b[1536:2048], uint32(2<<20), int64(len(b)))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, blockSize uint32, end int64) {
		bat := DecodeBAT(b)
		if enc := EncodeBAT(bat); !bytes.Equal(enc[:len(bat)*4], b[:len(bat)*4]) {
			t.Fatal("BAT does not round trip")
		}
		if blockSize < 512 || blockSize&(blockSize-1) != 0 || end < 0 {
			return
		}
		h := &DynamicHeader{TableOffset: 1536, BlockSize: blockSize,
			MaxTableEntries: uint32(len(bat))}
		ft := &Footer{DataOffset: 512,
			CurrentSize: uint64(len(bat)) * uint64(blockSize)}
		l := &layout{end: end, footer: ft, header: h}
		is := batIssues(l, bat, metadataRegions(l))
		// Every accepted entry lies inside the file.
		if firstError(is) == nil {
			for _, e := range bat {
				if e != unused && int64(e)*512+h.BitmapSize()+int64(blockSize) > end {
					t.Fatalf("entry %d past the end %d accepted", e, end)
				}
			}
		}
	})
}

func FuzzLocators(f *testing.F) {
	f.Add(uint32(PlatformW2ru), encodeUTF16LE(`.\parent.vhd`))
	f.Add(uint32(PlatformW2ku), encodeUTF16LE(`C:\dir\parent.vhd`))
	f.Add(uint32(PlatformMacX), []byte("file://./parent.vhd"))
	f.Add(uint32(PlatformMacX), []byte("file:///dir/a%20b.vhd"))
	f.Add(uint32(PlatformWi2r), []byte(`.\parent.vhd`))
	f.Add(uint32(PlatformMac), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, code uint32, data []byte) {
		s, err := LocatorPath(PlatformCode(code), data)
		if err != nil {
			return
		}
		p, _ := hostPath(s, PlatformCode(code), "dir")
		if p == "" {
			t.Fatal("empty host path")
		}
		if PlatformCode(code) == PlatformW2ru {
			s2, err := LocatorPath(PlatformW2ru, encodeUTF16LE(s))
			if err != nil || s2 != s {
				t.Fatalf("W2ru %q does not round trip: %q, %v", s, s2, err)
			}
		}
	})
}

// FuzzOpen opens whole files from memory. Parents are never looked up on
// the host: the OpenFile hook reports every path missing.
func FuzzOpen(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		if len(b) <= 1<<20 {
			f.Add(b)
		}
	}
	noFiles := func(string, bool) (vdisk.File, error) { return nil, fs.ErrNotExist }
	f.Fuzz(func(t *testing.T, b []byte) {
		opts := &vdisk.OpenOptions{ReadOnly: true, OpenFile: noFiles}
		if _, err := Check(testfile.FromBytes(b), "", opts); err != nil {
			t.Fatalf("Check: %v", err)
		}
		d, err := OpenFile(testfile.FromBytes(b), "", opts)
		if err != nil {
			return
		}
		defer d.Close()
		_ = d.Info()
		n := min(d.Size(), 64<<20)
		if _, err := d.Map(0, n); err != nil {
			wantCorrupt(t, err)
		}
		buf := make([]byte, 4096)
		for _, off := range []int64{0, d.Size() / 2, d.Size() - 100} {
			if off < 0 {
				continue
			}
			if _, err := d.ReadAt(buf, off); err != nil && err != io.EOF {
				wantCorrupt(t, err)
			}
		}
	})
}

// differencingSample returns the bytes of a differencing disk with one
// allocated block, whose parent is in a temporary directory.
func differencingSample(f *testing.F) []byte {
	f.Helper()
	dir := f.TempDir()
	parent := filepath.Join(dir, "parent.vhd")
	d, err := Create(parent, &vdisk.CreateOptions{Type: vdisk.TypeDynamic, Size: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	d.Close()
	mem := testfile.NewMem()
	d, err = CreateFile(mem, filepath.Join(dir, "child.vhd"),
		&vdisk.CreateOptions{Parent: parent, BlockSize: 64 << 10})
	if err != nil {
		f.Fatal(err)
	}
	d.WriteAt([]byte("child"), 70000)
	d.Close()
	return mem.Bytes()
}

// fixChecksums recomputes the checksums of the footers at the end and
// at 0 and of the dynamic header the end footer points at, so mutations
// of the fields behind them reach the placement rules and the I/O paths
// instead of stopping at a checksum.
func fixChecksums(b []byte) {
	fix := func(s []byte, at int) {
		be.PutUint32(s[at:], checksum(s, at))
	}
	if len(b) >= FooterSize {
		fix(b[len(b)-FooterSize:], footerOffChecksum)
		ft, _ := ParseFooter(b[len(b)-FooterSize:])
		if do := ft.DataOffset; do <= uint64(len(b)) &&
			uint64(len(b))-do >= HeaderSize {
			fix(b[do:do+HeaderSize], headerOffChecksum)
		}
	}
	if len(b) >= FooterSize+HeaderSize {
		fix(b[:FooterSize], footerOffChecksum)
	}
}

// FuzzOpenWrite opens whole files whose checksums are made valid, then
// reads, maps and writes at a few places and reads the writes back.
// Every failure must be typed; no write may be lost.
func FuzzOpenWrite(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		if len(b) <= 1<<20 {
			f.Add(b, int64(1000), uint16(3000))
		}
	}
	noFiles := func(string, bool) (vdisk.File, error) { return nil, fs.ErrNotExist }
	f.Fuzz(func(t *testing.T, b []byte, off int64, n uint16) {
		b = append([]byte(nil), b...)
		fixChecksums(b)
		mem := testfile.FromBytes(b)
		opts := &vdisk.OpenOptions{OpenFile: noFiles}
		if _, err := Check(mem, "", opts); err != nil {
			t.Fatalf("Check: %v", err)
		}
		d, err := OpenFile(mem, "", opts)
		if err != nil {
			if !errors.Is(err, vdisk.ErrCorrupt) &&
				!errors.Is(err, vdisk.ErrParentNotFound) {
				t.Fatalf("Open: untyped error %v", err)
			}
			return
		}
		defer d.Close()
		size := d.Size()
		if _, err := d.Map(0, min(size, 64<<20)); err != nil {
			wantCorrupt(t, err)
		}
		if size == 0 || size > 1<<40 {
			return
		}
		off = off % size
		if off < 0 {
			off += size
		}
		p := bytes.Repeat([]byte{0xA7}, int(min(int64(n), size-off, 1<<20)))
		if _, err := d.WriteAt(p, off); err != nil {
			if !errors.Is(err, vdisk.ErrCorrupt) &&
				!errors.Is(err, vdisk.ErrInvalidArgument) {
				t.Fatalf("WriteAt(%d, %d): %v", off, len(p), err)
			}
			return
		}
		got := make([]byte, len(p))
		if _, err := d.ReadAt(got, off); err != nil && err != io.EOF {
			t.Fatalf("ReadAt after write: %v", err)
		}
		if !bytes.Equal(got, p) {
			t.Fatalf("write at %d of %d bytes not read back", off, len(p))
		}
	})
}
