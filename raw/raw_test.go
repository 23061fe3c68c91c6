package raw

import (
	"bytes"
	"errors"
	"github.com/vhdkit/vhd/internal/testutil"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vhdkit/vhd/internal/testfile"
	"github.com/vhdkit/vhd/internal/vdisk"
)

const mib = 1 << 20

func TestCreateWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.img")
	d, err := Create(path, &vdisk.CreateOptions{Size: 8 * mib})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{0xa5}, 3000)
	if _, err := d.WriteAt(data, 1*mib+17); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 8*mib {
		t.Fatalf("file size %d, want %d", fi.Size(), 8*mib)
	}

	d, err = Open(path, &vdisk.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := make([]byte, len(data)+2)
	if _, err := d.ReadAt(got, 1*mib+16); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{0}, data...), 0)
	if !bytes.Equal(got, want) {
		t.Fatal("read back differs")
	}
	info := d.Info()
	if info.Format != vdisk.FormatRaw || info.VirtualSize != 8*mib ||
		!info.ReadOnly || info.Path != path {
		t.Fatalf("info = %+v", info)
	}
	if _, err := d.WriteAt([]byte{1}, 0); !errors.Is(err, vdisk.ErrReadOnly) {
		t.Fatalf("write on read-only disk: %v, want ErrReadOnly", err)
	}
}

func TestBounds(t *testing.T) {
	d, err := CreateFile(testfile.NewMem(), "", &vdisk.CreateOptions{Size: 4096})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, err := d.ReadAt(buf, 4096-10)
	if n != 10 || err != io.EOF {
		t.Fatalf("read across end: %d, %v; want 10, EOF", n, err)
	}
	if _, err := d.ReadAt(buf, 4096); err != io.EOF {
		t.Fatalf("read at end: %v, want EOF", err)
	}
	if _, err := d.WriteAt(buf, 4096-10); !errors.Is(err, vdisk.ErrOutOfRange) {
		t.Fatalf("write across end: %v, want ErrOutOfRange", err)
	}
	if _, err := d.WriteAt(buf, -1); !errors.Is(err, vdisk.ErrOutOfRange) {
		t.Fatalf("write at -1: %v, want ErrOutOfRange", err)
	}
	if _, err := d.Map(0, 4097); !errors.Is(err, vdisk.ErrOutOfRange) {
		t.Fatalf("map past end: %v, want ErrOutOfRange", err)
	}
	ext, err := d.Map(100, 200)
	if err != nil {
		t.Fatal(err)
	}
	if len(ext) != 1 || ext[0] != (vdisk.Extent{Offset: 100, Length: 200,
		State: vdisk.Data, FileOffset: 100}) {
		t.Fatalf("map of a memory file = %+v, want one data extent", ext)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadAt(buf, 0); !errors.Is(err, vdisk.ErrClosed) {
		t.Fatalf("read after close: %v, want ErrClosed", err)
	}
	if err := d.Close(); !errors.Is(err, vdisk.ErrClosed) {
		t.Fatalf("second close: %v, want ErrClosed", err)
	}
}

func TestCreateOptions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		opts vdisk.CreateOptions
		want error
	}{
		{"differencing", vdisk.CreateOptions{Type: vdisk.TypeDifferencing, Parent: "p.img"}, errors.ErrUnsupported},
		{"block size", vdisk.CreateOptions{Size: mib, BlockSize: mib}, vdisk.ErrInvalidArgument},
		{"sector 4096", vdisk.CreateOptions{Size: mib, LogicalSectorSize: 4096}, vdisk.ErrInvalidArgument},
		{"negative", vdisk.CreateOptions{Size: -1}, vdisk.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if _, err := Create(path, &tc.opts); !errors.Is(err, tc.want) {
				t.Fatalf("Create: %v, want %v", err, tc.want)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("failed Create left %s behind: %v", path, err)
			}
		})
	}
	path := filepath.Join(dir, "exists")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(path, &vdisk.CreateOptions{Size: mib}); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Create over existing file: %v, want ErrExist", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "x" {
		t.Fatal("Create changed an existing file")
	}
}

func TestMapHoles(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("holes are reported on Linux only")
	}
	path := filepath.Join(t.TempDir(), "holes.img")
	d, err := Create(path, &vdisk.CreateOptions{Size: 16 * mib})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	block := bytes.Repeat([]byte{1}, mib)
	for _, off := range []int64{2 * mib, 3 * mib, 9 * mib} {
		if _, err := d.WriteAt(block, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	ext, err := d.Map(0, 16*mib)
	if err != nil {
		t.Fatal(err)
	}
	want := []vdisk.Extent{
		holeExtent(0, 2*mib),
		dataExtent(2*mib, 4*mib),
		holeExtent(4*mib, 9*mib),
		dataExtent(9*mib, 10*mib),
		holeExtent(10*mib, 16*mib),
	}
	if len(ext) == 1 && ext[0].State == vdisk.Data {
		testutil.Missing(t, "file system of the temp dir reports no holes")
	}
	if !equalExtents(ext, want) {
		t.Fatalf("map = %+v\nwant %+v", ext, want)
	}

	// A window inside the file is clipped exactly.
	ext, err = d.Map(3*mib+5, 7*mib)
	if err != nil {
		t.Fatal(err)
	}
	want = []vdisk.Extent{
		dataExtent(3*mib+5, 4*mib),
		holeExtent(4*mib, 9*mib),
		dataExtent(9*mib, 10*mib),
		holeExtent(10*mib, 10*mib+5),
	}
	if !equalExtents(ext, want) {
		t.Fatalf("map window = %+v\nwant %+v", ext, want)
	}
}

func equalExtents(a, b []vdisk.Extent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCheck(t *testing.T) {
	f := testfile.FromBytes(make([]byte, 1024))
	findings, err := Check(f, "", nil)
	if err != nil || len(findings) != 0 {
		t.Fatalf("Check = %v, %v; want no findings", findings, err)
	}
	if !Detect(f, 1024) {
		t.Fatal("Detect rejected content; any content is a raw image")
	}
}

// TestCheckDamagedSignatures: a VHD or VHDX with a damaged signature is
// a raw image to Detect; Check warns when the other structures of those
// formats are still in place.
func TestCheckDamagedSignatures(t *testing.T) {
	rules := func(b []byte) []string {
		t.Helper()
		fs, err := Check(testfile.FromBytes(b), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		var r []string
		for _, f := range fs {
			if f.Severity != vdisk.SeverityWarning {
				t.Errorf("finding %+v is not a warning", f)
			}
			r = append(r, f.Rule)
		}
		return r
	}
	vhdx := make([]byte, 1<<20)
	copy(vhdx[64<<10:], "head")
	copy(vhdx[192<<10:], "regi")
	if r := rules(vhdx); len(r) != 1 || r[0] != "raw.vhdx-signature" {
		t.Errorf("damaged VHDX: %v", r)
	}
	vhd := make([]byte, 1<<20+512)
	copy(vhd[1<<20:], "conectix")
	if r := rules(vhd); len(r) != 1 || r[0] != "raw.vhd-footer" {
		t.Errorf("damaged fixed VHD: %v", r)
	}
	copy(vhd[512:], "cxsparse")
	if r := rules(vhd); len(r) != 2 {
		t.Errorf("damaged dynamic VHD: %v", r)
	}
	if r := rules([]byte("some notes\n")); len(r) != 1 || r[0] != "raw.size.sector" {
		t.Errorf("text file: %v", r)
	}
}
