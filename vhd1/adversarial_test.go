package vhd1

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vhdkit/vhd/internal/testfile"
	"github.com/vhdkit/vhd/internal/testutil"
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

// setBAT stores entry i of the BAT at 1536 (the layout we create).
func setBAT(b []byte, i int, v uint32) { be.PutUint32(b[1536+4*i:], v) }

// TestHostileValues opens files whose fields are hostile. Each must
// either fail with ErrCorrupt or open and serve reads, Map and Info
// without panicking; Check must run without error.
func TestHostileValues(t *testing.T) {
	good := sampleDynamic(t) // 5 MiB, blocks 0 and 2 allocated
	n := len(good)
	type tc struct {
		name    string
		mut     func(b []byte) []byte
		corrupt bool
	}
	hdr := func(fn func(h *DynamicHeader)) func(b []byte) []byte {
		return func(b []byte) []byte { patchHeader(t, b, fn); return b }
	}
	ftr := func(fn func(f *Footer)) func(b []byte) []byte {
		return func(b []byte) []byte { patchFooters(t, b, fn); return b }
	}
	cases := []tc{
		{"max table entries 2^32-1", hdr(func(h *DynamicHeader) {
			h.MaxTableEntries = 0xFFFFFFFF
		}), true},
		{"table offset 0", hdr(func(h *DynamicHeader) { h.TableOffset = 0 }), true},
		{"table offset on the header", hdr(func(h *DynamicHeader) {
			h.TableOffset = 512
		}), true},
		{"table offset on the end footer", hdr(func(h *DynamicHeader) {
			h.TableOffset = uint64(n - 512)
		}), true},
		{"table offset 2^64-512", hdr(func(h *DynamicHeader) {
			h.TableOffset = 1<<64 - 512
		}), true},
		{"data offset on the end footer", ftr(func(f *Footer) {
			f.DataOffset = uint64(n - 512)
		}), true},
		{"data offset 2^64-512", ftr(func(f *Footer) {
			f.DataOffset = 1<<64 - 512
		}), true},
		{"data offset 0", ftr(func(f *Footer) { f.DataOffset = 0 }), true},
		{"BAT entry on the footer copy", func(b []byte) []byte {
			setBAT(b, 1, 0)
			return b
		}, true},
		{"BAT entry on the BAT", func(b []byte) []byte {
			setBAT(b, 1, 3)
			return b
		}, true},
		{"BAT entries overlap by a sector", func(b []byte) []byte {
			setBAT(b, 1, be.Uint32(b[1536:])+1)
			return b
		}, true},
		{"BAT entry on the end footer", func(b []byte) []byte {
			setBAT(b, 1, uint32(n/512-1))
			return b
		}, true},
		{"BAT entry 0xFFFFFFFE", func(b []byte) []byte {
			setBAT(b, 1, 0xFFFFFFFE)
			return b
		}, true},
		{"block size 2^31", hdr(func(h *DynamicHeader) {
			h.BlockSize = 1 << 31
		}), true},
		{"block size 2^31, nothing allocated", func(b []byte) []byte {
			patchHeader(t, b, func(h *DynamicHeader) { h.BlockSize = 1 << 31 })
			setBAT(b, 0, unused)
			setBAT(b, 2, unused)
			return b
		}, false},
		{"current size 2^63", ftr(func(f *Footer) { f.CurrentSize = 1 << 63 }), true},
		{"current size 2^64-512", ftr(func(f *Footer) {
			f.CurrentSize = 1<<64 - 512
		}), true},
		{"current size 2^62", ftr(func(f *Footer) { f.CurrentSize = 1 << 62 }), true},
		{"current size 0", ftr(func(f *Footer) { f.CurrentSize = 0 }), false},
		{"fixed, current size 2^62", ftr(func(f *Footer) {
			f.DiskType = DiskTypeFixed
			f.CurrentSize = 1 << 62
		}), true},
		{"0 bytes", func(b []byte) []byte { return nil }, true},
		{"511 zero bytes", func(b []byte) []byte { return make([]byte, 511) }, true},
		{"512 zero bytes", func(b []byte) []byte { return make([]byte, 512) }, true},
		{"512 bytes: the dynamic footer alone", func(b []byte) []byte {
			return b[n-512:]
		}, true},
		{"511 bytes: an old fixed footer of size 0", func(b []byte) []byte {
			f, _ := ParseFooter(b[n-512:])
			f.DiskType, f.CurrentSize, f.DataOffset = DiskTypeFixed, 0, 1<<64-1
			return f.Encode()[:511]
		}, false},
		{"512 bytes: a fixed footer of size 0", func(b []byte) []byte {
			f, _ := ParseFooter(b[n-512:])
			f.DiskType, f.CurrentSize, f.DataOffset = DiskTypeFixed, 0, 1<<64-1
			return f.Encode()
		}, false},
		{"footer only at 0, file of 1536 bytes", func(b []byte) []byte {
			return b[:1536]
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.mut(append([]byte(nil), good...))
			if _, err := Check(testfile.FromBytes(b), "", nil); err != nil {
				t.Errorf("Check: %v", err)
			}
			d, err := OpenFile(testfile.FromBytes(b), "",
				&vdisk.OpenOptions{ReadOnly: true})
			if err != nil {
				if !c.corrupt {
					t.Fatalf("Open: %v", err)
				}
				wantCorrupt(t, err)
				return
			}
			defer d.Close()
			if c.corrupt {
				t.Errorf("Open succeeded, want ErrCorrupt (size %d)", d.Size())
			}
			_ = d.Info()
			if _, err := d.Map(0, d.Size()); err != nil {
				t.Errorf("Map: %v", err)
			}
			buf := make([]byte, 4096)
			for _, off := range []int64{0, d.Size() / 2, d.Size() - 1} {
				if off < 0 {
					continue
				}
				if _, err := d.ReadAt(buf, off); err != nil && err != io.EOF {
					t.Errorf("ReadAt(%d): %v", off, err)
				}
			}
		})
	}
}

// TestParentLoop: A names B as its parent and B names A (each with the
// other's Unique Id). Open must stop with ErrCorrupt.
func TestParentLoop(t *testing.T) {
	dir := t.TempDir()
	pa, pb := filepath.Join(dir, "a.vhd"), filepath.Join(dir, "b.vhd")
	d, err := Create(pb, &vdisk.CreateOptions{Type: vdisk.TypeDynamic, Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err = Create(pa, &vdisk.CreateOptions{Parent: pb})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	a := fileBytes(t, pa)
	// b becomes a's twin pointing back at a: same locators shape,
	// its own Unique Id, Parent Unique Id = a's.
	b := append([]byte(nil), a...)
	idA := mustFooter(t, a).UniqueID
	idB := mustFooter(t, fileBytes(t, pb)).UniqueID
	patchFooters(t, b, func(f *Footer) { f.UniqueID = idB })
	patchHeader(t, b, func(h *DynamicHeader) {
		h.ParentUniqueID = idA
		h.setParentName("a.vhd")
	})
	replaceAll(t, b, encodeUTF16LE(`.\b.vhd`), encodeUTF16LE(`.\a.vhd`))
	if err := os.WriteFile(pb, b, 0o644); err != nil {
		t.Fatal(err)
	}
	opens := 0
	opts := &vdisk.OpenOptions{ReadOnly: true,
		OpenFile: func(p string, ro bool) (vdisk.File, error) {
			opens++
			return vdisk.OpenOSFile(p, ro)
		}}
	_, err = Open(pa, opts)
	wantCorrupt(t, err)
	if opens > 2*maxChain+2 {
		t.Errorf("%d opens for a loop of 2 files", opens)
	}
	fs := checkFile(t, pa, opts)
	if !hasRule(fs, "vhd.parent.open") {
		t.Errorf("Check findings %+v lack vhd.parent.open", fs)
	}
}

// replaceAll replaces every old with new (same length) in b.
func replaceAll(t *testing.T, b, old, new []byte) {
	t.Helper()
	if len(old) != len(new) || !bytes.Contains(b, old) {
		t.Fatalf("%q not found or lengths differ", old)
	}
	copy(b, bytes.ReplaceAll(b, old, new))
}

// checkFile runs Check on path.
func checkFile(t *testing.T, path string, opts *vdisk.OpenOptions) []vdisk.Finding {
	t.Helper()
	f, err := vdisk.OpenOSFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs, err := Check(f, path, opts)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return fs
}

// TestParentCandidatesNotExponential: at every level of a chain the
// W2ru locator names a decoy (a valid chain with the wrong Unique Id)
// and the Parent Unicode Name names the real parent. Opening must not
// open the decoy's whole chain at every level (2^depth opens): a
// candidate's identity is checked before its own parents are opened.
func TestParentCandidatesNotExponential(t *testing.T) {
	const depth = 14
	dir := t.TempDir()
	name := func(c byte, k int) string {
		return filepath.Join(dir, fmt.Sprintf("%c%02d.vhd", c, k))
	}
	d, err := Create(name('b', depth), &vdisk.CreateOptions{
		Type: vdisk.TypeDynamic, Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	for k := depth - 1; k >= 0; k-- {
		d, err := Create(name('b', k), &vdisk.CreateOptions{Parent: name('b', k+1)})
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
	}
	for k := 0; k <= depth; k++ {
		b := fileBytes(t, name('b', k))
		if k < depth {
			rel := fmt.Sprintf(`.\%c%02d.vhd`, 'b', k+1)
			decoy := fmt.Sprintf(`.\%c%02d.vhd`, 'a', k+1)
			replaceAll(t, b, encodeUTF16LE(rel), encodeUTF16LE(decoy))
		}
		if err := os.WriteFile(name('b', k), b, 0o644); err != nil {
			t.Fatal(err)
		}
		patchFooters(t, b, func(f *Footer) { f.UniqueID[0] ^= 0xFF })
		if err := os.WriteFile(name('a', k), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opens := 0
	opts := &vdisk.OpenOptions{ReadOnly: true,
		OpenFile: func(p string, ro bool) (vdisk.File, error) {
			opens++
			if opens > 10000 {
				return nil, errors.New("too many opens")
			}
			return vdisk.OpenOSFile(p, ro)
		}}
	d, err = Open(name('b', 0), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if opens > 4*(depth+1) {
		t.Errorf("%d opens for a chain of %d", opens, depth+1)
	}
	depthSeen := 0
	for p := d; p != nil; p = p.Parent() {
		depthSeen++
	}
	if depthSeen != depth+1 {
		t.Errorf("chain of %d disks, want %d", depthSeen, depth+1)
	}
}

// fileState is a file's bytes and modification time.
type fileState struct {
	b     []byte
	mtime time.Time
}

func stateOf(t *testing.T, paths ...string) []fileState {
	t.Helper()
	var out []fileState
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fileState{fileBytes(t, p), fi.ModTime()})
	}
	return out
}

// TestReadOnlyLeavesFiles opens every disk of a chain and a fixed disk
// read-only, reads, maps, checks and closes them: no byte and no
// modification time may change. A read-write child must not touch its
// parents either.
func TestReadOnlyLeavesFiles(t *testing.T) {
	dir := t.TempDir()
	paths, _ := chain(t, dir, 5<<20+512, 1<<20, 512)
	fixed := filepath.Join(dir, "fixed.vhd")
	createWithWrites(t, fixed, &vdisk.CreateOptions{Type: vdisk.TypeFixed,
		Size: 3<<20 + 512}, scatteredWrites(3<<20+512, 3))
	all := append(append([]string(nil), paths...), fixed)
	// Make the mtimes old, so a rewrite is visible at any clock grain.
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, p := range all {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	before := stateOf(t, all...)
	for _, p := range all {
		d, err := Open(p, &vdisk.OpenOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, d, d.Size())
		d.Info()
		if _, err := d.Map(0, d.Size()); err != nil {
			t.Fatal(err)
		}
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		checkFile(t, p, nil)
	}
	// A read-write child: the parents stay as they were.
	d, err := Open(paths[2], nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt([]byte("child"), 12345); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	after := stateOf(t, all...)
	for i, p := range all {
		if i == 2 {
			continue
		}
		if !bytes.Equal(before[i].b, after[i].b) {
			t.Errorf("%s: bytes changed", p)
		}
		if !before[i].mtime.Equal(after[i].mtime) {
			t.Errorf("%s: mtime %v, was %v", p, after[i].mtime, before[i].mtime)
		}
	}
}

// TestCloseSyncError: Close and Sync report a failing flush.
func TestCloseSyncError(t *testing.T) {
	for _, b := range [][]byte{sampleDynamic(t), fixedSample(t)} {
		faulty := &testfile.Faulty{File: testfile.FromBytes(b)}
		d, err := OpenFile(faulty, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.WriteAt([]byte("x"), 0); err != nil {
			t.Fatal(err)
		}
		faulty.FailAt = faulty.Calls() + 1
		if err := d.Sync(); !errors.Is(err, testfile.ErrInjected) {
			t.Errorf("Sync: %v, want the injected fault", err)
		}
		if err := d.Close(); !errors.Is(err, testfile.ErrInjected) {
			t.Errorf("Close: %v, want the injected fault", err)
		}
	}
}

// TestConcurrentAllocation: many goroutines write distinct sectors of
// the same unallocated block at once. The block is allocated once and
// holds every write.
func TestConcurrentAllocation(t *testing.T) {
	for _, typ := range []string{"dynamic", "differencing"} {
		t.Run(typ, func(t *testing.T) {
			var d *Disk
			var mem *testfile.Mem
			var model []byte
			if typ == "dynamic" {
				d, mem = memDisk(t, &vdisk.CreateOptions{
					Type: vdisk.TypeDynamic, Size: 4 << 20})
				model = make([]byte, 4<<20)
			} else {
				paths, models := chain(t, t.TempDir(), 4<<20, 2<<20, 512)
				var err error
				d, err = Open(paths[2], nil)
				if err != nil {
					t.Fatal(err)
				}
				model = make([]byte, 4<<20)
				models[2].fill(model, 0)
				mem = nil
			}
			// Find an unallocated block.
			blk := -1
			for i, e := range d.bat {
				if e == unused {
					blk = i
					break
				}
			}
			if blk < 0 {
				t.Skip("no unallocated block")
			}
			sizeBefore, _ := d.f.Size()
			base := int64(blk) * int64(d.header.BlockSize)
			const g, piece = 32, 1000 // unaligned pieces
			var wg sync.WaitGroup
			for k := range g {
				p := bytes.Repeat([]byte{byte(k + 1)}, piece)
				off := base + int64(k)*piece*3 + 7
				copy(model[off:], p)
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := d.WriteAt(p, off); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			sizeAfter, _ := d.f.Size()
			want := sizeBefore + d.bmSize + int64(d.header.BlockSize)
			if sizeAfter != want {
				t.Errorf("file grew to %d, want %d (one block)", sizeAfter, want)
			}
			if !bytes.Equal(readAll(t, d, d.Size()), model) {
				t.Error("content differs from the model")
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if mem != nil {
				expectNoErrors(t, mem.Bytes())
			}
		})
	}
}

// TestHostileLocators damages the W2ru locator of a child in every way
// that could size an allocation or a read. Open falls back to the
// Parent Unicode Name and succeeds, allocating little; Check reports
// the locator.
func TestHostileLocators(t *testing.T) {
	dir := t.TempDir()
	parent, child := filepath.Join(dir, "p.vhd"), filepath.Join(dir, "c.vhd")
	createWithWrites(t, parent, &vdisk.CreateOptions{Type: vdisk.TypeDynamic,
		Size: 1 << 20}, nil)
	createWithWrites(t, child, &vdisk.CreateOptions{Parent: parent}, nil)
	good := fileBytes(t, child)
	n := uint64(len(good))
	for _, tc := range []struct {
		name string
		fn   func(l *ParentLocator)
	}{
		{"length 2^32-1", func(l *ParentLocator) { l.PlatformDataLength = 1<<32 - 1 }},
		{"space and length 2^32-512", func(l *ParentLocator) {
			l.PlatformDataSpace, l.PlatformDataLength = 1<<32-512, 1<<32-512
		}},
		{"space and length 2^32-512 at 0", func(l *ParentLocator) {
			l.PlatformDataSpace, l.PlatformDataLength = 1<<32-512, 1<<32-512
			l.PlatformDataOffset = 0
		}},
		{"space 2^32-1", func(l *ParentLocator) { l.PlatformDataSpace = 1<<32 - 1 }},
		{"offset 2^64-1", func(l *ParentLocator) { l.PlatformDataOffset = 1<<64 - 1 }},
		{"offset at the end footer", func(l *ParentLocator) { l.PlatformDataOffset = n - 512 }},
		{"offset 2^63", func(l *ParentLocator) { l.PlatformDataOffset = 1 << 63 }},
		{"length odd", func(l *ParentLocator) { l.PlatformDataLength = 3 }},
		{"length 0", func(l *ParentLocator) { l.PlatformDataLength = 0 }},
		{"space 0", func(l *ParentLocator) { l.PlatformDataSpace = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := append([]byte(nil), good...)
			patchHeader(t, b, func(h *DynamicHeader) {
				for i := range h.ParentLocators {
					if h.ParentLocators[i].PlatformCode == PlatformW2ru {
						tc.fn(&h.ParentLocators[i])
					}
				}
			})
			if err := os.WriteFile(child, b, 0o644); err != nil {
				t.Fatal(err)
			}
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			d, err := Open(child, &vdisk.OpenOptions{ReadOnly: true})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			d.Info()
			d.Close()
			fs := checkFile(t, child, nil)
			runtime.ReadMemStats(&ms1)
			if a := ms1.TotalAlloc - ms0.TotalAlloc; a > 32<<20 {
				t.Errorf("allocated %d bytes", a)
			}
			for _, f := range fs {
				if f.Severity == vdisk.SeverityError &&
					!strings.HasPrefix(f.Rule, "vhd.locator.") &&
					f.Rule != "vhd.bat.overlap" {
					t.Errorf("Check: %+v", f)
				}
			}
		})
	}
}

// TestAllocationKeptWrites walks every mutating step of an allocation
// like TestCrashAllocation, but the crash keeps every write issued so
// far (a disk may persist unsynced writes in any order; keeping all is
// one such order), with the footer copy at 0 intact and damaged. The
// file must reopen with the old or the new content.
//
// The first write of an allocation overwrites the old end footer with
// the new block's bitmap; until the new footer lands, the copy at 0 is
// the only footer. With a damaged copy the allocation must repair the
// copy first.
func TestAllocationKeptWrites(t *testing.T) {
	for _, damaged := range []bool{false, true} {
		base := sampleDynamic(t)
		if damaged {
			base[100] ^= 0xFF // a reserved byte: the checksum fails
		}
		before := readAllBytes(t, base)
		newData := bytes.Repeat([]byte{0xC3}, 3000)
		const newOff = 2<<20 + 1000 // block 1, unallocated
		for n := 1; ; n++ {
			if n > 20 {
				t.Fatal("allocation never completed")
			}
			mem := testfile.FromBytes(base)
			faulty := &testfile.Faulty{File: mem, FailAt: n}
			d, err := OpenFile(faulty, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			_, werr := d.WriteAt(newData, newOff)
			r, err := OpenFile(testfile.FromBytes(mem.Bytes()), "",
				&vdisk.OpenOptions{ReadOnly: true})
			if err != nil {
				t.Fatalf("damaged copy %v, step %d: reopen: %v", damaged, n, err)
			}
			got := readAll(t, r, r.Size())
			want := append([]byte(nil), before...)
			if !bytes.Equal(got, want) {
				copy(want[newOff:], newData)
				if !bytes.Equal(got, want) {
					t.Fatalf("damaged copy %v, step %d: content is neither "+
						"old nor new", damaged, n)
				}
			}
			if werr == nil {
				break
			}
		}
	}
}

// TestFixedOver4GiB: a sparse fixed disk of 5 GiB + 1536 bytes with
// writes around 2 GiB, 4 GiB and the last byte reads the same in qemu-io
// and libvhdi (offsets past 32 bits), and its size is exact in both.
func TestFixedOver4GiB(t *testing.T) {
	const size = 5<<30 + 3*512
	path := filepath.Join(t.TempDir(), "f.vhd")
	offs := []int64{2<<30 - 3, 4<<30 - 100, size - 1000}
	var ws []modelWrite
	for i, off := range offs {
		ws = append(ws, modelWrite{off, bytes.Repeat([]byte{byte(0x51 + i)}, 1000)})
	}
	createWithWrites(t, path, &vdisk.CreateOptions{Type: vdisk.TypeFixed,
		Size: size}, ws)
	d := openRO(t, path)
	if d.Size() != size {
		t.Fatalf("size %d", d.Size())
	}
	if got := qemuVirtualSize(t, path); got != size {
		t.Errorf("qemu size %d, want %d", got, size)
	}
	if got := vhdiinfoSize(t, path); got != size {
		t.Errorf("vhdiinfo size %d, want %d", got, size)
	}
	args := []string{"-f", "vpc"}
	for i, off := range offs {
		args = append(args, "-c", fmt.Sprintf("read -P 0x%x %d 1000", 0x51+i, off),
			"-c", fmt.Sprintf("read -P 0 %d 1000", off-1000))
	}
	out := testutil.Run(t, "qemu-io", append(args, path)...)
	if bytes.Contains(out, []byte("ail")) { // "Pattern verification failed"
		t.Errorf("qemu-io:\n%s", out)
	}
	buf := make([]byte, 2000)
	for i, off := range offs {
		if _, err := d.ReadAt(buf, off-1000); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !isZero(buf[:1000]) || !bytes.Equal(buf[1000:],
			bytes.Repeat([]byte{byte(0x51 + i)}, 1000)) {
			t.Errorf("our read at %d differs", off)
		}
	}
}
