package vhd1

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vhdkit/vhd/internal/testutil"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// createWithWrites creates a disk, writes ws through WriteAt, closes it
// and returns the model of its content.
func createWithWrites(t *testing.T, path string, opts *vdisk.CreateOptions, ws []modelWrite) *model {
	t.Helper()
	d, err := Create(path, opts)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	m := &model{size: d.Size()}
	for _, w := range ws {
		if n, err := d.WriteAt(w.data, w.off); n != len(w.data) || err != nil {
			t.Fatalf("WriteAt(%d, %d) = %d, %v", w.off, len(w.data), n, err)
		}
		m.write(w.off, w.data)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCreateInterop creates fixed and dynamic disks, writes scattered
// data, and checks that we, qemu-img, libvhdi and 7-Zip all read the
// exact size and content.
func TestCreateInterop(t *testing.T) {
	sizes := []int64{1 << 20, 3<<20 + 512, 100 << 20, 2 << 30}
	for _, typ := range []vdisk.Type{vdisk.TypeFixed, vdisk.TypeDynamic} {
		for _, size := range sizes {
			t.Run(typ.String()+"/"+sizeName(size), func(t *testing.T) {
				if size > 1<<30 && testing.Short() {
					t.Skip("2 GiB disk skipped in -short mode")
				}
				dir := t.TempDir()
				path := filepath.Join(dir, "d.vhd")
				m := createWithWrites(t, path,
					&vdisk.CreateOptions{Type: typ, Size: size},
					scatteredWrites(size, uint64(size)))
				d := openRO(t, path)
				if d.Size() != size {
					t.Fatalf("size %d, want %d", d.Size(), size)
				}
				if d.Info().Type != typ {
					t.Fatalf("type %v", d.Info().Type)
				}
				m.compareAt(t, "vhd1", d)
				checkClean(t, path, nil)
				interop(t, path, m)
			})
		}
	}
}

// interop checks path with qemu-img, libvhdi (vhdiinfo and pyvhdi) and
// 7-Zip against the model.
func interop(t *testing.T, path string, m *model) {
	t.Helper()
	if got := qemuVirtualSize(t, path); got != m.size {
		t.Errorf("qemu-img virtual-size %d, want %d", got, m.size)
	}
	raw := filepath.Join(t.TempDir(), "model.raw")
	m.writeRaw(t, raw)
	testutil.Run(t, "qemu-img", "compare", "-f", "vpc", "-F", "raw", path, raw)
	os.Remove(raw)

	if got := vhdiinfoSize(t, path); got != m.size {
		t.Errorf("vhdiinfo media size %d, want %d", got, m.size)
	}
	want := m.sha()
	size, read, sha := pyvhdi(t, path)
	if size != m.size || read != m.size || sha != want {
		t.Errorf("pyvhdi: size %d, read %d, sha %s; want %d, %s",
			size, read, sha, m.size, want)
	}

	sevenZip(t, path, m)
}

// sevenZip checks that 7-Zip extracts the model's content from path.
func sevenZip(t *testing.T, path string, m *model) {
	t.Helper()
	testutil.Tool(t, "7zz")
	cmd := exec.Command("7zz", "e", "-so", path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.compare(t, "7zz e -so", out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("7zz: %v", err)
	}
}

func TestCreateOptions(t *testing.T) {
	dir := t.TempDir()
	bad := []vdisk.CreateOptions{
		{Type: vdisk.TypeFixed, Size: 1000},
		{Type: vdisk.TypeDynamic, Size: 0},
		{Type: vdisk.TypeDynamic, Size: MaxDynamicSize + 512},
		{Type: vdisk.TypeDynamic, Size: 1 << 20, BlockSize: 3 << 20},
		{Type: vdisk.TypeDynamic, Size: 1 << 20, BlockSize: 256},
		{Type: vdisk.TypeDynamic, Size: 1 << 20, LogicalSectorSize: 4096},
		{Type: vdisk.TypeDynamic, Size: 1 << 20, PhysicalSectorSize: 4096},
		{Type: vdisk.TypeDifferencing, Size: 1 << 20},
	}
	for i, o := range bad {
		path := filepath.Join(dir, "bad.vhd")
		_, err := Create(path, &o)
		if !errors.Is(err, vdisk.ErrInvalidArgument) {
			t.Errorf("case %d: err = %v, want ErrInvalidArgument", i, err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("case %d: failed Create left %s behind", i, path)
		}
	}

	// The largest dynamic disk, 2040 GiB, is accepted; its table is
	// exactly ceil(size/block) entries.
	path := filepath.Join(dir, "max.vhd")
	d, err := Create(path, &vdisk.CreateOptions{Type: vdisk.TypeDynamic,
		Size: MaxDynamicSize})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := d.Header()
	if h.MaxTableEntries != MaxDynamicSize/DefaultBlockSize {
		t.Errorf("max table entries %d", h.MaxTableEntries)
	}
	d.Close()

	// A fixed disk may be larger than 2040 GiB (sparse file).
	path = filepath.Join(dir, "bigfixed.vhd")
	d, err = Create(path, &vdisk.CreateOptions{Type: vdisk.TypeFixed,
		Size: 3 << 40})
	if err != nil {
		t.Skipf("3 TiB sparse file not possible here: %v", err)
	}
	if d.Size() != 3<<40 {
		t.Errorf("size %d", d.Size())
	}
	d.Close()
}

// TestCreatedFields checks the fields a new disk carries (FORMATS.md
// 2.2, 2.5): exact sizes, spec geometry, creator, version, features,
// data offsets, table size and padding.
func TestCreatedFields(t *testing.T) {
	dir := t.TempDir()
	size := int64(3<<20 + 512)
	for _, typ := range []vdisk.Type{vdisk.TypeFixed, vdisk.TypeDynamic} {
		path := filepath.Join(dir, typ.String()+".vhd")
		d, err := Create(path, &vdisk.CreateOptions{Type: typ, Size: size})
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
		raw := fileBytes(t, path)
		f, err := DecodeFooter(raw[len(raw)-512:], int64(len(raw)-512))
		if err != nil {
			t.Fatal(err)
		}
		if f.OriginalSize != uint64(size) || f.CurrentSize != uint64(size) ||
			f.Geometry != CHS(size) || string(f.CreatorApp[:]) != "win " ||
			string(f.CreatorHostOS[:]) != "Wi2k" || f.Features != 2 ||
			f.FormatVersion != 0x00010000 {
			t.Errorf("%v footer %+v", typ, f)
		}
		if typ == vdisk.TypeFixed {
			if f.DataOffset != 0xFFFFFFFFFFFFFFFF || len(raw) != int(size)+512 {
				t.Errorf("fixed: data offset %x, file %d", f.DataOffset, len(raw))
			}
			continue
		}
		if string(raw[:512]) != string(raw[len(raw)-512:]) {
			t.Error("footer copy at 0 differs from the end footer")
		}
		h, err := DecodeDynamicHeader(raw[512:1536], 512)
		if err != nil {
			t.Fatal(err)
		}
		if h.MaxTableEntries != 2 || h.TableOffset != 1536 || h.BlockSize != 2<<20 {
			t.Errorf("header %+v", h)
		}
		for i := 1536; i < 2048; i++ {
			if raw[i] != 0xFF {
				t.Fatalf("BAT byte %d is %#x, want 0xFF", i, raw[i])
			}
		}
	}
}
