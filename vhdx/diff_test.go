package vhdx

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdkit/vhd/internal/testutil"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// writeRandom writes n scattered random ranges to d and m.
func writeRandom(t *testing.T, d *Disk, m *model, rng *rand.Rand, n int, maxLen int64) {
	t.Helper()
	for _, w := range scatteredWrites(rng, m.size, n, maxLen) {
		rng.Shuffle(len(w.p), func(i, j int) { w.p[i], w.p[j] = w.p[j], w.p[i] })
		if _, err := d.WriteAt(w.p, w.off); err != nil {
			t.Fatalf("write [%d, +%d): %v", w.off, len(w.p), err)
		}
		m.write(w.p, w.off)
	}
}

// chain builds base <- sub/c1 <- c2 with different block sizes and
// random writes at every level; it returns the paths and the models.
func chain(t *testing.T, lss uint32) ([3]string, [3]*model) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	paths := [3]string{filepath.Join(dir, "base.vhdx"),
		filepath.Join(dir, "sub", "c1.vhdx"), filepath.Join(dir, "c2.vhdx")}
	blocks := [3]uint32{2 * miB, 1 * miB, 4 * miB}
	const size = 24*miB + 8192
	var models [3]*model
	rng := rand.New(rand.NewPCG(uint64(lss), 3))
	for lvl := range 3 {
		o := &vdisk.CreateOptions{Size: size, BlockSize: blocks[lvl], LogicalSectorSize: lss}
		m := newModel(size)
		if lvl > 0 {
			o = &vdisk.CreateOptions{Type: vdisk.TypeDifferencing, Parent: paths[lvl-1], BlockSize: blocks[lvl]}
			m = models[lvl-1].clone()
		}
		d, err := Create(paths[lvl], o)
		if err != nil {
			t.Fatal(err)
		}
		m.compareDisk(t, d)
		writeRandom(t, d, m, rng, 12, 3*miB)
		m.compareDisk(t, d)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		models[lvl] = m
	}
	return paths, models
}

func TestDifferencingChain(t *testing.T) {
	for _, lss := range []uint32{512, 4096} {
		t.Run(map[uint32]string{512: "512", 4096: "4096"}[lss], func(t *testing.T) {
			paths, models := chain(t, lss)
			for lvl := range 3 {
				d, err := Open(paths[lvl], &vdisk.OpenOptions{ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				models[lvl].compareDisk(t, d)
				checkMap(t, d, lvl)
				info := d.Info()
				if lvl > 0 && (info.Type != vdisk.TypeDifferencing || info.Parent == nil || info.ID != info.Parent.ID) {
					t.Errorf("level %d info: type %s parent %v id %s", lvl, info.Type, info.Parent, info.ID)
				}
				if lvl > 0 && countState(d, BlockPartiallyPresent) == 0 {
					t.Errorf("level %d has no partially present block", lvl)
				}
				d.Close()
				checkFindings(t, paths[lvl])
				if !testing.Short() || lvl == 2 {
					size, sum := pyvhdiChainSHA(t, paths[:lvl+1])
					if size != models[lvl].size || sum != models[lvl].sha256() {
						t.Errorf("libvhdi reads level %d as %d bytes %s, want %s", lvl, size, sum, models[lvl].sha256())
					}
				}
			}
			// Reopen the top writable and write again.
			d, err := Open(paths[2], nil)
			if err != nil {
				t.Fatal(err)
			}
			writeRandom(t, d, models[2], rand.New(rand.NewPCG(9, 9)), 8, 2*miB)
			models[2].compareDisk(t, d)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			d, err = Open(paths[2], &vdisk.OpenOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			models[2].compareDisk(t, d)
			d.Close()
			checkFindings(t, paths[2])
		})
	}
}

// checkMap checks that Map covers the disk exactly, that data extents
// name a file in the chain, and that reading each extent's bytes from
// the file at its depth gives the disk's content.
func checkMap(t *testing.T, d *Disk, depth int) {
	t.Helper()
	exts, err := d.Map(0, d.Size())
	if err != nil {
		t.Fatal(err)
	}
	files := []*Disk{d}
	for p := d.parent; p != nil; p = p.parent {
		files = append(files, p)
	}
	if len(files) != depth+1 {
		t.Fatalf("chain length %d, want %d", len(files), depth+1)
	}
	next := int64(0)
	for _, e := range exts {
		if e.Offset != next || e.Length <= 0 {
			t.Fatalf("extent %+v does not continue at %d", e, next)
		}
		next = e.End()
		if e.State != vdisk.Data {
			continue
		}
		if e.Depth > depth || e.FileOffset < headerSectionSize {
			t.Fatalf("data extent %+v", e)
		}
		n := min(e.Length, 64*kiB)
		got, want := make([]byte, n), make([]byte, n)
		if _, err := files[e.Depth].f.ReadAt(got, e.FileOffset); err != nil {
			t.Fatal(err)
		}
		if _, err := d.ReadAt(want, e.Offset); err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("extent %+v: file bytes differ from disk content", e)
		}
	}
	if next != d.Size() {
		t.Fatalf("extents end at %d, size %d", next, d.Size())
	}
}

func TestParentErrors(t *testing.T) {
	paths, _ := chain(t, 512)

	// Relative path broken: the absolute path finds it only when allowed.
	moved := filepath.Join(t.TempDir(), "c2.vhdx")
	if err := os.Rename(paths[2], moved); err != nil {
		t.Fatal(err)
	}
	_, err := Open(moved, &vdisk.OpenOptions{ReadOnly: true})
	if !errors.Is(err, vdisk.ErrParentNotFound) {
		t.Fatalf("moved child: %v, want ErrParentNotFound", err)
	}
	if !strings.Contains(err.Error(), filepath.Join(filepath.Dir(moved), "sub", "c1.vhdx")) {
		t.Errorf("error does not list the relative candidate: %v", err)
	}
	d, err := Open(moved, &vdisk.OpenOptions{ReadOnly: true, Parent: vdisk.ParentPolicy{AllowAbsolute: true}})
	if err != nil {
		t.Fatalf("AllowAbsolute: %v", err)
	}
	d.Close()
	d, err = Open(moved, &vdisk.OpenOptions{ReadOnly: true, Parent: vdisk.ParentPolicy{Path: paths[1]}})
	if err != nil {
		t.Fatalf("Parent.Path: %v", err)
	}
	d.Close()

	// A parent that is not the child's parent.
	_, err = Open(moved, &vdisk.OpenOptions{ReadOnly: true, Parent: vdisk.ParentPolicy{Path: paths[0]}})
	if !errors.Is(err, vdisk.ErrParentMismatch) {
		t.Fatalf("wrong parent: %v, want ErrParentMismatch", err)
	}

	// Writing the base changes its DataWriteGuid: c1 no longer matches.
	b, err := Open(paths[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.WriteAt([]byte{1}, 0); err != nil {
		t.Fatal(err)
	}
	b.Close()
	_, err = Open(paths[1], &vdisk.OpenOptions{ReadOnly: true})
	if !errors.Is(err, vdisk.ErrParentMismatch) {
		t.Fatalf("modified parent: %v, want ErrParentMismatch", err)
	}

	// Missing base.
	if err := os.Remove(paths[0]); err != nil {
		t.Fatal(err)
	}
	_, err = Open(paths[1], &vdisk.OpenOptions{ReadOnly: true})
	if !errors.Is(err, vdisk.ErrParentNotFound) || !strings.Contains(err.Error(), paths[0]) {
		t.Fatalf("missing parent: %v", err)
	}
}

// countState counts payload blocks in state s.
func countState(d *Disk, s BlockState) int {
	n := 0
	for k := range d.geo.dataBlocks {
		if d.bat[d.geo.payloadIndex(k)].state() == s {
			n++
		}
	}
	return n
}

// pyvhdiChainSHA reads a chain (base first) with libvhdi, linking each
// file to its parent with set_parent, and hashes the top's content.
func pyvhdiChainSHA(t testing.TB, paths []string) (int64, string) {
	t.Helper()
	py := pyvhdiPython(t)
	script := `
import hashlib, sys, pyvhdi
files = []
for p in sys.argv[1:]:
    f = pyvhdi.file()
    f.open(p)
    if files:
        f.set_parent(files[-1])
    files.append(f)
f = files[-1]
size = f.get_media_size()
h = hashlib.sha256()
off = 0
while off < size:
    b = f.read_buffer_at_offset(min(4 << 20, size - off), off)
    if not b:
        raise SystemExit("short read at %d" % off)
    h.update(b)
    off += len(b)
print(size, h.hexdigest())
`
	out := testutil.Run(t, py, append([]string{"-c", script}, paths...)...)
	var size int64
	var sum string
	if _, err := fmt.Sscan(string(out), &size, &sum); err != nil {
		t.Fatalf("pyvhdi output %q: %v", out, err)
	}
	return size, sum
}
