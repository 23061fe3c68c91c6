package vhdx

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/vhdkit/vhd/internal/testfile"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// syncSnapshots wraps a Mem and keeps a crash image after every Sync.
type syncSnapshots struct {
	*testfile.Mem
	snaps []*testfile.Mem
}

func (s *syncSnapshots) Sync() error {
	if err := s.Mem.Sync(); err != nil {
		return err
	}
	s.snaps = append(s.snaps, s.Mem.Crash())
	return nil
}

// crashCase is a disk image in memory plus how to open it.
type crashCase struct {
	name  string
	img   []byte // durable image before the write
	opts  func() *vdisk.OpenOptions
	old   *model // content before the write
	write func(d *Disk) error
	off   int64 // the write's range
	data  []byte

	oldBytes, newBytes []byte // content before and after the write
}

func crashCases(t *testing.T) []crashCase {
	// Dynamic: data synced in block 0, then a write that allocates
	// block 3 (partially) and rewrites part of block 0.
	mem := testfile.NewMem()
	d, err := CreateFile(mem, "", &vdisk.CreateOptions{Size: 16 * miB, BlockSize: 2 * miB})
	if err != nil {
		t.Fatal(err)
	}
	old := newModel(16 * miB)
	first := bytes.Repeat([]byte{0xa5}, 3*miB)
	if _, err := d.WriteAt(first, 100); err != nil {
		t.Fatal(err)
	}
	old.write(first, 100)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	dyn := crashCase{name: "dynamic", img: mem.Bytes(), old: old,
		opts: func() *vdisk.OpenOptions { return nil },
		off:  6*miB + 4096 + 7, data: bytes.Repeat([]byte{0x3c}, 5*miB)}

	// Differencing: parent on disk, child in memory; a partial write
	// allocates a PARTIALLY_PRESENT block and its sector bitmap block.
	dir := t.TempDir()
	ppath := filepath.Join(dir, "p.vhdx")
	p, err := Create(ppath, &vdisk.CreateOptions{Size: 16 * miB, BlockSize: 1 * miB})
	if err != nil {
		t.Fatal(err)
	}
	pm := newModel(16 * miB)
	pdata := bytes.Repeat([]byte{0x77}, 16*miB)
	if _, err := p.WriteAt(pdata, 0); err != nil {
		t.Fatal(err)
	}
	pm.write(pdata, 0)
	p.Close()
	cpath := filepath.Join(dir, "c.vhdx")
	c, err := Create(cpath, &vdisk.CreateOptions{Parent: ppath})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	cimg, err := os.ReadFile(cpath)
	if err != nil {
		t.Fatal(err)
	}
	pimg, err := os.ReadFile(ppath)
	if err != nil {
		t.Fatal(err)
	}
	diffOpts := func() *vdisk.OpenOptions {
		return &vdisk.OpenOptions{
			Parent: vdisk.ParentPolicy{Path: ppath},
			OpenFile: func(path string, readOnly bool) (vdisk.File, error) {
				return newROFile(pimg), nil
			},
		}
	}
	diff := crashCase{name: "differencing", img: cimg, old: pm, opts: diffOpts,
		off: 3*miB + 512*3, data: bytes.Repeat([]byte{0x19}, 4096)}
	return []crashCase{dyn, diff}
}

// TestCrashEveryStep fails the n-th mutating call of a block-allocating
// write for every n, and separately crashes after every sync; each
// crashed image must open (replaying its log), pass Check, keep the
// previously synced data, and hold either the old or the new content
// of the write's range.
func TestCrashEveryStep(t *testing.T) {
	for _, c := range crashCases(t) {
		t.Run(c.name, func(t *testing.T) {
			want := c.old.clone()
			want.write(c.data, c.off)
			c.oldBytes = make([]byte, c.old.size)
			c.old.read(c.oldBytes, 0)
			c.newBytes = make([]byte, c.old.size)
			want.read(c.newBytes, 0)

			// Count the calls of an undisturbed run.
			probe := &testfile.Faulty{File: testfile.FromBytes(c.img)}
			d, err := OpenFile(probe, "", c.opts())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.WriteAt(c.data, c.off); err != nil {
				t.Fatal(err)
			}
			calls := probe.Calls()
			if calls < 8 {
				t.Fatalf("only %d mutating calls: nothing to walk", calls)
			}
			for n := 1; n <= calls+1; n++ {
				mem := testfile.FromBytes(c.img)
				d, err := OpenFile(&testfile.Faulty{File: mem, FailAt: n}, "", c.opts())
				if err != nil {
					t.Fatal(err)
				}
				_, werr := d.WriteAt(c.data, c.off)
				if (werr == nil) != (n > calls) {
					t.Fatalf("fail at %d of %d: write error %v", n, calls, werr)
				}
				verifyCrashed(t, mem.Crash(), c, want, werr == nil)
			}

			// Crash after each sync of an undisturbed run, Close included.
			snap := &syncSnapshots{Mem: testfile.FromBytes(c.img)}
			d, err = OpenFile(snap, "", c.opts())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.WriteAt(c.data, c.off); err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if len(snap.snaps) < 4 {
				t.Fatalf("only %d syncs", len(snap.snaps))
			}
			for i, img := range snap.snaps {
				verifyCrashed(t, img, c, want, false)
				_ = i
			}
		})
	}
}

// verifyCrashed checks a crashed image: Check (read-only, replaying in
// memory) finds no error, and a writable open replays the log and shows
// the old content with the write's range either old or new (new when
// mustBeNew).
func verifyCrashed(t *testing.T, img *testfile.Mem, c crashCase, want *model, mustBeNew bool) {
	t.Helper()
	before := img.Writes
	checkFile(t, img, "", c.opts())
	if img.Writes != before {
		t.Fatal("Check wrote the file")
	}
	d, err := OpenFile(img, "", c.opts())
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer d.Close()
	got := make([]byte, d.Size())
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	oldB, newB := c.oldBytes, c.newBytes
	lo, hi := c.off, c.off+int64(len(c.data))
	if !bytes.Equal(got[:lo], oldB[:lo]) || !bytes.Equal(got[hi:], oldB[hi:]) {
		t.Fatal("data outside the interrupted write changed")
	}
	// Inside the range, each block is old or new as a whole (the
	// allocation is atomic); an already present block may be torn by
	// an unsynced overwrite, which a crash permits, so compare per
	// sector there.
	for off := lo; off < hi; off += 512 {
		e := min(off+512, hi)
		g := got[off:e]
		if !bytes.Equal(g, newB[off:e]) && (mustBeNew || !bytes.Equal(g, oldB[off:e])) {
			t.Fatalf("byte range [%d, %d) is neither old nor new content", off, e)
		}
	}
	if mustBeNew {
		checkFile(t, img, "", c.opts())
	}
}

// TestLogWrapAround writes enough entries in one session to wrap the
// 1 MiB log ring, then crashes without Sync: replay must find the newest
// entry and the content must be intact. Each write sets one more sector
// bit of a PARTIALLY_PRESENT block of a differencing disk, so every
// write is one log entry while the file stays small.
func TestLogWrapAround(t *testing.T) {
	dir := t.TempDir()
	ppath, cpath := filepath.Join(dir, "p.vhdx"), filepath.Join(dir, "c.vhdx")
	p, err := Create(ppath, &vdisk.CreateOptions{Size: 8 * miB, BlockSize: miB})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	c, err := Create(cpath, &vdisk.CreateOptions{Parent: ppath})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	cimg, _ := os.ReadFile(cpath)
	pimg, _ := os.ReadFile(ppath)
	opts := &vdisk.OpenOptions{Parent: vdisk.ParentPolicy{Path: ppath},
		OpenFile: func(string, bool) (vdisk.File, error) { return newROFile(pimg), nil }}
	mem := testfile.FromBytes(cimg)
	d, err := OpenFile(mem, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	m := newModel(8 * miB)
	const n = 200 // 8 KiB entries: 128 fill the ring
	for i := range int64(n) {
		b := []byte{byte(i), 0xee}
		if _, err := d.WriteAt(b, 2*miB+i*1024); err != nil {
			t.Fatal(err)
		}
		m.write(b, 2*miB+i*1024)
	}
	if seq := d.logw.seq; seq < n {
		t.Fatalf("only %d log entries", seq)
	}
	crashed := mem.Crash()
	checkFile(t, crashed, "", opts)
	d2, err := OpenFile(crashed, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	if s := detail(d2.Info(), "log_state"); s != "replayed" {
		t.Errorf("log_state %q", s)
	}
	m.compareDisk(t, d2)
	d2.Close()
	checkFile(t, crashed, "", opts)
}
