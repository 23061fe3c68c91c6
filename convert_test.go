package vhd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vhdkit/vhd/internal/testutil"
)

const mib = 1 << 20

// needFormat skips t (fails it under CI=true) when the package of format
// f is not wired into this package, naming what is missing.
func needFormat(t testing.TB, f Format) {
	t.Helper()
	if _, ok := drivers[f]; !ok {
		testutil.Missing(t, "%v disks are not supported by package vhd yet: "+
			"its format package is not wired into open.go", f)
	}
}

// image describes a test image made by makeImage.
type image struct {
	path      string
	size      int64
	sum       string  // sha256 of the whole content
	dataBytes int64   // bytes of non-zero data written
	data      []int64 // offsets of the non-zero grains
	zeroed    []int64 // offsets of grains written with zeros
}

// makeImage writes a sparse raw image of size bytes in which fraction of
// the grain-sized blocks, chosen at random, hold pseudo-random data and
// a few more are written with zeros (allocated in the file, but zero).
func makeImage(t testing.TB, path string, size, grain int64, fraction float64, seed uint64) *image {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	n := size / grain
	perm := r.Perm(int(n))
	nData := int(float64(n) * fraction)
	nZero := max(1, int(n)/50)
	img := &image{path: path, size: size}
	buf := make([]byte, grain)
	for i, g := range perm[:min(int(n), nData+nZero)] {
		off := int64(g) * grain
		if i < nData {
			fillRandom(r, buf)
			img.data = append(img.data, off)
			img.dataBytes += grain
		} else {
			clear(buf)
			img.zeroed = append(img.zeroed, off)
		}
		if _, err := f.WriteAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	img.sum = fileSum(t, f, size)
	return img
}

func fillRandom(r *rand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64()|1)
	}
}

// fileSum is the sha256 of the first size bytes of r, read in large
// pieces.
func fileSum(t testing.TB, r io.ReaderAt, size int64) string {
	t.Helper()
	h := sha256.New()
	buf := make([]byte, 4*mib)
	for off := int64(0); off < size; {
		n := min(int64(len(buf)), size-off)
		if _, err := r.ReadAt(buf[:n], off); err != nil && !(err == io.EOF && off+n == size) {
			t.Fatalf("read at %d: %v", off, err)
		}
		h.Write(buf[:n])
		off += n
	}
	return hex.EncodeToString(h.Sum(nil))
}

// diskSum opens path by content and hashes its virtual content.
func diskSum(t testing.TB, path string) (string, Info) {
	t.Helper()
	d, err := Open(path, &OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	return fileSum(t, d, d.Size()), d.Info()
}

func convertFile(t testing.TB, src, dst string, opts *ConvertOptions) {
	t.Helper()
	d, err := Open(src, &OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := Convert(context.Background(), d, dst, opts); err != nil {
		t.Fatalf("Convert %s -> %s: %v", filepath.Base(src), filepath.Base(dst), err)
	}
}

func TestConvertRawToRaw(t *testing.T) {
	dir := t.TempDir()
	img := makeImage(t, filepath.Join(dir, "in.img"), 64*mib, mib, 0.4, 1)
	out := filepath.Join(dir, "out.img")
	var calls, last atomic.Int64
	convertFile(t, img.path, out, &ConvertOptions{Progress: func(done, total int64) {
		if total != img.size || done < last.Load() || done > total {
			t.Errorf("progress(%d, %d) after %d", done, total, last.Load())
		}
		last.Store(done)
		calls.Add(1)
	}})
	if last.Load() != img.size || calls.Load() == 0 {
		t.Fatalf("progress ended at %d after %d calls, want %d", last.Load(), calls.Load(), img.size)
	}
	sum, info := diskSum(t, out)
	if sum != img.sum || info.Format != FormatRaw {
		t.Fatalf("output %v sha256 %s, want raw %s", info.Format, sum, img.sum)
	}
	testutil.AssertOnly(t, dir, "in.img", "out.img")
	assertSparse(t, out, img)
	checkUsage(t, out, img.dataBytes)
}

// assertSparse checks that the disk at path stores no more than the
// destination blocks that hold img's data: holes and grains written with
// zeros in the source are not data, unless they share a block of the
// destination with data.
func assertSparse(t *testing.T, path string, img *image) {
	t.Helper()
	d, err := Open(path, &OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ext, err := d.Map(0, d.Size())
	if err != nil {
		t.Fatal(err)
	}
	info := d.Info()
	if len(ext) == 1 && ext[0].State == Data && info.Format == FormatRaw {
		t.Log("the platform reports no holes; sparseness not checked")
		return
	}
	// The unit of allocation: the block, or a grain of the image.
	unit := max(int64(info.BlockSize), mib)
	dataUnits := map[int64]bool{}
	for _, off := range img.data {
		for u := off / unit; u*unit < off+mib; u++ {
			dataUnits[u] = true
		}
	}
	var data int64
	for _, e := range ext {
		if e.State != Data {
			continue
		}
		data += e.Length
		for u := e.Offset / unit; u*unit < e.End(); u++ {
			if !dataUnits[u] {
				t.Errorf("%s: range [%d, +%d) holds no source data but is mapped as data: %+v",
					filepath.Base(path), u*unit, unit, e)
				return
			}
		}
	}
	if want := int64(len(dataUnits)) * unit; data > want {
		t.Errorf("%s maps %d bytes as data, want at most %d", filepath.Base(path), data, want)
	}
}

func TestConvertExisting(t *testing.T) {
	dir := t.TempDir()
	img := makeImage(t, filepath.Join(dir, "in.img"), 4*mib, mib, 0.5, 2)
	out := filepath.Join(dir, "out.img")
	if err := os.WriteFile(out, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(img.path, &OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = Convert(context.Background(), d, out, nil)
	if !errors.Is(err, os.ErrExist) {
		t.Fatalf("Convert over an existing file: %v, want ErrExist", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "keep me" {
		t.Fatal("Convert changed an existing destination")
	}
	testutil.AssertOnly(t, dir, "in.img", "out.img")
	if err := Convert(context.Background(), d, out, &ConvertOptions{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if sum, _ := diskSum(t, out); sum != img.sum {
		t.Fatal("overwritten destination differs from the source")
	}
}

// failingDisk fails every read that reaches failAt.
type failingDisk struct {
	Disk
	failAt int64
}

var errInjected = errors.New("injected read failure")

func (d failingDisk) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > d.failAt {
		return 0, errInjected
	}
	return d.Disk.ReadAt(p, off)
}

func TestConvertFailureLeavesNothing(t *testing.T) {
	formats := []string{"out.img", "out.vhdx", "out.vhd"}
	for _, name := range formats {
		t.Run(name, func(t *testing.T) {
			needFormat(t, FormatFromPath(name))
			dir := t.TempDir()
			// Fully written, so every chunk is read.
			img := makeImage(t, filepath.Join(dir, "in.img"), 32*mib, mib, 1, 3)
			d, err := Open(img.path, &OpenOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			out := filepath.Join(dir, name)

			// A read error midway.
			err = Convert(context.Background(), failingDisk{d, 20 * mib}, out, nil)
			if !errors.Is(err, errInjected) {
				t.Fatalf("Convert with failing source: %v, want the read error", err)
			}
			testutil.AssertOnly(t, dir, "in.img")

			// Cancellation midway, from the progress callback.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err = Convert(ctx, d, out, &ConvertOptions{Progress: func(done, total int64) {
				if done >= 8*mib {
					cancel()
				}
			}})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled Convert: %v, want context.Canceled", err)
			}
			testutil.AssertOnly(t, dir, "in.img")
		})
	}
}

func TestConvertOptionErrors(t *testing.T) {
	dir := t.TempDir()
	img := makeImage(t, filepath.Join(dir, "in.img"), 4*mib, mib, 0.5, 4)
	d, err := Open(img.path, &OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, tc := range []struct {
		name, dst string
		opts      ConvertOptions
	}{
		{"unknown extension", "x.qcow2", ConvertOptions{}},
		{"azure vhdx", "x.vhdx", ConvertOptions{Azure: true}},
		{"azure raw", "x.img", ConvertOptions{Azure: true}},
		{"azure dynamic", "x.vhd", ConvertOptions{Azure: true, Type: TypeDynamic}},
		{"differencing", "x.img", ConvertOptions{Type: TypeDifferencing}},
		{"raw block size", "x.img", ConvertOptions{BlockSize: mib}},
		{"raw 4096-byte sectors", "x.img", ConvertOptions{LogicalSectorSize: 4096}},
		{"vhd 4096-byte sectors", "x.vhd", ConvertOptions{LogicalSectorSize: 4096}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Convert(context.Background(), d, filepath.Join(dir, tc.dst), &tc.opts)
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("Convert: %v, want ErrInvalidArgument", err)
			}
			testutil.AssertOnly(t, dir, "in.img")
		})
	}
}

// TestConvertAzureTooLarge: a source over Azure's 32 TiB limit is refused
// before any file is made (it used to fail only when the file system
// refused the truncate, or to succeed with a disk Azure rejects).
func TestConvertAzureTooLarge(t *testing.T) {
	needFormat(t, FormatVHDX)
	dir := t.TempDir()
	src := filepath.Join(dir, "big.vhdx")
	d, err := Create(src, FormatVHDX, &CreateOptions{Size: 32<<40 + mib})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = Open(src, &OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = Convert(context.Background(), d, filepath.Join(dir, "up.vhd"), &ConvertOptions{Azure: true})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Convert --azure of 32 TiB + 1 MiB: %v, want ErrInvalidArgument", err)
	}
	testutil.AssertOnly(t, dir, "big.vhdx")
}

// TestConvertRoundTrip is the headline case of issue 2: a raw image with
// 40% data in scattered blocks goes raw -> VHDX -> raw byte for byte, and
// the VHDX takes about as much disk as the data.
func TestConvertRoundTrip(t *testing.T) {
	needFormat(t, FormatVHDX)
	size := int64(4 << 30)
	if testing.Short() {
		size = 128 * mib
	}
	dir := t.TempDir()
	img := makeImage(t, filepath.Join(dir, "in.img"), size, mib, 0.4, 5)
	vhdx := filepath.Join(dir, "mid.vhdx")
	out := filepath.Join(dir, "out.img")
	convertFile(t, img.path, vhdx, &ConvertOptions{BlockSize: mib})
	convertFile(t, vhdx, out, nil)
	sumX, info := diskSum(t, vhdx)
	if info.Format != FormatVHDX || info.Type != TypeDynamic || info.VirtualSize != size {
		t.Fatalf("VHDX info %+v", info)
	}
	if sumX != img.sum {
		t.Fatalf("VHDX content sha256 %s, want %s", sumX, img.sum)
	}
	if sum, _ := diskSum(t, out); sum != img.sum {
		t.Fatalf("raw after round trip sha256 %s, want %s", sum, img.sum)
	}
	assertSparse(t, vhdx, img)
	assertSparse(t, out, img)
	checkUsage(t, vhdx, img.dataBytes)
	checkUsage(t, out, img.dataBytes)
	qemuCompare(t, "raw", img.path, "vhdx", vhdx)
	qemuCheck(t, "vhdx", vhdx)
	checkClean(t, vhdx)
}

// checkClean runs our own checker on path and fails t on any error.
func checkClean(t *testing.T, path string) {
	t.Helper()
	findings, err := Check(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		if f.Severity == SeverityError {
			t.Errorf("check %s: %+v", filepath.Base(path), f)
		}
	}
}

func qemuCompare(t *testing.T, fa, a, fb, b string) {
	t.Helper()
	testutil.Run(t, "qemu-img", "compare", "-f", fa, "-F", fb, a, b)
}

func qemuCheck(t *testing.T, f, path string) {
	t.Helper()
	testutil.Run(t, "qemu-img", "check", "-f", f, path)
}

// qemuFormat is qemu's name of f.
func qemuFormat(f Format) string {
	if f == FormatVHD {
		return "vpc"
	}
	return f.String()
}

// TestConvertMatrix converts between every pair of formats and types
// and checks the content with Compare and with qemu-img.
func TestConvertMatrix(t *testing.T) {
	dir := t.TempDir()
	img := makeImage(t, filepath.Join(dir, "in.img"), 48*mib, mib, 0.3, 6)
	type kind struct {
		ext string
		typ Type
	}
	kinds := []kind{
		{".img", TypeUnknown},
		{".vhd", TypeDynamic}, {".vhd", TypeFixed},
		{".vhdx", TypeDynamic}, {".vhdx", TypeFixed},
	}
	name := func(k kind) string { return strings.TrimPrefix(k.ext, ".") + "-" + k.typ.String() }
	// First from raw into every kind, then from every kind into every
	// other.
	for _, k := range kinds[1:] {
		t.Run("raw->"+name(k), func(t *testing.T) {
			needFormat(t, FormatFromPath(k.ext))
			dst := filepath.Join(dir, name(k)+k.ext)
			convertFile(t, img.path, dst, &ConvertOptions{Type: k.typ})
			checkConverted(t, img, dst, k.typ)
		})
	}
	for _, from := range kinds[1:] {
		for _, to := range kinds {
			if from == to {
				continue
			}
			t.Run(name(from)+"->"+name(to), func(t *testing.T) {
				needFormat(t, FormatFromPath(from.ext))
				needFormat(t, FormatFromPath(to.ext))
				src := filepath.Join(dir, name(from)+from.ext)
				if _, err := os.Stat(src); err != nil {
					t.Fatalf("source from the raw->%s case missing: %v", name(from), err)
				}
				dst := filepath.Join(t.TempDir(), name(to)+to.ext)
				convertFile(t, src, dst, &ConvertOptions{Type: to.typ})
				checkConverted(t, img, dst, to.typ)
			})
		}
	}
}

func checkConverted(t *testing.T, img *image, dst string, typ Type) {
	t.Helper()
	sum, info := diskSum(t, dst)
	if sum != img.sum {
		t.Fatalf("%s content sha256 %s, want %s", filepath.Base(dst), sum, img.sum)
	}
	if info.VirtualSize != img.size {
		t.Fatalf("%s virtual size %d, want %d", filepath.Base(dst), info.VirtualSize, img.size)
	}
	if info.Format != FormatRaw && info.Type != typ {
		t.Fatalf("%s type %v, want %v", filepath.Base(dst), info.Type, typ)
	}
	if typ != TypeFixed {
		assertSparse(t, dst, img)
	}
	qemuCompare(t, "raw", img.path, qemuFormat(info.Format), dst)
	if info.Format == FormatVHDX {
		qemuCheck(t, "vhdx", dst)
	}
	checkClean(t, dst)
}

// TestConvertDifferencing converts a differencing chain to a standalone
// disk: reads go through the chain, and the result has no parent.
func TestConvertDifferencing(t *testing.T) {
	for _, ext := range []string{".vhdx", ".vhd"} {
		t.Run(ext, func(t *testing.T) {
			f := FormatFromPath(ext)
			needFormat(t, f)
			dir := t.TempDir()
			base := filepath.Join(dir, "base"+ext)
			child := filepath.Join(dir, "child"+ext)
			writeDisk(t, base, f, &CreateOptions{Size: 16 * mib}, map[int64]byte{0: 1, 5 * mib: 2, 9*mib + 512: 3})
			writeDisk(t, child, f, &CreateOptions{Type: TypeDifferencing, Parent: base},
				map[int64]byte{5 * mib: 4, 12 * mib: 5})
			want, _ := diskSum(t, child)
			for _, out := range []string{"flat.img", "flat.vhd", "flat.vhdx"} {
				needFormat(t, FormatFromPath(out))
				dst := filepath.Join(dir, out)
				convertFile(t, child, dst, nil)
				sum, info := diskSum(t, dst)
				if sum != want {
					t.Errorf("%s content differs from the chain", out)
				}
				if info.Parent != nil || info.Type == TypeDifferencing {
					t.Errorf("%s is still differencing: %+v", out, info)
				}
				checkClean(t, dst)
			}
		})
	}
}

// writeDisk creates a disk and writes 64 KiB of each byte value at the
// offsets given.
func writeDisk(t *testing.T, path string, f Format, opts *CreateOptions, writes map[int64]byte) {
	t.Helper()
	d, err := Create(path, f, opts)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for off, v := range writes {
		for i := range buf {
			buf[i] = v
		}
		if _, err := d.WriteAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConvertAzure(t *testing.T) {
	needFormat(t, FormatVHD)
	dir := t.TempDir()
	img := makeImage(t, filepath.Join(dir, "in.img"), 30*mib+4096, mib, 0.5, 7)
	dst := filepath.Join(dir, "azure.vhd")
	convertFile(t, img.path, dst, &ConvertOptions{Azure: true})
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(31*mib + 512); fi.Size() != want {
		t.Fatalf("Azure VHD file size %d, want %d (31 MiB + footer)", fi.Size(), want)
	}
	_, info := diskSum(t, dst)
	if info.Type != TypeFixed || info.VirtualSize != 31*mib {
		t.Fatalf("Azure VHD info %+v", info)
	}
	d, err := Open(dst, &OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	src, err := Open(img.path, &OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	diff, err := Compare(context.Background(), src, d)
	if err != nil {
		t.Fatal(err)
	}
	if diff == nil || diff.Offset != img.size || diff.SizeB != 31*mib {
		t.Fatalf("Compare = %+v, want equal content up to the source size", diff)
	}
}

// benchImage is a 512 MiB raw image with 40% of its 1 MiB blocks holding
// data, as scripts/bench.sh makes at 4 GiB.
func benchImage(b *testing.B) *image {
	b.Helper()
	return makeImage(b, filepath.Join(b.TempDir(), "in.img"), 512*mib, mib, 0.4, 42)
}

// benchConvert times converting src to a fresh dst with several worker
// counts, beside cp --sparse=always on the same input.
func benchConvert(b *testing.B, src, ext string, size int64) {
	d, err := Open(src, &OpenOptions{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	dir := b.TempDir()
	for _, w := range []int{1, 2, 4} {
		for _, noSync := range []bool{false, true} {
			name := fmt.Sprintf("workers=%d", w)
			if noSync {
				name += "/nosync"
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(size)
				opts := &ConvertOptions{Workers: w, NoSync: noSync}
				for i := 0; b.Loop(); i++ {
					dst := filepath.Join(dir, fmt.Sprintf("out%d%s", i, ext))
					if err := Convert(context.Background(), d, dst, opts); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					os.Remove(dst)
					syncAll()
					b.StartTimer()
				}
			})
		}
	}
	b.Run("cp", func(b *testing.B) {
		cp := testutil.Tool(b, "cp")
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			dst := filepath.Join(dir, fmt.Sprintf("cp%d", i))
			if out, err := exec.Command(cp, "--sparse=always", src, dst).CombinedOutput(); err != nil {
				b.Fatalf("cp: %v\n%s", err, out)
			}
			b.StopTimer()
			os.Remove(dst)
			syncAll()
			b.StartTimer()
		}
	})
}

// syncAll flushes the page cache's dirty data outside the timed part of
// a benchmark, as scripts/bench.sh does between runs, so that one run's
// writeback is not charged to the next.
func syncAll() { exec.Command("sync").Run() }

func BenchmarkConvertRawToVHDX(b *testing.B) {
	needFormat(b, FormatVHDX)
	img := benchImage(b)
	benchConvert(b, img.path, ".vhdx", img.size)
}

func BenchmarkConvertVHDXToRaw(b *testing.B) {
	needFormat(b, FormatVHDX)
	img := benchImage(b)
	src := filepath.Join(b.TempDir(), "in.vhdx")
	convertFile(b, img.path, src, nil)
	benchConvert(b, src, ".img", img.size)
}

func BenchmarkConvertRawToRaw(b *testing.B) {
	img := benchImage(b)
	benchConvert(b, img.path, ".img", img.size)
}

// TestConvertDirtyLog converts the corpus VHDX whose log was never
// replayed, opened read-only, so the log's content lives only in memory.
// MANIFEST: the content is [0, 18 MiB) of 0xa5, the rest zero; a reader
// that misses the log returns only 17 MiB of 0xa5. (This file's log
// carries the BAT update; the block's data is already in the file, so
// the rule that holeMap ignores a dirty VHDX's holes is tested by
// TestHoleMapRules.)
func TestConvertDirtyLog(t *testing.T) {
	src := testutil.Corpus(t, "iotest-dirtylog-10G-4M.vhdx.bz2")
	before, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.img")
	convertFile(t, src, out, nil)
	if after, _ := os.ReadFile(src); !bytes.Equal(before, after) {
		t.Fatal("converting changed the read-only source")
	}
	d, err := Open(out, &OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Size() != 10<<30 {
		t.Fatalf("size %d, want 10 GiB", d.Size())
	}
	ext, err := d.Map(0, d.Size())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ext {
		if e.State == Data && e.End() > 18*mib {
			t.Fatalf("data beyond 18 MiB: %+v", e)
		}
	}
	buf := make([]byte, 18*mib)
	if _, err := d.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	for i, b := range buf {
		if b != 0xa5 {
			t.Fatalf("byte %d is %#x, want 0xa5 (the log's block is missing)", i, b)
		}
	}
}

// TestHoleMapRules checks when Convert may take a source file's holes for
// zeros: only where the data is read straight from the file.
func TestHoleMapRules(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	logState := func(s string) Fields { return Fields{{Key: "log_state", Value: s}} }
	for _, tc := range []struct {
		name string
		info Info
		use  bool
	}{
		{"vhd", Info{Path: path, Format: FormatVHD, FileSize: 8192}, true},
		{"clean vhdx", Info{Path: path, Format: FormatVHDX, FileSize: 8192, Details: logState("clean")}, true},
		{"replayed vhdx", Info{Path: path, Format: FormatVHDX, FileSize: 8192, Details: logState("replayed")}, true},
		{"dirty vhdx", Info{Path: path, Format: FormatVHDX, FileSize: 8192,
			Details: logState("dirty (replayed in memory)")}, false},
		{"vhdx without log state", Info{Path: path, Format: FormatVHDX, FileSize: 8192}, false},
		{"other size", Info{Path: path, Format: FormatVHD, FileSize: 4096}, false},
		{"no path", Info{Format: FormatVHD, FileSize: 8192}, false},
		{"missing file", Info{Path: path + "x", Format: FormatVHD, FileSize: 8192}, false},
		{"raw", Info{Path: path, Format: FormatRaw, FileSize: 8192}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := openForHoles(&tc.info)
			if (d != nil) != tc.use {
				t.Fatalf("openForHoles = %v, want use %v", d, tc.use)
			}
			if d != nil {
				d.Close()
			}
		})
	}
}

// TestConvertSectorSizes: a VHDX destination takes the sector sizes asked
// for, and keeps a VHDX source's sizes when none are asked for.
func TestConvertSectorSizes(t *testing.T) {
	needFormat(t, FormatVHDX)
	dir := t.TempDir()
	img := makeImage(t, filepath.Join(dir, "in.img"), 16*mib, mib, 0.5, 8)
	k4 := filepath.Join(dir, "4k.vhdx")
	convertFile(t, img.path, k4, &ConvertOptions{LogicalSectorSize: 4096, PhysicalSectorSize: 4096})
	again := filepath.Join(dir, "again.vhdx")
	convertFile(t, k4, again, nil)
	for _, p := range []string{k4, again} {
		sum, info := diskSum(t, p)
		if sum != img.sum || info.LogicalSectorSize != 4096 || info.PhysicalSectorSize != 4096 {
			t.Errorf("%s: sectors %d/%d, content ok %v; want 4096/4096 and the source's content",
				filepath.Base(p), info.LogicalSectorSize, info.PhysicalSectorSize, sum == img.sum)
		}
		checkClean(t, p)
	}
	// qemu-img 7.2 opens only 512-byte logical sectors (FORMATS.md 4.3),
	// so it cannot confirm these.
}
