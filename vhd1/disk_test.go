package vhd1

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/vhdkit/vhd/internal/testfile"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// TestCHS checks the geometry algorithm against the examples of
// FORMATS.md 2.4.
func TestCHS(t *testing.T) {
	for _, tc := range []struct {
		size int64
		g    Geometry
		chs  int64
	}{
		{536870912, Geometry{1040, 16, 63}, 536739840},
		{10485760, Geometry{301, 4, 17}, 10479616},
		{10514432, Geometry{302, 4, 17}, 10514432},
		{104865792, Geometry{1004, 12, 17}, 104865792},
		{34361303040, Geometry{16449, 16, 255}, 34361303040},
		{137438953472, Geometry{65535, 16, 255}, 136899993600},
		{136365211648, Geometry{65278, 16, 255}, 136363130880},
	} {
		if g := CHS(tc.size); g != tc.g || g.Size() != tc.chs {
			t.Errorf("CHS(%d) = %v (%d bytes), want %v (%d)", tc.size, g,
				g.Size(), tc.g, tc.chs)
		}
	}
}

func TestDetect(t *testing.T) {
	dyn, fixed := sampleDynamic(t), fixedSample(t)
	old := fixed[:len(fixed)-1]
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"dynamic", dyn, true},
		{"fixed", fixed, true},
		{"511-byte footer", old, true},
		{"raw", make([]byte, 4096), false},
		{"tiny", []byte("conectix"), false},
		{"empty", nil, false},
	} {
		if got := Detect(bytes.NewReader(tc.b), int64(len(tc.b))); got != tc.want {
			t.Errorf("%s: Detect = %v", tc.name, got)
		}
	}
}

// TestAccessRules checks the contract's edge cases: EOF past the end,
// out-of-range writes, read-only and closed disks.
func TestAccessRules(t *testing.T) {
	for _, b := range [][]byte{sampleDynamic(t), fixedSample(t)} {
		mem := testfile.FromBytes(b)
		mem.ReadOnly = true // any write to the file fails the test below
		d, err := OpenFile(mem, "", &vdisk.OpenOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		size := d.Size()
		buf := make([]byte, 1024)
		if n, err := d.ReadAt(buf, size-100); n != 100 || err != io.EOF {
			t.Errorf("read across the end = %d, %v", n, err)
		}
		if n, err := d.ReadAt(buf, size); n != 0 || err != io.EOF {
			t.Errorf("read at the end = %d, %v", n, err)
		}
		if _, err := d.ReadAt(buf, -1); !errors.Is(err, vdisk.ErrOutOfRange) {
			t.Errorf("read at -1: %v", err)
		}
		if _, err := d.WriteAt(buf, 0); !errors.Is(err, vdisk.ErrReadOnly) {
			t.Errorf("write to read-only disk: %v", err)
		}
		if _, err := d.Map(size-10, 20); !errors.Is(err, vdisk.ErrOutOfRange) {
			t.Errorf("map past the end: %v", err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := d.ReadAt(buf, 0); !errors.Is(err, vdisk.ErrClosed) {
			t.Errorf("read after close: %v", err)
		}
		if mem.Writes != 0 || mem.Syncs != 0 {
			t.Errorf("read-only disk wrote %d times, synced %d", mem.Writes, mem.Syncs)
		}

		rw, err := OpenFile(testfile.FromBytes(b), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rw.WriteAt(buf, size-100); !errors.Is(err, vdisk.ErrOutOfRange) {
			t.Errorf("write across the end: %v", err)
		}
		if _, err := rw.WriteAt(buf, -5); !errors.Is(err, vdisk.ErrOutOfRange) {
			t.Errorf("write at -5: %v", err)
		}
		rw.Close()
	}
}

// TestConcurrentAccess runs readers alongside a writer (run with -race).
// Readers check regions the writer never touches; the writer's regions
// are checked at the end.
func TestConcurrentAccess(t *testing.T) {
	mem := testfile.NewMem()
	d, err := CreateFile(mem, "", &vdisk.CreateOptions{Type: vdisk.TypeDynamic,
		Size: 16 << 20, BlockSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	stable := bytes.Repeat([]byte{0x42}, 1<<20)
	d.WriteAt(stable, 0) // block 0, read by the readers
	m := &model{size: d.Size()}
	m.write(0, stable)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 0))
			buf := make([]byte, 4096)
			for {
				select {
				case <-stop:
					return
				default:
				}
				off := rng.Int64N(1<<20 - 4096)
				if _, err := d.ReadAt(buf, off); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(buf, stable[:4096]) {
					t.Error("stable block changed under concurrent writes")
					return
				}
				d.Map(0, d.Size())
			}
		}()
	}
	for _, w := range randomWrites(d.Size()-(1<<20), 60, 5, 1) {
		w.off += 1 << 20
		if _, err := d.WriteAt(w.data, w.off); err != nil {
			t.Fatal(err)
		}
		m.write(w.off, w.data)
	}
	close(stop)
	wg.Wait()
	m.compareAt(t, "after concurrent writes", d)
}

// TestSectorRuns compares sectorRuns with a sector-by-sector walk over
// random bitmaps and ranges (MSB-first bits, FORMATS.md 2.8).
func TestSectorRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for it := range 2000 {
		bm := make([]byte, 16) // 128 sectors
		for i := range bm {
			switch rng.IntN(3) {
			case 0:
				bm[i] = 0xFF
			case 1:
				bm[i] = byte(rng.Uint32())
			}
		}
		in := rng.Int64N(128 * 512)
		n := rng.Int64N(128*512-in) + 1
		got := make([]bool, n)
		covered := in
		sectorRuns(bm, in, n, func(a, b int64, set bool) error {
			if a != covered || b <= a {
				t.Fatalf("it %d: run [%d, %d) after %d", it, a, b, covered)
			}
			for x := a; x < b; x++ {
				got[x-in] = set
			}
			covered = b
			return nil
		})
		if covered != in+n {
			t.Fatalf("it %d: runs end at %d, want %d", it, covered, in+n)
		}
		for x := in; x < in+n; x++ {
			s := x / 512
			want := bm[s/8]>>(7-s%8)&1 == 1
			if got[x-in] != want {
				t.Fatalf("it %d: byte %d (sector %d) = %v, want %v", it, x, s, got[x-in], want)
			}
		}
	}
}
