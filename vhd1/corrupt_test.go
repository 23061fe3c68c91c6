package vhd1

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vhdkit/vhd/internal/testfile"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// sampleDynamic returns the bytes of a 5 MiB dynamic disk (3 blocks)
// with data in blocks 0 and 2.
func sampleDynamic(t testing.TB) []byte {
	t.Helper()
	mem := testfile.NewMem()
	d, err := CreateFile(mem, "", &vdisk.CreateOptions{Type: vdisk.TypeDynamic, Size: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	d.WriteAt(bytes.Repeat([]byte("block0"), 100), 1000)
	d.WriteAt(bytes.Repeat([]byte("block2"), 100), 4<<20+7)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return mem.Bytes()
}

func openBytes(b []byte, readOnly bool) (*Disk, *testfile.Mem, error) {
	mem := testfile.FromBytes(b)
	d, err := OpenFile(mem, "", &vdisk.OpenOptions{ReadOnly: readOnly})
	return d, mem, err
}

// patchHeader rewrites the dynamic header at 512 with a valid checksum.
func patchHeader(t *testing.T, b []byte, fn func(h *DynamicHeader)) {
	t.Helper()
	h, ok := ParseDynamicHeader(b[512:1536])
	if !ok {
		t.Fatal("no header")
	}
	fn(&h)
	copy(b[512:], h.Encode())
}

// patchFooters rewrites both footer copies with a valid checksum.
func patchFooters(t *testing.T, b []byte, fn func(f *Footer)) {
	t.Helper()
	f, _ := ParseFooter(b[len(b)-512:])
	fn(&f)
	enc := f.Encode()
	copy(b[len(b)-512:], enc)
	copy(b, enc)
}

func TestCorruptInputs(t *testing.T) {
	good := sampleDynamic(t)
	cases := []struct {
		name string
		mut  func(t *testing.T, b []byte) []byte
	}{
		{"both footers damaged", func(t *testing.T, b []byte) []byte {
			b[len(b)-512+70] ^= 1
			b[70] ^= 1
			return b
		}},
		{"header checksum", func(t *testing.T, b []byte) []byte {
			b[512+300] ^= 1
			return b
		}},
		{"header cookie", func(t *testing.T, b []byte) []byte {
			patchHeader(t, b, func(h *DynamicHeader) { h.Cookie[0] = 'X' })
			return b
		}},
		{"truncated inside a block", func(t *testing.T, b []byte) []byte {
			return b[:len(b)-4096]
		}},
		{"truncated to 100 bytes", func(t *testing.T, b []byte) []byte {
			return b[:100]
		}},
		{"empty file", func(t *testing.T, b []byte) []byte { return nil }},
		{"BAT entry past the end", func(t *testing.T, b []byte) []byte {
			be.PutUint32(b[1536+4:], 0x00FFFFFF)
			return b
		}},
		{"BAT entries equal", func(t *testing.T, b []byte) []byte {
			copy(b[1536+4:1536+8], b[1536:1536+4])
			return b
		}},
		{"BAT entry into the header", func(t *testing.T, b []byte) []byte {
			be.PutUint32(b[1536:], 1)
			return b
		}},
		{"absurd max table entries", func(t *testing.T, b []byte) []byte {
			patchHeader(t, b, func(h *DynamicHeader) { h.MaxTableEntries = 0xFFFFFFFF })
			return b
		}},
		{"too few table entries", func(t *testing.T, b []byte) []byte {
			patchHeader(t, b, func(h *DynamicHeader) { h.MaxTableEntries = 2 })
			return b
		}},
		{"block size not a power of two", func(t *testing.T, b []byte) []byte {
			patchHeader(t, b, func(h *DynamicHeader) { h.BlockSize = 3 << 20 })
			return b
		}},
		{"block size zero", func(t *testing.T, b []byte) []byte {
			patchHeader(t, b, func(h *DynamicHeader) { h.BlockSize = 0 })
			return b
		}},
		{"table offset past the end", func(t *testing.T, b []byte) []byte {
			patchHeader(t, b, func(h *DynamicHeader) { h.TableOffset = 1 << 40 })
			return b
		}},
		{"table offset unaligned", func(t *testing.T, b []byte) []byte {
			patchHeader(t, b, func(h *DynamicHeader) { h.TableOffset = 1537 })
			return b
		}},
		{"data offset past the end", func(t *testing.T, b []byte) []byte {
			patchFooters(t, b, func(f *Footer) { f.DataOffset = 1 << 50 })
			return b
		}},
		{"disk type 5", func(t *testing.T, b []byte) []byte {
			patchFooters(t, b, func(f *Footer) { f.DiskType = 5 })
			return b
		}},
		{"version 2", func(t *testing.T, b []byte) []byte {
			patchFooters(t, b, func(f *Footer) { f.FormatVersion = 0x00020000 })
			return b
		}},
		{"current size not sectors", func(t *testing.T, b []byte) []byte {
			patchFooters(t, b, func(f *Footer) { f.CurrentSize = 5<<20 + 1 })
			return b
		}},
		{"fixed larger than its file", func(t *testing.T, b []byte) []byte {
			var f Footer
			f = *mustFooter(t, fixedSample(t))
			f.CurrentSize = 1 << 30
			return append(make([]byte, 64<<10), f.Encode()...)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mut(t, append([]byte(nil), good...))
			_, _, err := openBytes(b, true)
			wantCorrupt(t, err)
			// Check reports it as an error finding without failing.
			fs, err := Check(testfile.FromBytes(b), "", nil)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if !hasSeverity(fs, vdisk.SeverityError) {
				t.Errorf("Check found no error: %+v", fs)
			}
		})
	}
}

func hasSeverity(fs []vdisk.Finding, s vdisk.Severity) bool {
	for _, f := range fs {
		if f.Severity == s {
			return true
		}
	}
	return false
}

func fixedSample(t testing.TB) []byte {
	t.Helper()
	mem := testfile.NewMem()
	d, err := CreateFile(mem, "", &vdisk.CreateOptions{Type: vdisk.TypeFixed, Size: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	d.WriteAt([]byte("fixed data"), 100)
	d.Close()
	return mem.Bytes()
}

func mustFooter(t *testing.T, b []byte) *Footer {
	t.Helper()
	f, err := DecodeFooter(b[len(b)-512:], int64(len(b)-512))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFooterFallback damages the end footer: the copy at offset 0 is
// used, and the next allocation writes a new end footer.
func TestFooterFallback(t *testing.T) {
	good := sampleDynamic(t)
	want := readAllBytes(t, good)
	b := append([]byte(nil), good...)
	b[len(b)-512+100] ^= 0xFF // checksum now wrong
	d, mem, err := openBytes(b, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := detailMap(d.Info())["footer_source"]; got != "copy at 0" {
		t.Errorf("footer_source %v", got)
	}
	if !bytes.Equal(readAll(t, d, d.Size()), want) {
		t.Error("content differs after fallback")
	}
	fs, _ := Check(testfile.FromBytes(b), "", nil)
	if !hasRule(fs, "vhd.footer.checksum") || !hasRule(fs, "vhd.footer.fallback") {
		t.Errorf("Check = %+v", fs)
	}
	// A write to an unallocated block repairs the end.
	if _, err := d.WriteAt([]byte("new"), 2<<20); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d2, _, err := openBytes(mem.Bytes(), true)
	if err != nil {
		t.Fatal(err)
	}
	if got := detailMap(d2.Info())["footer_source"]; got != "end" {
		t.Errorf("after repair footer_source %v", got)
	}
	copy(want[2<<20:], "new")
	if !bytes.Equal(readAll(t, d2, d2.Size()), want) {
		t.Error("content differs after repair")
	}
	expectNoErrors(t, mem.Bytes())
}

// TestFooterCopyDamaged damages the copy at 0: the end footer is used,
// Check reports the copy, and the next allocation rewrites it.
func TestFooterCopyDamaged(t *testing.T) {
	b := sampleDynamic(t)
	b[200] ^= 0xFF
	d, mem, err := openBytes(b, false)
	if err != nil {
		t.Fatal(err)
	}
	if det := detailMap(d.Info()); det["footer_source"] != "end" || det["footer_copy_differs"] != true {
		t.Errorf("details %v", det)
	}
	fs, _ := Check(testfile.FromBytes(b), "", nil)
	if !hasRule(fs, "vhd.footer.checksum") {
		t.Errorf("Check = %+v", fs)
	}
	d.WriteAt([]byte("x"), 2<<20)
	d.Close()
	out := mem.Bytes()
	if !bytes.Equal(out[:512], out[len(out)-512:]) {
		t.Error("copy at 0 not rewritten")
	}
	expectNoErrors(t, out)
}

// TestFootersDiffer: both copies valid but different is an error
// finding; Open uses the end.
func TestFootersDiffer(t *testing.T) {
	b := sampleDynamic(t)
	f, _ := ParseFooter(b[:512])
	f.TimeStamp++
	copy(b, f.Encode())
	if _, _, err := openBytes(b, true); err != nil {
		t.Fatal(err)
	}
	fs, _ := Check(testfile.FromBytes(b), "", nil)
	if !hasRule(fs, "vhd.footer.copy_differs") {
		t.Errorf("Check = %+v", fs)
	}
}

// TestOldFooter: a 511-byte footer (Virtual PC before 2004) is read.
func TestOldFooter(t *testing.T) {
	b := fixedSample(t)
	b = b[:len(b)-1] // the last reserved byte is zero, so the checksum holds
	d, _, err := openBytes(b, true)
	if err != nil {
		t.Fatal(err)
	}
	if d.Size() != 64<<10 || detailMap(d.Info())["footer_source"] != "end (511 bytes)" {
		t.Errorf("size %d, details %v", d.Size(), detailMap(d.Info()))
	}
	got := make([]byte, 10)
	d.ReadAt(got, 100)
	if string(got) != "fixed data" {
		t.Errorf("read %q", got)
	}
}

// TestSelfParent: a differencing disk that names itself as its parent
// gives an error, not endless recursion.
func TestSelfParent(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.vhd")
	child := filepath.Join(dir, "child.vhd")
	d, err := Create(base, &vdisk.CreateOptions{Type: vdisk.TypeDynamic, Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err = Create(child, &vdisk.CreateOptions{Parent: base})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	b := fileBytes(t, child)
	id := mustFooter(t, b).UniqueID
	patchHeader(t, b, func(h *DynamicHeader) { h.ParentUniqueID = id })
	os.WriteFile(child, b, 0o644)
	os.WriteFile(base, b, 0o644) // the "parent" is the child itself
	_, err = Open(child, &vdisk.OpenOptions{ReadOnly: true})
	if !errors.Is(err, vdisk.ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}

func readAllBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	d, _, err := openBytes(b, true)
	if err != nil {
		t.Fatal(err)
	}
	return readAll(t, d, d.Size())
}

func expectNoErrors(t *testing.T, b []byte) {
	t.Helper()
	fs, err := Check(testfile.FromBytes(b), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Severity == vdisk.SeverityError {
			t.Errorf("Check: %+v", f)
		}
	}
}

// failingEnd fails reads of the last sector with an I/O error.
type failingEnd struct{ *testfile.Mem }

var errIO = errors.New("injected I/O error")

func (f failingEnd) ReadAt(p []byte, off int64) (int, error) {
	size, _ := f.Size()
	if off+int64(len(p)) > size-512 {
		return 0, errIO
	}
	return f.Mem.ReadAt(p, off)
}

// TestFooterIOError: an I/O error reading the end footer is returned;
// it is not a reason to fall back to the copy at offset 0.
func TestFooterIOError(t *testing.T) {
	f := failingEnd{testfile.FromBytes(sampleDynamic(t))}
	_, err := OpenFile(f, "", &vdisk.OpenOptions{ReadOnly: true})
	if !errors.Is(err, errIO) || errors.Is(err, vdisk.ErrCorrupt) {
		t.Fatalf("err = %v, want the I/O error", err)
	}
	if _, err := Check(f, "", nil); !errors.Is(err, errIO) {
		t.Fatalf("Check err = %v, want the I/O error", err)
	}
}
