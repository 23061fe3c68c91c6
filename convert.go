package vhd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/vhdkit/vhd/internal/vdisk"
	"github.com/vhdkit/vhd/raw"
	"github.com/vhdkit/vhd/vhd1"
)

// ConvertOptions control [Convert]. The zero value converts to the
// format named by the destination's extension, as a dynamic disk with
// the format's default block size.
type ConvertOptions struct {
	// Format is the output format; FormatUnknown takes it from the
	// destination's extension (see [FormatFromPath]).
	Format Format
	// Type is TypeDynamic (the default for VHD and VHDX) or TypeFixed.
	// A raw destination is always written sparse, whatever the type.
	Type Type
	// BlockSize is the block size of a VHD or VHDX destination; zero
	// takes the format's default.
	BlockSize uint32
	// LogicalSectorSize and PhysicalSectorSize set the sector sizes of
	// the destination; zero keeps a VHDX source's sizes for a VHDX
	// destination, and takes the format's default otherwise. VHD and
	// raw have 512-byte logical sectors only.
	LogicalSectorSize  uint32
	PhysicalSectorSize uint32
	// Azure makes a disk Azure accepts for upload (FORMATS.md 4.2): a
	// fixed VHD whose virtual size is the source's rounded up to a whole
	// MiB. The format must be VHD.
	Azure bool
	// Overwrite allows replacing an existing destination.
	Overwrite bool
	// Progress, when set, is called after each piece of work with the
	// bytes of virtual content done so far and the total. Calls do not
	// overlap; done only grows.
	Progress func(done, total int64)
	// NoSync skips syncing the destination before it is renamed into
	// place. The conversion is still atomic for the running system (a
	// failure leaves nothing behind), but after a power loss the
	// destination may exist with data missing. cp and qemu-img do not
	// sync either; on a slow device the sync can take longer than the
	// copy itself.
	NoSync bool
	// Workers is the number of goroutines copying data; zero picks a
	// default from GOMAXPROCS (at most 4).
	Workers int
}

// Sizes used when copying.
const (
	// copyChunk is the unit a worker reads and writes: large enough to
	// keep per-call costs low, a power of two so that chunks never
	// straddle a power-of-two block of the destination.
	copyChunk = 4 << 20
	// mapWindow bounds the range of one Map call, so a huge,
	// fragmented disk never needs its whole map in memory.
	mapWindow = 1 << 30
	// zeroGrain is the granularity of zero detection: runs of all-zero
	// zeroGrain-aligned pieces are not written, as cp --sparse=always
	// leaves holes for all-zero file system blocks.
	zeroGrain = 4096
)

// Convert copies the content of src into a new disk at dstPath.
//
// Only data is copied: ranges that src maps as zero or unallocated are
// skipped, and so is every all-zero 4 KiB piece within data, so sparse
// and dynamic destinations stay sparse. A differencing src is read
// through its chain and becomes a standalone disk.
//
// The destination appears atomically: Convert writes a temporary file
// (".NAME.tmp-XXXXXXXX") beside dstPath, syncs and closes it, and
// renames it to dstPath only when everything succeeded. On any error,
// including cancellation of ctx, the temporary file is removed and
// dstPath is untouched. An existing dstPath is an error wrapping
// [os.ErrExist] unless opts.Overwrite is set.
//
// A VHD or VHDX destination's size is the source's rounded up to a
// whole sector (and to a whole MiB with opts.Azure).
func Convert(ctx context.Context, src Disk, dstPath string, opts *ConvertOptions) error {
	if opts == nil {
		opts = &ConvertOptions{}
	}
	plan, err := planConvert(src, dstPath, opts)
	if err != nil {
		return fmt.Errorf("convert to %s: %w", dstPath, err)
	}
	if err := convert(ctx, src, dstPath, opts, plan); err != nil {
		return fmt.Errorf("convert to %s: %w", dstPath, err)
	}
	return nil
}

// convertPlan is what planConvert decides before any file is made.
type convertPlan struct {
	format Format
	create CreateOptions
	drv    driver
}

func planConvert(src Disk, dstPath string, opts *ConvertOptions) (*convertPlan, error) {
	p := &convertPlan{format: opts.Format}
	if p.format == FormatUnknown {
		p.format = FormatFromPath(dstPath)
		if opts.Azure && p.format == FormatUnknown {
			p.format = FormatVHD
		}
		if p.format == FormatUnknown {
			return nil, fmt.Errorf("%w: no format given and the extension "+
				"names none (use .vhdx, .vhd or .img)", ErrInvalidArgument)
		}
	}
	c := &p.create
	c.Size = src.Size()
	c.Type = opts.Type
	switch c.Type {
	case TypeUnknown:
		c.Type = TypeDynamic
	case TypeFixed, TypeDynamic:
	default:
		return nil, fmt.Errorf("%w: cannot convert to a %v disk", ErrInvalidArgument, c.Type)
	}
	if opts.Azure {
		if p.format != FormatVHD {
			return nil, fmt.Errorf("%w: Azure accepts only VHD, not %v", ErrInvalidArgument, p.format)
		}
		if opts.Type == TypeDynamic {
			return nil, fmt.Errorf("%w: Azure accepts only fixed disks", ErrInvalidArgument)
		}
		c.Type = TypeFixed
		c.Size = vhd1.AzureSize(c.Size)
		if c.Size > vhd1.AzureMaxSize {
			return nil, fmt.Errorf("%w: size %d is over Azure's limit of 32 TiB",
				ErrInvalidArgument, src.Size())
		}
	}

	var err error
	if p.drv, err = driverFor(p.format); err != nil {
		return nil, err
	}
	switch p.format {
	case FormatRaw:
		// A raw image has no type or block size to record; it refuses
		// sector sizes other than 512 itself.
		c.Type = TypeUnknown
		if opts.BlockSize != 0 {
			return nil, fmt.Errorf("%w: raw images have no block size", ErrInvalidArgument)
		}
		c.LogicalSectorSize = opts.LogicalSectorSize
		c.PhysicalSectorSize = opts.PhysicalSectorSize
	case FormatVHD:
		c.BlockSize = opts.BlockSize
		c.LogicalSectorSize = opts.LogicalSectorSize
		c.PhysicalSectorSize = opts.PhysicalSectorSize
		c.Size = roundUp(c.Size, 512)
	case FormatVHDX:
		c.BlockSize = opts.BlockSize
		si := src.Info()
		c.LogicalSectorSize = opts.LogicalSectorSize
		if c.LogicalSectorSize == 0 && si.Format == FormatVHDX {
			c.LogicalSectorSize = si.LogicalSectorSize
		}
		c.PhysicalSectorSize = opts.PhysicalSectorSize
		if c.PhysicalSectorSize == 0 && si.Format == FormatVHDX {
			c.PhysicalSectorSize = si.PhysicalSectorSize
		}
		c.Size = roundUp(c.Size, int64(max(c.LogicalSectorSize, 512)))
	}
	return p, nil
}

func roundUp(n, m int64) int64 { return (n + m - 1) / m * m }

func convert(ctx context.Context, src Disk, dstPath string, opts *ConvertOptions, p *convertPlan) error {
	if !opts.Overwrite {
		if _, err := os.Lstat(dstPath); err == nil {
			return fmt.Errorf("destination exists: %w", os.ErrExist)
		}
	}
	f, tmp, err := createTemp(dstPath)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	dst, err := p.drv.createFile(tempFile{vdisk.OSFile{File: f}}, tmp, &p.create)
	if err != nil {
		return fail(err)
	}
	if err := copyData(ctx, src, dst, opts); err != nil {
		dst.Close()
		return fail(err)
	}
	// Close writes the format's metadata; the one sync follows.
	if err := dst.Close(); err != nil {
		return fail(err)
	}
	if !opts.NoSync {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return publish(tmp, dstPath, opts.Overwrite, !opts.NoSync)
}

// tempFile is the destination's file while it is written. Its Sync does
// nothing: until the rename nobody sees the file, and after a crash it
// is only a leftover temporary file, so the format's own ordered syncs
// (data before metadata) would cost time and buy nothing. Convert syncs
// the whole file once before the rename. Its Close does nothing either,
// so that Convert can sync after the format's Close.
type tempFile struct{ vdisk.File }

func (tempFile) Sync() error  { return nil }
func (tempFile) Close() error { return nil }

// createTemp creates an empty file beside path, named
// ".BASE.tmp-XXXXXXXX", with the usual permissions (0644 less umask).
func createTemp(path string) (*os.File, string, error) {
	dir, base := filepath.Split(path)
	for range 100 {
		var r [4]byte
		if _, err := rand.Read(r[:]); err != nil {
			return nil, "", err
		}
		tmp := filepath.Join(dir, "."+base+".tmp-"+hex.EncodeToString(r[:]))
		f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errExist(err) {
			continue
		}
		return f, tmp, err
	}
	return nil, "", fmt.Errorf("no free temporary name beside %s", path)
}

// publish moves the finished temporary file to dst. Without overwrite it
// links (which fails if dst exists) and then removes the temporary name,
// so an existing file that appeared meanwhile is never replaced.
func publish(tmp, dst string, overwrite, durable bool) error {
	syncDir := syncDir
	if !durable {
		syncDir = func(string) error { return nil }
	}
	if !overwrite {
		err := os.Link(tmp, dst)
		switch {
		case err == nil:
			os.Remove(tmp)
			return syncDir(dst)
		case errExist(err):
			os.Remove(tmp)
			return fmt.Errorf("destination exists: %w", os.ErrExist)
		}
		// No hard links on this file system: check, then rename.
		if _, err := os.Lstat(dst); err == nil {
			os.Remove(tmp)
			return fmt.Errorf("destination exists: %w", os.ErrExist)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dst)
}

// syncDir makes the new directory entry of path durable where the
// platform allows syncing a directory.
func syncDir(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyJob is one chunk of source data to copy.
type copyJob struct{ off, n int64 }

// copyData copies every non-zero piece of src's data into dst with a
// pool of workers.
func copyData(ctx context.Context, src, dst Disk, opts *ConvertOptions) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	total := src.Size()
	prog := newProgress(opts.Progress, total)

	workers := opts.Workers
	if workers <= 0 {
		workers = min(4, runtime.GOMAXPROCS(0))
	}
	jobs := make(chan copyJob, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			buf := make([]byte, copyChunk)
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if err := copyChunkAt(src, dst, buf[:j.n], j.off); err != nil {
					cancel(err)
					continue
				}
				prog.add(j.n)
			}
		})
	}

	holes := newHoleMap(src)
	defer holes.close()
	err := walkMap(ctx, src, total, func(e Extent) error {
		return holes.refine(e, func(e Extent) error {
			if e.State != Data {
				prog.add(e.Length)
				return nil
			}
			// Cut the extent at multiples of copyChunk.
			for off := e.Offset; off < e.End(); {
				n := min(e.End(), (off/copyChunk+1)*copyChunk) - off
				select {
				case jobs <- copyJob{off, n}:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
				off += n
			}
			return nil
		})
	})
	close(jobs)
	wg.Wait()
	if err == nil {
		err = context.Cause(ctx)
	}
	if err == nil {
		prog.finish()
	}
	return err
}

// walkMap calls fn for every extent of src's map of [0, size), mapping
// at most mapWindow at a time.
func walkMap(ctx context.Context, d Disk, size int64, fn func(Extent) error) error {
	for off := int64(0); off < size; off += mapWindow {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		n := min(mapWindow, size-off)
		ext, err := d.Map(off, n)
		if err != nil {
			return err
		}
		if err := checkMap(ext, off, n); err != nil {
			return err
		}
		for _, e := range ext {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkMap verifies that a map covers [off, off+n) exactly, so that a
// faulty map can never make a copy skip data silently.
func checkMap(ext []Extent, off, n int64) error {
	pos := off
	for _, e := range ext {
		if e.Offset != pos || e.Length <= 0 {
			return fmt.Errorf("vhd: internal error: map of [%d, +%d) has extent %+v at %d", off, n, e, pos)
		}
		pos = e.End()
	}
	if pos != off+n {
		return fmt.Errorf("vhd: internal error: map of [%d, +%d) ends at %d", off, n, pos)
	}
	return nil
}

// copyChunkAt reads len(buf) bytes of src at off and writes the runs
// that are not all zero to dst at the same offset.
func copyChunkAt(src, dst Disk, buf []byte, off int64) error {
	if n, err := src.ReadAt(buf, off); n < len(buf) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("read source at %d: %w", off+int64(n), err)
	}
	return writeNonZero(dst, buf, off)
}

// writeNonZero writes the runs of buf that are not all zero, judged in
// zeroGrain pieces aligned to the disk offset.
func writeNonZero(w io.WriterAt, buf []byte, off int64) error {
	start := -1 // start of the current non-zero run in buf
	for i := 0; i < len(buf); {
		// The piece ends at the next zeroGrain boundary of the disk.
		end := min(len(buf), i+zeroGrain-int((off+int64(i))%zeroGrain))
		if isZero(buf[i:end]) {
			if start >= 0 {
				if _, err := w.WriteAt(buf[start:i], off+int64(start)); err != nil {
					return err
				}
				start = -1
			}
		} else if start < 0 {
			start = i
		}
		i = end
	}
	if start >= 0 {
		if _, err := w.WriteAt(buf[start:], off+int64(start)); err != nil {
			return err
		}
	}
	return nil
}

// zeros is compared against to find all-zero pieces; bytes.Equal runs
// vectorised.
var zeros = make([]byte, zeroGrain)

// isZero reports whether b (at most zeroGrain bytes) is all zero.
func isZero(b []byte) bool { return bytes.Equal(b, zeros[:len(b)]) }

// progress serialises calls of a progress callback.
type progress struct {
	mu    sync.Mutex
	fn    func(done, total int64)
	done  int64
	total int64
}

func newProgress(fn func(done, total int64), total int64) *progress {
	return &progress{fn: fn, total: total}
}

func (p *progress) add(n int64) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.fn(p.done, p.total)
}

func (p *progress) finish() {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != p.total {
		p.done = p.total
		p.fn(p.done, p.total)
	}
}

// holeMap finds the file system holes inside the data extents of a VHD
// or VHDX source. A block can be allocated in the format yet hold holes
// in its file (this package's VHDX writer leaves the unwritten parts of
// a block as holes); such ranges read as zeros, so reading them only
// costs time. holeMap opens the files of the chain a second time, as raw
// images, and maps them with SEEK_DATA and SEEK_HOLE where the platform
// has them.
//
// It is used only where the bytes of a data extent are read straight
// from its file at FileOffset: VHD, and VHDX whose log is clean or was
// replayed into the file (not a dirty log overlaid in memory), and only
// when the file at the recorded path still has the recorded size.
// Anything else is left as it is, which is always correct.
type holeMap struct {
	files []*raw.Disk // by depth in the chain; nil: do not refine
}

func newHoleMap(src Disk) *holeMap {
	h := &holeMap{}
	info := src.Info()
	for in := &info; in != nil; in = in.Parent {
		h.files = append(h.files, openForHoles(in))
	}
	return h
}

// openForHoles opens the file described by in as a raw image, or
// returns nil when its holes must not be used.
func openForHoles(in *Info) *raw.Disk {
	switch {
	case in.Path == "":
		return nil
	case in.Format == FormatVHD:
	case in.Format == FormatVHDX:
		if st := detail(in, "log_state"); st != "clean" && st != "replayed" {
			return nil
		}
	default:
		return nil
	}
	d, err := raw.Open(in.Path, &OpenOptions{ReadOnly: true})
	if err != nil {
		return nil
	}
	if d.Size() != in.FileSize {
		d.Close()
		return nil
	}
	return d
}

// detail returns the string value of a detail of in, or "".
func detail(in *Info, key string) string {
	for _, f := range in.Details {
		if f.Key == key {
			s, _ := f.Value.(string)
			return s
		}
	}
	return ""
}

// refine calls fn for e, or for the pieces of e split at the holes of
// the file that holds it; holes become [Zero] extents.
func (h *holeMap) refine(e Extent, fn func(Extent) error) error {
	if e.State != Data || e.FileOffset < 0 || e.Depth >= len(h.files) || h.files[e.Depth] == nil {
		return fn(e)
	}
	f := h.files[e.Depth]
	if e.FileOffset > f.Size() || e.Length > f.Size()-e.FileOffset {
		return fn(e)
	}
	ext, err := f.Map(e.FileOffset, e.Length)
	if err != nil {
		return fn(e)
	}
	for _, x := range ext {
		piece := Extent{
			Offset:     e.Offset + (x.Offset - e.FileOffset),
			Length:     x.Length,
			State:      Data,
			FileOffset: x.Offset,
			Depth:      e.Depth,
		}
		if x.State != Data {
			piece.State, piece.FileOffset = Zero, -1
		}
		if err := fn(piece); err != nil {
			return err
		}
	}
	return nil
}

func (h *holeMap) close() {
	for _, f := range h.files {
		if f != nil {
			f.Close()
		}
	}
}
