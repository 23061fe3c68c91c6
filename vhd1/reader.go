package vhd1

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// Disk is an open VHD: fixed, dynamic or differencing. It implements
// vdisk.Image. ReadAt may be called from many goroutines at once;
// WriteAt, Sync and Close are safe alongside them.
type Disk struct {
	mu       sync.RWMutex
	f        vdisk.File
	path     string
	readOnly bool
	closed   bool

	footer    Footer
	footerSrc string // "end", "end (511 bytes)", "copy at 0"
	copyStale bool   // the copy at offset 0 differs from footer
	fileSize  int64
	// next is where the next block goes: the end footer's offset
	// rounded up to a sector (FORMATS.md 2.9 step 1).
	next int64
	// tailDirty is set while an allocation is under way and stays set
	// when it fails: the space at next may then hold stale bytes.
	tailDirty bool

	header *DynamicHeader // nil for fixed disks
	bat    []uint32       // ceil(CurrentSize/BlockSize) entries
	bmSize int64          // sector bitmap bytes per block
	cache  bitmapCache

	parent        *Disk
	parentSkipped bool // differencing disk opened with ParentPolicy.Skip
	parentPath    string
	warnings      []string // facts worth reporting: timestamp mismatch...
}

// maxChain bounds the depth of a differencing chain, so a file naming
// itself as its parent cannot recurse forever.
const maxChain = 64

// errTooDeep is returned as is through every level of a chain that is
// too deep, so the levels above do not try other candidates.
var errTooDeep error = &vdisk.CorruptError{Format: "vhd",
	Structure: "parent chain", Offset: -1,
	Reason: fmt.Sprintf("more than %d differencing levels (a loop?)", maxChain)}

// Detect reports whether r, of size bytes, looks like a VHD: "conectix"
// at offset 0 (dynamic and differencing disks) or at the start of the
// last 512 or 511 bytes (every disk). It only sniffs content.
func Detect(r io.ReaderAt, size int64) bool {
	for _, off := range []int64{0, size - FooterSize, size - OldFooterSize} {
		if off < 0 || size-off < OldFooterSize {
			continue
		}
		var b [8]byte
		if _, err := r.ReadAt(b[:], off); err != nil && err != io.EOF {
			continue
		}
		if b == footerCookie {
			return true
		}
	}
	return false
}

// Open opens the VHD at path, read-only when opts.ReadOnly is set. A
// differencing disk's parents are opened read-only through opts.
func Open(path string, opts *vdisk.OpenOptions) (*Disk, error) {
	return vdisk.OpenPath(path, opts, OpenFile)
}

// OpenFile opens the VHD stored in f. path locates the parents of a
// differencing disk and fills Info.Path; it may be "". On success the
// Disk owns f; on failure the caller still does.
func OpenFile(f vdisk.File, path string, opts *vdisk.OpenOptions) (*Disk, error) {
	return openFile(f, path, opts, 0)
}

func openFile(f vdisk.File, path string, opts *vdisk.OpenOptions, depth int) (*Disk, error) {
	d, err := loadFile(f, path, opts)
	if err != nil {
		return nil, err
	}
	if err := d.openParents(opts, depth); err != nil {
		return nil, err
	}
	return d, nil
}

// loadFile reads the structures of f without opening any parent.
func loadFile(f vdisk.File, path string, opts *vdisk.OpenOptions) (*Disk, error) {
	if opts == nil {
		opts = &vdisk.OpenOptions{}
	}
	d := &Disk{f: f, path: path, readOnly: opts.ReadOnly}
	if err := d.load(); err != nil {
		return nil, opError(path, err)
	}
	return d, nil
}

// openParents opens the parent chain of a differencing disk loaded at
// depth levels below the disk the caller opened.
func (d *Disk) openParents(opts *vdisk.OpenOptions, depth int) error {
	path := d.path
	if opts == nil {
		opts = &vdisk.OpenOptions{}
	}
	if d.footer.DiskType == DiskTypeDifferencing && opts.Parent.Skip {
		if !d.readOnly {
			return fmt.Errorf("%w: a disk opened without its parent "+
				"must be read-only", vdisk.ErrInvalidArgument)
		}
		d.parentSkipped = true
		return nil
	}
	if d.footer.DiskType == DiskTypeDifferencing {
		if depth >= maxChain {
			return errTooDeep
		}
		if err := d.openParent(opts, depth); err != nil {
			if err == errTooDeep && depth == 0 {
				err = opError(path, err)
			}
			return err
		}
	}
	return nil
}

func opError(path string, err error) error {
	if path == "" {
		return err
	}
	return fmt.Errorf("open %s: %w", path, err)
}

// load reads and validates the footer, header and BAT.
func (d *Disk) load() error {
	size, err := d.f.Size()
	if err != nil {
		return err
	}
	d.fileSize = size
	l, err := readFooter(d.f, size)
	if err != nil {
		return err
	}
	d.footer = *l.footer
	d.footerSrc = l.src
	if err := firstError(sizeIssues(&l.layout)); err != nil {
		return err
	}
	d.next = (l.end + SectorSize - 1) / SectorSize * SectorSize
	if d.footer.DiskType == DiskTypeFixed {
		return nil
	}
	d.copyStale = l.copyStale
	h, err := readHeader(d.f, &l.layout)
	if err != nil {
		return err
	}
	l.header = h
	bat, err := readBAT(d.f, &l.layout)
	if err != nil {
		return err
	}
	if err := firstError(batIssues(&l.layout, bat, metadataRegions(&l.layout))); err != nil {
		return err
	}
	d.header, d.bat, d.bmSize = h, bat, h.BitmapSize()
	return nil
}

// footerResult is the footer chosen by readFooter and where it came from.
type footerResult struct {
	layout
	src       string
	copyStale bool
}

// readFooter finds the footer in use: the last 512 bytes, else the last
// 511 (old footer), else, for dynamic and differencing disks whose end
// is damaged, the copy at offset 0 (FORMATS.md 2.1, 2.2). Only content
// errors lead to the fallback; I/O errors are returned.
func readFooter(f vdisk.File, size int64) (*footerResult, error) {
	if size < OldFooterSize {
		return nil, corrupt("footer", "", 0,
			"file of %d bytes is too small for a footer", size)
	}
	n := int64(FooterSize)
	if size < n {
		n = OldFooterSize
	}
	buf := make([]byte, n)
	if err := readFull(f, buf, size-n); err != nil {
		return nil, err
	}
	res := &footerResult{}
	end, endErr := DecodeFooter(buf, size-n)
	res.src, res.footerOff = "end", size-n
	if endErr != nil && n == FooterSize && bytes.Equal(buf[1:9], footerCookie[:]) {
		if old, err := DecodeFooter(buf[1:], size-OldFooterSize); err == nil {
			end, endErr = old, nil
			res.src, res.footerOff = "end (511 bytes)", size-OldFooterSize
		}
	}
	var first *Footer
	if size >= FooterSize+HeaderSize {
		b := make([]byte, FooterSize)
		if err := readFull(f, b, 0); err != nil {
			return nil, err
		}
		first, _ = DecodeFooter(b, 0)
		if first != nil && first.DiskType == DiskTypeFixed {
			first = nil
		}
	}
	res.fileSize = size
	switch {
	case endErr == nil:
		res.footer, res.end = end, res.footerOff
		if end.DiskType != DiskTypeFixed {
			res.copyStale = first == nil || *first != *end
		}
	case first != nil:
		res.footer, res.end = first, size
		res.src, res.footerOff = "copy at 0", 0
	default:
		return nil, endErr
	}
	return res, nil
}

// readHeader reads and validates the dynamic header at Data Offset and
// the placement of the BAT.
func readHeader(f vdisk.File, l *layout) (*DynamicHeader, error) {
	off := int64(l.footer.DataOffset)
	b := make([]byte, HeaderSize)
	if err := readFull(f, b, off); err != nil {
		return nil, err
	}
	h, err := DecodeDynamicHeader(b, off)
	if err != nil {
		return nil, err
	}
	l.header = h
	if err := firstError(tableIssues(l)); err != nil {
		return nil, err
	}
	return h, nil
}

// readBAT reads the entries covering Current Size. tableIssues has
// checked that they lie inside the file, which bounds the allocation.
func readBAT(f vdisk.File, l *layout) ([]uint32, error) {
	n := blocksNeeded(l.footer, l.header)
	b := make([]byte, 4*n)
	if err := readFull(f, b, int64(l.header.TableOffset)); err != nil {
		return nil, err
	}
	return DecodeBAT(b), nil
}

// readFull reads len(b) bytes at off; a short file is corruption.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == io.EOF || err == nil {
		return corrupt("file", "", off,
			"%d bytes wanted, file ends after %d", len(b), n)
	}
	return err
}

// Size returns the virtual size: the footer's Current Size, as Windows,
// Hyper-V, VirtualBox and libvhdi read it (FORMATS.md 2.4).
func (d *Disk) Size() int64 { return int64(d.footer.CurrentSize) }

// Footer returns a copy of the footer in use.
func (d *Disk) Footer() Footer { return d.footer }

// Header returns a copy of the dynamic header; ok is false for fixed
// disks.
func (d *Disk) Header() (h DynamicHeader, ok bool) {
	if d.header == nil {
		return h, false
	}
	return *d.header, true
}

// Parent returns the parent of a differencing disk, or nil.
func (d *Disk) Parent() *Disk { return d.parent }

// ReadAt reads len(p) bytes of virtual disk at off. Like a file, it
// returns io.EOF when the read reaches past the virtual size.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return 0, vdisk.ErrClosed
	}
	if off < 0 {
		return 0, fmt.Errorf("vhd: read at %d: %w", off, vdisk.ErrOutOfRange)
	}
	size := d.Size()
	if off >= size {
		return 0, io.EOF
	}
	n, eof := len(p), false
	if int64(n) > size-off {
		n, eof = int(size-off), true
	}
	if err := d.read(p[:n], off); err != nil {
		return 0, err
	}
	if eof {
		return n, io.EOF
	}
	return n, nil
}

// read fills p from virtual offset off, inside the virtual size.
func (d *Disk) read(p []byte, off int64) error {
	if d.header == nil {
		return d.readFile(p, off)
	}
	bs := int64(d.header.BlockSize)
	for len(p) > 0 {
		i, in := off/bs, off%bs
		n := min(int64(len(p)), bs-in)
		if err := d.readBlock(i, in, p[:n]); err != nil {
			return err
		}
		p, off = p[n:], off+n
	}
	return nil
}

// readFile reads file bytes, treating a short file as corruption.
func (d *Disk) readFile(p []byte, off int64) error {
	return readFull(d.f, p, off)
}

// readBlock reads p from offset in of block i (FORMATS.md 2.9).
func (d *Disk) readBlock(i, in int64, p []byte) error {
	voff := i*int64(d.header.BlockSize) + in
	e := d.bat[i]
	if e == unused {
		return d.readBelow(p, voff)
	}
	bm, err := d.bitmap(i)
	if err != nil {
		return err
	}
	data := int64(e)*SectorSize + d.bmSize
	return sectorRuns(bm, in, int64(len(p)), func(a, b int64, set bool) error {
		q := p[a-in : b-in]
		if set {
			return d.readFile(q, data+a)
		}
		return d.readBelow(q, i*int64(d.header.BlockSize)+a)
	})
}

// readBelow fills p with what lies under this disk at voff: the parent's
// data for a differencing disk, zeros otherwise.
func (d *Disk) readBelow(p []byte, voff int64) error {
	if d.parentSkipped {
		return fmt.Errorf("vhd: read at %d of %s: held by the parent, "+
			"which was not opened: %w", voff, d.path, vdisk.ErrParentNotFound)
	}
	if d.parent == nil {
		clear(p)
		return nil
	}
	n, err := d.parent.ReadAt(p, voff)
	if err == io.EOF {
		// A parent smaller than the child reads as zeros beyond its end.
		clear(p[n:])
		return nil
	}
	return err
}

// sectorRuns calls fn for each run of bytes [a, b) inside [in, in+n) of a
// block whose sectors share one bitmap bit (MSB first, FORMATS.md 2.8).
func sectorRuns(bm []byte, in, n int64, fn func(a, b int64, set bool) error) error {
	end := in + n
	a := in
	set := bitSet(bm, a/SectorSize)
	for s := a/SectorSize + 1; s*SectorSize < end; s++ {
		// Skip whole bytes that continue the run.
		for s%8 == 0 && (s+8)*SectorSize <= end &&
			(set && bm[s/8] == 0xFF || !set && bm[s/8] == 0) {
			s += 8
		}
		if s*SectorSize >= end {
			break
		}
		if v := bitSet(bm, s); v != set {
			if err := fn(a, s*SectorSize, set); err != nil {
				return err
			}
			a, set = s*SectorSize, v
		}
	}
	return fn(a, end, set)
}

// bitSet reports whether sector s is marked in bm.
func bitSet(bm []byte, s int64) bool {
	return bm[s/8]&(0x80>>(s%8)) != 0
}

// setBit marks sector s in bm.
func setBit(bm []byte, s int64) { bm[s/8] |= 0x80 >> (s % 8) }

// bitmap returns the sector bitmap of allocated block i, from the cache
// or the file. Callers must not modify it unless they hold d.mu for
// writing.
func (d *Disk) bitmap(i int64) ([]byte, error) {
	if bm := d.cache.get(i); bm != nil {
		return bm, nil
	}
	bm := make([]byte, d.bmSize)
	if err := d.readFile(bm, int64(d.bat[i])*SectorSize); err != nil {
		return nil, err
	}
	d.cache.put(i, bm)
	return bm, nil
}

// bitmapCache keeps recently used sector bitmaps, bounded in bytes.
type bitmapCache struct {
	mu    sync.Mutex
	m     map[int64][]byte
	bytes int64
}

const maxCacheBytes = 8 << 20

func (c *bitmapCache) get(i int64) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[i]
}

func (c *bitmapCache) put(i int64, bm []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || c.bytes+int64(len(bm)) > maxCacheBytes {
		c.m, c.bytes = map[int64][]byte{}, 0
	}
	if _, ok := c.m[i]; !ok {
		c.bytes += int64(len(bm))
	}
	c.m[i] = bm
}

// Sync makes every completed write durable.
func (d *Disk) Sync() error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return vdisk.ErrClosed
	}
	if d.readOnly {
		return nil
	}
	return d.f.Sync()
}

// Close syncs a read-write disk and closes its file and its parents.
func (d *Disk) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return vdisk.ErrClosed
	}
	d.closed = true
	var errs []error
	if !d.readOnly {
		errs = append(errs, d.f.Sync())
	}
	errs = append(errs, d.f.Close())
	if d.parent != nil {
		errs = append(errs, d.parent.Close())
	}
	return errors.Join(errs...)
}

// Map describes [off, off+length) of the virtual disk as extents. For a
// differencing disk it describes the merged chain; Depth says which file
// holds each Data extent. Adjacent runs merge when their state, depth
// and file offsets continue each other.
func (d *Disk) Map(off, length int64) ([]vdisk.Extent, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, vdisk.ErrClosed
	}
	if off < 0 || length < 0 || off > d.Size() || length > d.Size()-off {
		return nil, fmt.Errorf("vhd: map [%d, +%d): %w", off, length,
			vdisk.ErrOutOfRange)
	}
	var out []vdisk.Extent
	err := d.mapRange(off, length, 0, func(e vdisk.Extent) {
		out = appendExtent(out, e)
	})
	return out, err
}

func (d *Disk) mapRange(off, length int64, depth int, emit func(vdisk.Extent)) error {
	if length == 0 {
		return nil
	}
	if d.header == nil {
		emit(vdisk.Extent{Offset: off, Length: length, State: vdisk.Data,
			FileOffset: off, Depth: depth})
		return nil
	}
	bs := int64(d.header.BlockSize)
	for end := off + length; off < end; {
		i, in := off/bs, off%bs
		n := min(end-off, bs-in)
		if err := d.mapBlock(i, in, n, depth, emit); err != nil {
			return err
		}
		off += n
	}
	return nil
}

func (d *Disk) mapBlock(i, in, n int64, depth int, emit func(vdisk.Extent)) error {
	base := i * int64(d.header.BlockSize)
	if d.bat[i] == unused {
		return d.mapBelow(base+in, n, depth, emit)
	}
	bm, err := d.bitmap(i)
	if err != nil {
		return err
	}
	data := int64(d.bat[i])*SectorSize + d.bmSize
	return sectorRuns(bm, in, n, func(a, b int64, set bool) error {
		if set {
			emit(vdisk.Extent{Offset: base + a, Length: b - a,
				State: vdisk.Data, FileOffset: data + a, Depth: depth})
			return nil
		}
		return d.mapBelow(base+a, b-a, depth, emit)
	})
}

// mapBelow maps a range this disk does not hold: the parent's extents,
// or unallocated.
func (d *Disk) mapBelow(off, n int64, depth int, emit func(vdisk.Extent)) error {
	if d.parentSkipped {
		// The parent was not opened: what it holds is unknown, so the
		// range must be read (which fails), never taken for zeros.
		emit(vdisk.Extent{Offset: off, Length: n, State: vdisk.Data,
			FileOffset: -1, Depth: depth + 1})
		return nil
	}
	var inParent int64
	if p := d.parent; p != nil && off < p.Size() {
		inParent = min(n, p.Size()-off)
		p.mu.RLock()
		err := p.mapRange(off, inParent, depth+1, emit)
		p.mu.RUnlock()
		if err != nil {
			return err
		}
	}
	if inParent < n {
		emit(vdisk.Extent{Offset: off + inParent, Length: n - inParent,
			State: vdisk.Unallocated, FileOffset: -1})
	}
	return nil
}

// appendExtent appends e to es, merging it into the last extent when it
// continues it.
func appendExtent(es []vdisk.Extent, e vdisk.Extent) []vdisk.Extent {
	if e.State != vdisk.Data {
		e.FileOffset, e.Depth = -1, 0
	}
	if k := len(es) - 1; k >= 0 {
		l := &es[k]
		if l.End() == e.Offset && l.State == e.State && l.Depth == e.Depth &&
			(l.FileOffset < 0 && e.FileOffset < 0 ||
				l.FileOffset >= 0 && l.FileOffset+l.Length == e.FileOffset) {
			l.Length += e.Length
			return es
		}
	}
	return append(es, e)
}
