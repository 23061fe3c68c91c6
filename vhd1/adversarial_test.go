package vhd1

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"io"
	"math/rand"
	"testing"

	"github.com/vhdkit/vhd/internal/testfile"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// memDisk creates a disk in memory and returns it with its file.
func memDisk(t *testing.T, o *vdisk.CreateOptions) (*Disk, *testfile.Mem) {
	t.Helper()
	mem := testfile.NewMem()
	d, err := CreateFile(mem, "", o)
	if err != nil {
		t.Fatalf("CreateFile(%+v): %v", o, err)
	}
	return d, mem
}

// TestOddBlockSizes writes random runs, unaligned and across block
// boundaries, into dynamic disks with block sizes from 512 B to 64 MiB
// and sizes that are not a multiple of the block size, and reads them
// back against a model, before and after reopening.
func TestOddBlockSizes(t *testing.T) {
	for _, tc := range []struct {
		bs   uint32
		size int64
	}{
		{512, 1<<20 + 512},
		{1024, 300 * 512},
		{2048, 301 * 512},
		{4096, 3<<20 + 512},
		{2 << 20, 3<<20 + 512},
		{64 << 20, 3<<20 + 512},
	} {
		d, mem := memDisk(t, &vdisk.CreateOptions{Type: vdisk.TypeDynamic,
			Size: tc.size, BlockSize: tc.bs})
		model := make([]byte, tc.size)
		rng := rand.New(rand.NewSource(int64(tc.bs)))
		for k := 0; k < 40; k++ {
			n := rng.Int63n(min(tc.size, 3*int64(tc.bs)+1000)) + 1
			off := rng.Int63n(tc.size - n + 1)
			if k == 0 {
				off, n = tc.size-1, 1 // the last byte
			}
			p := make([]byte, n)
			rng.Read(p)
			if w, err := d.WriteAt(p, off); err != nil || w != len(p) {
				t.Fatalf("bs %d: WriteAt(%d, %d) = %d, %v", tc.bs, off, n, w, err)
			}
			copy(model[off:], p)
		}
		if !bytes.Equal(readAll(t, d, tc.size), model) {
			t.Errorf("bs %d: content differs from the model", tc.bs)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		d2, err := OpenFile(testfile.FromBytes(mem.Bytes()), "",
			&vdisk.OpenOptions{ReadOnly: true})
		if err != nil {
			t.Fatalf("bs %d: reopen: %v", tc.bs, err)
		}
		if !bytes.Equal(readAll(t, d2, tc.size), model) {
			t.Errorf("bs %d: content differs after reopen", tc.bs)
		}
		fs, err := Check(testfile.FromBytes(mem.Bytes()), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.Severity == vdisk.SeverityError {
				t.Errorf("bs %d: Check: %+v", tc.bs, f)
			}
		}
	}
}

var _ = errors.Is
var _ = io.EOF

// TestOddBlockSizesInterop creates dynamic disks with block sizes of
// 512 B, 4 KiB and 64 MiB and sizes that are not a multiple of the block
// size, and checks that qemu-img, libvhdi and 7-Zip read our content.
//
// Blocks below 4 KiB need a 512-byte bitmap too (FORMATS.md 2.8:
// ceil((BlockSize/512)/8/512) sectors). 7-Zip reads them so; qemu 7.2
// computes a bitmap of 0 bytes and reads every block 512 bytes early,
// and libvhdi 20210425 refuses the bitmap size. The spec wins, so for
// 512-byte blocks only 7-Zip is asked.
//
// 64 MiB blocks use a 3 MiB disk only: libvhdi rereads the whole block
// for each 1 MiB read, which takes 40 s for a 100 MiB disk.
func TestOddBlockSizesInterop(t *testing.T) {
	for _, tc := range []struct {
		bs   uint32
		size int64
	}{
		{512, 3<<20 + 512},
		{4096, 3<<20 + 512},
		{4096, 5<<20 + 3*512},
		{64 << 20, 3<<20 + 512},
	} {
		t.Run(fmt.Sprintf("%d/%s", tc.bs, sizeName(tc.size)), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "d.vhd")
			m := createWithWrites(t, path, &vdisk.CreateOptions{
				Type: vdisk.TypeDynamic, Size: tc.size, BlockSize: tc.bs},
				scatteredWrites(tc.size, uint64(tc.bs)))
			m.compareAt(t, "vhd1", openRO(t, path))
			checkClean(t, path, nil)
			if tc.bs < 4096 {
				sevenZip(t, path, m)
				return
			}
			interop(t, path, m)
		})
	}
}

// TestBitmapSize checks FORMATS.md 2.8: one bit per sector, at least
// one sector of bitmap, even for blocks of fewer than 8 sectors.
func TestBitmapSize(t *testing.T) {
	for bs, want := range map[uint32]int64{
		512: 512, 1024: 512, 2048: 512, 4096: 512, 2 << 20: 512,
		4 << 20: 1024, 1 << 31: 512 << 10,
	} {
		if got := bitmapSize(bs); got != want {
			t.Errorf("bitmapSize(%d) = %d, want %d", bs, got, want)
		}
	}
}
