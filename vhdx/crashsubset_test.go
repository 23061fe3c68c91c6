package vhdx

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/Microsoft/go-winio/pkg/guid"
	"github.com/vhdkit/vhd/internal/testfile"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// recOp is one mutating call seen by a recorder.
type recOp struct {
	kind string // "w", "t", "s"
	off  int64
	data []byte
}

// recorder is a Mem that logs every mutating call.
type recorder struct {
	*testfile.Mem
	ops []recOp
}

func (r *recorder) WriteAt(p []byte, off int64) (int, error) {
	r.ops = append(r.ops, recOp{"w", off, append([]byte(nil), p...)})
	return r.Mem.WriteAt(p, off)
}
func (r *recorder) Truncate(n int64) error {
	r.ops = append(r.ops, recOp{kind: "t", off: n})
	return r.Mem.Truncate(n)
}
func (r *recorder) Sync() error {
	r.ops = append(r.ops, recOp{kind: "s"})
	return r.Mem.Sync()
}

func applyOps(img []byte, ops []recOp) []byte {
	m := testfile.FromBytes(img)
	for _, o := range ops {
		switch o.kind {
		case "w":
			m.WriteAt(o.data, o.off)
		case "t":
			m.Truncate(o.off)
		}
	}
	return m.Bytes()
}

// crashImages calls fn with each image a crash during ops could leave,
// starting from img: every synced prefix plus, between two syncs, every
// prefix, every single call and every set missing one call; last is set
// for the final image (all of ops applied). Images are made one at a
// time, so memory stays at a few images whatever the number of ops.
func crashImages(img []byte, ops []recOp, fn func(i, n int, ci []byte)) {
	n := 0
	start := 0
	for i := 0; i <= len(ops); i++ {
		if i < len(ops) && ops[i].kind != "s" {
			continue
		}
		n += 1 + 3*(i-start)
		start = i + 1
	}
	idx := 0
	emit := func(ci []byte) { fn(idx, n, ci); idx++ }
	base := img
	start = 0
	for i := 0; i <= len(ops); i++ {
		if i < len(ops) && ops[i].kind != "s" {
			continue
		}
		pend := ops[start:i]
		for k := 0; k <= len(pend); k++ {
			emit(applyOps(base, pend[:k]))
		}
		for k := range pend {
			emit(applyOps(base, pend[k:k+1]))
			rest := append(append([]recOp(nil), pend[:k]...), pend[k+1:]...)
			emit(applyOps(base, rest))
		}
		base = applyOps(base, pend)
		start = i + 1
	}
}

type crashAction struct {
	off  int64
	data []byte
	id   *GUID
}

// TestCrashSubsets checks, for write sequences on dynamic and
// differencing disks, every image a crash could leave (see crashImages):
// each opens, checks clean, reads every sector as old or new, and keeps
// what was synced. It is single-goroutine and about 20 times slower
// under the race detector, so `make test` runs it in a second pass
// without it.
func TestCrashSubsets(t *testing.T) {
	if raceEnabled {
		t.Skip("runs without -race: make test's second pass (go test -run TestCrashSubsets ./vhdx)")
	}
	type scen struct {
		name   string
		lss    uint32
		bs     uint32
		parent bool
		noSync bool // every action allocates, so WriteAt alone makes it durable
		acts   []crashAction
	}
	rep := func(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }
	id1 := GUID{1, 2, 3}
	scens := []scen{
		{"diff4096-straddle", 4096, miB, true, false, []crashAction{
			{off: miB - 4096*2 - 5, data: rep(0x11, 3*4096+700)},
			{off: 3*miB + 100, data: rep(0x22, 10)},
			{id: &id1},
			{off: 0, data: rep(0x33, 2*miB+4096)},
		}},
		{"dyn4096-straddle", 4096, miB, false, false, []crashAction{
			{off: 2*miB - 9000, data: rep(0x44, 20000)},
			{id: &id1},
			{off: 2*miB - 100, data: rep(0x55, 200)},
		}},
		{"dyn-session", 512, miB, false, true, []crashAction{
			{off: 100, data: rep(0x71, 5000)},
			{off: 3*miB - 10, data: rep(0x72, 20)},
			{off: 7 * miB, data: rep(0x73, 512)},
		}},
		{"diff-session", 4096, miB, true, true, []crashAction{
			{off: 4096, data: rep(0x74, 4096)},
			{off: 3 * 4096, data: rep(0x75, 4096)},
			{off: 2*miB - 4096, data: rep(0x76, 8192)},
			{off: 5 * 4096, data: rep(0x77, 4096)},
		}},
		{"diff512", 512, miB, true, false, []crashAction{
			{off: 5*miB - 512, data: rep(0x66, 1024)},
			{off: 5*miB + 1000, data: rep(0x67, 3)},
			{id: &id1},
		}},
	}
	for _, sc := range scens {
		t.Run(sc.name, func(t *testing.T) {
			dir := t.TempDir()
			const size = 8 * miB
			pm := newModel(size)
			var opts func() *vdisk.OpenOptions = func() *vdisk.OpenOptions { return nil }
			var img []byte
			if sc.parent {
				ppath := filepath.Join(dir, "p.vhdx")
				p, err := Create(ppath, &vdisk.CreateOptions{Size: size, BlockSize: sc.bs, LogicalSectorSize: sc.lss})
				if err != nil {
					t.Fatal(err)
				}
				for i := int64(0); i < size; i += 3 * 65536 {
					b := rep(byte(i/65536)|0x80, 4096*3)
					p.WriteAt(b, i)
					pm.write(b, i)
				}
				p.Close()
				pimg, _ := os.ReadFile(ppath)
				cpath := filepath.Join(dir, "c.vhdx")
				c, err := Create(cpath, &vdisk.CreateOptions{Parent: ppath})
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				img, _ = os.ReadFile(cpath)
				opts = func() *vdisk.OpenOptions {
					return &vdisk.OpenOptions{Parent: vdisk.ParentPolicy{Path: ppath},
						OpenFile: func(string, bool) (vdisk.File, error) { return newROFile(pimg), nil }}
				}
			} else {
				mem := testfile.NewMem()
				d, err := CreateFile(mem, "", &vdisk.CreateOptions{Size: size, BlockSize: sc.bs, LogicalSectorSize: sc.lss})
				if err != nil {
					t.Fatal(err)
				}
				d.Close()
				img = mem.Bytes()
			}
			rec := &recorder{Mem: testfile.FromBytes(img)}
			d, err := OpenFile(rec, "", opts())
			if err != nil {
				t.Fatal(err)
			}
			cur := img
			curModel := pm.clone()
			curID := d.meta.VirtualDiskID
			for ai, a := range sc.acts {
				rec.ops = nil
				next := curModel.clone()
				nextID := curID
				if a.id != nil {
					if err := d.SetVirtualDiskID(guid.FromWindowsArray(*a.id)); err != nil {
						t.Fatal(err)
					}
					nextID = *a.id
				} else {
					if _, err := d.WriteAt(a.data, a.off); err != nil {
						t.Fatal(err)
					}
					next.write(a.data, a.off)
				}
				if !sc.noSync {
					if err := d.Sync(); err != nil {
						t.Fatal(err)
					}
				}
				oldB := make([]byte, size)
				curModel.read(oldB, 0)
				newB := make([]byte, size)
				next.read(newB, 0)
				crashImages(cur, rec.ops, func(ii, nimg int, ci []byte) {
					what := fmt.Sprintf("action %d image %d/%d", ai, ii, nimg)
					ro := testfile.FromBytes(ci)
					fs, err := Check(ro, "", opts())
					if err != nil {
						t.Fatalf("%s: check: %v", what, err)
					}
					for _, x := range fs {
						if x.Severity == vdisk.SeverityError {
							t.Errorf("%s: check: %s %s", what, x.Rule, x.Message)
						}
					}
					// A read-only open replays into memory; it must
					// read what the writable open below replays, and
					// write nothing.
					roOpts := &vdisk.OpenOptions{}
					if o := opts(); o != nil {
						*roOpts = *o
					}
					roOpts.ReadOnly = true
					rd, err := OpenFile(newROFile(ci), "", roOpts)
					if err != nil {
						t.Fatalf("%s: read-only reopen: %v", what, err)
					}
					roGot := make([]byte, size)
					if _, err := rd.ReadAt(roGot, 0); err != nil {
						t.Fatal(err)
					}
					roID := rd.meta.VirtualDiskID
					rd.Close()
					f := testfile.FromBytes(ci)
					cd, err := OpenFile(f, "", opts())
					if err != nil {
						t.Fatalf("%s: reopen: %v", what, err)
					}
					got := make([]byte, size)
					if _, err := cd.ReadAt(got, 0); err != nil {
						t.Fatal(err)
					}
					gid := cd.meta.VirtualDiskID
					cd.Close()
					if !bytes.Equal(roGot, got) || roID != gid {
						t.Fatalf("%s: read-only open reads other data "+
							"than a writable open", what)
					}
					if gid != curID && gid != nextID {
						t.Errorf("%s: id %v neither old nor new", what, gid)
					}
					for s := int64(0); s < size; s += 512 {
						g := got[s : s+512]
						if !bytes.Equal(g, oldB[s:s+512]) && !bytes.Equal(g, newB[s:s+512]) {
							t.Fatalf("%s: sector at %d neither old nor new", what, s)
						}
					}
					if ii == nimg-1 || bytes.Equal(ci, rec.Mem.Bytes()) {
						if !bytes.Equal(got, newB) || gid != nextID {
							t.Fatalf("%s: synced state lost", what)
						}
					}
				})
				cur = rec.Mem.Bytes()
				curModel, curID = next, nextID
			}
			d.Close()
		})
	}
}
