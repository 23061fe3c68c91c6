package vhdx

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vhdkit/vhd/internal/testfile"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// TestConcurrentReadWrite runs many readers over a stable region while
// a writer fills other blocks; run it with -race.
func TestConcurrentReadWrite(t *testing.T) {
	mem := testfile.NewMem()
	const size = 64 * miB
	d, err := CreateFile(mem, "", &vdisk.CreateOptions{Size: size, BlockSize: miB})
	if err != nil {
		t.Fatal(err)
	}
	stable := bytes.Repeat([]byte("stable!"), 8*miB/7)
	if _, err := d.WriteAt(stable, 0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			buf := make([]byte, 256*kiB)
			for range 200 {
				off := rng.Int64N(int64(len(stable) - len(buf)))
				n := 1 + rng.IntN(len(buf))
				if _, err := d.ReadAt(buf[:n], off); err != nil {
					errc <- err
					return
				}
				if !bytes.Equal(buf[:n], stable[off:off+int64(n)]) {
					errc <- errors.New("stable region changed under concurrent writes")
					return
				}
				if _, err := d.ReadAt(buf[:n], 32*miB+off); err != nil {
					errc <- err
					return
				}
				if _, err := d.Map(off, int64(n)); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := bytes.Repeat([]byte{byte(w + 1)}, 300*kiB)
			for i := range 20 {
				if _, err := d.WriteAt(p, 16*miB+int64(w)*24*miB+int64(i)*333*kiB); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, mem, "", nil)
}

// TestReadWriteEdges covers the ReadAt/WriteAt contract at the edges.
func TestReadWriteEdges(t *testing.T) {
	mem := testfile.NewMem()
	const size = 4*miB + 4096
	d, err := CreateFile(mem, "", &vdisk.CreateOptions{Size: size, BlockSize: miB, LogicalSectorSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	m := newModel(size)
	// Unaligned single bytes and a sector-straddling write.
	for _, w := range []struct {
		off int64
		p   []byte
	}{{1, []byte{7}}, {4095, []byte{1, 2}}, {miB - 3, []byte("across a block")}, {size - 1, []byte{9}}} {
		if n, err := d.WriteAt(w.p, w.off); err != nil || n != len(w.p) {
			t.Fatalf("write at %d: %d, %v", w.off, n, err)
		}
		m.write(w.p, w.off)
	}
	m.compareDisk(t, d)
	// Past the end.
	buf := make([]byte, 10)
	if n, err := d.ReadAt(buf, size-4); n != 4 || err != io.EOF {
		t.Errorf("read across the end: %d, %v", n, err)
	}
	if _, err := d.ReadAt(buf, size); err != io.EOF {
		t.Errorf("read at the end: %v", err)
	}
	if _, err := d.WriteAt(buf, size-4); !errors.Is(err, vdisk.ErrOutOfRange) {
		t.Errorf("write across the end: %v", err)
	}
	if _, err := d.Map(0, size+1); !errors.Is(err, vdisk.ErrOutOfRange) {
		t.Errorf("map past the end: %v", err)
	}
	// Zero writes into an unallocated block allocate nothing.
	before := d.Info().AllocatedBytes
	if _, err := d.WriteAt(make([]byte, miB), 2*miB); err != nil {
		t.Fatal(err)
	}
	if after := d.Info().AllocatedBytes; after != before {
		t.Errorf("zero write allocated: %d -> %d", before, after)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadAt(buf, 0); !errors.Is(err, vdisk.ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
	// Reopen read-only: content, map, and no writes.
	d, err = OpenFile(mem, "", &vdisk.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	m.compareDisk(t, d)
	exts, err := d.Map(0, size)
	if err != nil {
		t.Fatal(err)
	}
	want := []vdisk.ExtentState{vdisk.Data, vdisk.Unallocated, vdisk.Data}
	if len(exts) != 3 {
		t.Fatalf("extents %+v", exts)
	}
	for i, e := range exts {
		if e.State != want[i] {
			t.Errorf("extent %d: %+v", i, e)
		}
	}
	writes := mem.Writes
	if _, err := d.WriteAt(buf, 0); !errors.Is(err, vdisk.ErrReadOnly) {
		t.Errorf("write to read-only: %v", err)
	}
	d.Close()
	if mem.Writes != writes {
		t.Error("read-only disk was written")
	}
}

// TestCreateOptions rejects invalid options with ErrInvalidArgument.
func TestCreateOptions(t *testing.T) {
	for _, o := range []vdisk.CreateOptions{
		{Size: 0},
		{Size: 1 << 50},
		{Size: 1000},
		{Size: 4*miB + 512, LogicalSectorSize: 4096},
		{Size: miB, BlockSize: 3 * miB},
		{Size: miB, BlockSize: 512 * miB},
		{Size: miB, LogicalSectorSize: 1024},
		{Size: miB, PhysicalSectorSize: 2048},
		{Size: miB, Type: vdisk.TypeDifferencing},
		{Size: miB, Type: vdisk.TypeFixed, Parent: "x.vhdx"},
	} {
		_, err := CreateFile(testfile.NewMem(), "", &o)
		if !errors.Is(err, vdisk.ErrInvalidArgument) {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

// TestMaxSize creates and reopens 64 TiB disks with the smallest and
// largest block sizes (BAT of 512 MiB and 2 MiB).
func TestMaxSize(t *testing.T) {
	blocks := []uint32{256 * miB, 32 * miB}
	if !testing.Short() {
		blocks = append(blocks, miB)
	}
	for _, bs := range blocks {
		path := filepath.Join(t.TempDir(), "max.vhdx")
		d, err := Create(path, &vdisk.CreateOptions{Size: maxVirtualSize, BlockSize: bs})
		if err != nil {
			t.Fatal(err)
		}
		p := []byte("end of a 64 TiB disk")
		if _, err := d.WriteAt(p, maxVirtualSize-int64(len(p))); err != nil {
			t.Fatal(err)
		}
		d.Close()
		d, err = Open(path, &vdisk.OpenOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(p))
		if _, err := d.ReadAt(got, maxVirtualSize-int64(len(p))); err != nil || !bytes.Equal(got, p) {
			t.Errorf("block %d: read %q, %v", bs, got, err)
		}
		d.Close()
	}
}

// TestCommitSplitsEntries commits more pages than one log entry holds
// (every page of the 1 MiB BAT region): they go out as several entries
// and the file stays consistent.
func TestCommitSplitsEntries(t *testing.T) {
	mem := testfile.NewMem()
	d, err := CreateFile(mem, "", &vdisk.CreateOptions{Size: 64 * miB, BlockSize: miB})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt([]byte{1}, 0); err != nil {
		t.Fatal(err)
	}
	seq := d.logw.seq
	tx := &txn{d: d, pages: map[int64][]byte{}, bat: map[int64]batEntry{}}
	for off := int64(createBATOffset); off < createBATOffset+miB; off += 4 * kiB {
		if _, err := tx.page(off); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.setEntry(5, makeEntry(BlockZero, 0)); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	err = tx.commit()
	d.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	per := logMaxDataUpdates(createLogLength)
	if got, want := d.logw.seq-seq, uint64((256+per-1)/per); got != want {
		t.Errorf("%d entries, want %d", got, want)
	}
	crashed := mem.Crash()
	checkFile(t, crashed, "", nil)
	d2, err := OpenFile(crashed, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := d2.bat[5].state(); s != BlockZero {
		t.Errorf("entry 5 state %s after replay", s)
	}
	d2.Close()
}

// TestBlockStates reads a present block after rewriting its entry to
// each state that reads as zeros, the legacy UNMAPPED value 5 included
// (FORMATS.md 3.6), and checks Map and Check.
func TestBlockStates(t *testing.T) {
	img, content := validImage(t)
	if content[0] != 1 {
		t.Fatal("block 0 holds no data")
	}
	for _, s := range []BlockState{BlockUndefined, BlockZero, BlockUnmapped, blockUnmappedLegacy, BlockNotPresent} {
		t.Run(s.String(), func(t *testing.T) {
			b := append([]byte(nil), img...)
			e := batEntry(le.Uint64(b[createBATOffset:]))
			off := e.offset()
			if s == BlockZero || s == BlockNotPresent {
				off = 0
			}
			le.PutUint64(b[createBATOffset:], uint64(makeEntry(s, off)))
			d, err := OpenFile(newROFile(b), "", &vdisk.OpenOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			got := make([]byte, miB)
			if _, err := d.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if !allZero(got) {
				t.Error("block does not read as zeros")
			}
			exts, err := d.Map(0, miB)
			if err != nil {
				t.Fatal(err)
			}
			want := vdisk.Zero
			if s == BlockNotPresent {
				want = vdisk.Unallocated
			}
			if len(exts) != 1 || exts[0].State != want {
				t.Errorf("map %+v, want one %s extent", exts, want)
			}
			fs, err := Check(newROFile(b), "", nil)
			if err != nil || hasError(fs) {
				t.Errorf("check: %+v, %v", fs, err)
			}
		})
	}
}
