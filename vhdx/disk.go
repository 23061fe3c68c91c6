package vhdx

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// Disk is an open VHDX file. It implements [vdisk.Image]. ReadAt may be
// called from many goroutines at once; WriteAt, Sync and Close take an
// exclusive lock.
type Disk struct {
	mu       sync.RWMutex
	f        vdisk.File
	r        io.ReaderAt // f, or the replay overlay of a read-only dirty open
	path     string
	readOnly bool
	closed   bool

	ident      *FileIdentifier
	hdr        Header // current header
	hdrSlot    int    // 0: header 1 is current, 1: header 2
	rt         *RegionTable
	rtCopy     int // region table copy in use, 1 or 2
	batRegion  RegionTableEntry
	metaRegion RegionTableEntry
	meta       *Metadata
	typ        vdisk.Type
	geo        geometry
	bat        []batEntry
	fileSize   int64 // size of the file (replayed size under an overlay)
	allocEnd   int64 // 1 MiB-aligned end of every object in the file
	logState   string

	parent        *Disk
	parentSkipped bool // differencing disk opened with ParentPolicy.Skip

	// Session state of a writable open.
	fileGUIDDone bool       // FileWriteGuid renewed
	dataGUIDDone bool       // DataWriteGuid renewed
	logw         *logWriter // non-nil while LogGuid is set by this session
	failed       error      // a metadata update failed half-way
}

// Open opens the VHDX file at path. Parents of a differencing disk are
// found through its parent locator and opened read-only.
func Open(path string, opts *vdisk.OpenOptions) (*Disk, error) {
	return vdisk.OpenPath(path, opts, OpenFile)
}

// OpenFile opens a VHDX held in f. path is used to resolve parents and
// for [Disk.Info]; it may be "". On success the Disk owns f; on failure
// the caller still does.
func OpenFile(f vdisk.File, path string, opts *vdisk.OpenOptions) (*Disk, error) {
	if opts == nil {
		opts = &vdisk.OpenOptions{}
	}
	d, err := loadFile(f, path, opts)
	if err != nil {
		return nil, err
	}
	if err := d.openParents(opts, 0); err != nil {
		return nil, fmt.Errorf("vhdx: open %s: %w", displayPath(path), err)
	}
	return d, nil
}

// loadFile reads and checks the structures of f without opening any
// parent.
func loadFile(f vdisk.File, path string, opts *vdisk.OpenOptions) (*Disk, error) {
	d := &Disk{f: f, r: f, path: path, readOnly: opts.ReadOnly, logState: "clean"}
	if err := d.load(); err != nil {
		return nil, fmt.Errorf("vhdx: open %s: %w", displayPath(path), err)
	}
	return d, nil
}

// maxChain bounds the depth of a differencing chain, so that files
// naming each other (or themselves) as parent cannot recurse forever.
const maxChain = 64

// errTooDeep is returned as is through every level of a chain that is
// too deep.
var errTooDeep error = &vdisk.CorruptError{Format: "vhdx",
	Structure: "parent chain", Offset: -1,
	Reason: fmt.Sprintf("more than %d differencing levels (a loop?)", maxChain)}

// openParents opens the parent chain of a disk loaded depth levels below
// the disk the caller opened.
func (d *Disk) openParents(opts *vdisk.OpenOptions, depth int) error {
	if !d.meta.HasParent {
		return nil
	}
	if opts != nil && opts.Parent.Skip {
		if !d.readOnly {
			return fmt.Errorf("%w: a disk opened without its parent "+
				"must be read-only", vdisk.ErrInvalidArgument)
		}
		d.parentSkipped = true
		return nil
	}
	if depth >= maxChain {
		return errTooDeep
	}
	return d.openParent(opts, depth)
}

func displayPath(p string) string {
	if p == "" {
		return "(unnamed)"
	}
	return p
}

// Detect reports whether r starts with the VHDX file type identifier.
func Detect(r io.ReaderAt, size int64) bool {
	if size < headerSectionSize {
		return false
	}
	var b [8]byte
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return false
	}
	return string(b[:]) == identifierSignature
}

// readFull reads len(p) bytes at off from r; a short read is corruption
// of structure.
func readFull(r io.ReaderAt, p []byte, off int64, structure string) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return corrupt(structure, "", off, "%d bytes beyond the end of the file", len(p)-n)
	}
	return err
}

// load reads and validates every structure, replaying or overlaying the
// log first.
func (d *Disk) load() error {
	size, err := d.f.Size()
	if err != nil {
		return err
	}
	d.fileSize = size
	if size < headerSectionSize {
		return corrupt("file", "", 0, "file is %d bytes, smaller than the 1 MiB header section", size)
	}
	hs := make([]byte, regionTable2Offset+regionTableSize)
	if err := readFull(d.f, hs, 0, "header section"); err != nil {
		return err
	}
	if d.ident, err = decodeFileIdentifier(hs[:520]); err != nil {
		return err
	}
	h, slot, err := chooseHeader(hs[header1Offset:][:headerSize], hs[header2Offset:][:headerSize])
	if err != nil {
		return err
	}
	if err := h.validate(slot, size); err != nil {
		return err
	}
	d.hdr, d.hdrSlot = *h, slot
	if !h.LogGUID.IsZero() {
		if err := d.handleLog(); err != nil {
			return err
		}
		// Replay may have rewritten the region tables.
		if err := readFull(d.r, hs[regionTable1Offset:], regionTable1Offset, "region table"); err != nil {
			return err
		}
	}
	if err := d.loadRegions(hs); err != nil {
		return err
	}
	if err := d.loadMetadata(); err != nil {
		return err
	}
	return d.loadBAT()
}

// handleLog replays the log (read-write) or builds the overlay
// (read-only) (FORMATS.md 3.5.3).
func (d *Disk) handleLog() error {
	seq, err := readLog(d.f, int64(d.hdr.LogOffset), d.hdr.LogLength, d.hdr.LogGUID, d.fileSize)
	if err != nil {
		return fmt.Errorf("log replay: %w", err)
	}
	if d.readOnly {
		ov := newOverlay(d.f, d.fileSize, seq)
		d.r, d.fileSize = ov, ov.size
		d.logState = "dirty (replayed in memory)"
		return nil
	}
	// A writable open renews FileWriteGuid before it modifies anything.
	if err := d.renewWriteGUIDs(false); err != nil {
		return err
	}
	// Zero ranges are written only where the file has bytes: past its
	// end it reads as zeros once extended, so a hostile descriptor
	// zeroing terabytes costs one Truncate, not terabytes of writes.
	written := d.fileSize // end of the bytes the file holds so far
	end := int64(0)
	for _, u := range seq.Updates {
		if u.Data != nil {
			if _, err := d.f.WriteAt(u.Data, u.Offset); err != nil {
				return err
			}
			end = max(end, u.Offset+int64(len(u.Data)))
			written = max(written, end)
			continue
		}
		if n := min(u.ZeroLength, written-u.Offset); n > 0 {
			if err := writeZeros(d.f, u.Offset, n); err != nil {
				return err
			}
		}
		end = max(end, u.Offset+u.ZeroLength)
	}
	size, err := d.f.Size()
	if err != nil {
		return err
	}
	if last := max(int64(min(seq.LastFileOffset, maxFileOffset)), end); last > size {
		if err := d.f.Truncate(last); err != nil {
			return err
		}
	}
	if err := d.f.Sync(); err != nil {
		return err
	}
	if err := d.updateHeader(func(h *Header) { h.LogGUID = GUID{} }); err != nil {
		return err
	}
	if d.fileSize, err = d.f.Size(); err != nil {
		return err
	}
	d.logState = "replayed"
	return nil
}

// writeZeros writes n zero bytes at off.
func writeZeros(w io.WriterAt, off, n int64) error {
	buf := make([]byte, min(n, 1*miB))
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := w.WriteAt(buf[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}

// loadRegions decodes region table 1, falling back to copy 2 when copy
// 1 is corrupt (FORMATS.md 3.4).
func (d *Disk) loadRegions(hs []byte) error {
	rt, err := decodeRegionTable(hs[regionTable1Offset:][:regionTableSize], regionTable1Offset)
	d.rtCopy = 1
	if err != nil {
		rt2, err2 := decodeRegionTable(hs[regionTable2Offset:][:regionTableSize], regionTable2Offset)
		if err2 != nil {
			return corrupt("region tables", "", regionTable1Offset, "no valid copy (%v; %v)", err, err2)
		}
		rt, d.rtCopy = rt2, 2
	}
	tabOff := int64(regionTable1Offset)
	if d.rtCopy == 2 {
		tabOff = regionTable2Offset
	}
	bat, meta, err := rt.regions(tabOff)
	if err != nil {
		return err
	}
	for _, e := range rt.Entries {
		if e.FileOffset+uint64(e.Length) > uint64(d.fileSize) {
			return corrupt(regionTableName(tabOff), "FileOffset", tabOff,
				"region %s [%d, +%d) beyond the end of the file (%d)", e.GUID, e.FileOffset, e.Length, d.fileSize)
		}
		if d.hdr.LogLength > 0 && overlaps(e.FileOffset, uint64(e.Length), d.hdr.LogOffset, uint64(d.hdr.LogLength)) {
			return corrupt(regionTableName(tabOff), "FileOffset", tabOff, "region %s overlaps the log", e.GUID)
		}
	}
	d.rt, d.batRegion, d.metaRegion = rt, bat, meta
	return nil
}

// loadMetadata decodes the metadata table and the system items.
func (d *Disk) loadMetadata() error {
	off := int64(d.metaRegion.FileOffset)
	if d.metaRegion.Length < metadataTableSize {
		return corrupt("metadata region", "Length", off, "region shorter than the 64 KiB table")
	}
	tb := make([]byte, metadataTableSize)
	if err := readFull(d.r, tb, off, "metadata table"); err != nil {
		return err
	}
	t, err := decodeMetadataTable(tb, off, d.metaRegion.Length)
	if err != nil {
		return err
	}
	m, err := decodeMetadata(t, off, func(e MetadataTableEntry) ([]byte, error) {
		b := make([]byte, e.Length)
		return b, readFull(d.r, b, off+int64(e.Offset), "metadata item")
	})
	if err != nil {
		return err
	}
	d.meta, d.typ, d.geo = m, m.Type(), newGeometry(m)
	return nil
}

// loadBAT reads the BAT and checks every entry (FORMATS.md 3.6, 5).
func (d *Disk) loadBAT() error {
	off := int64(d.batRegion.FileOffset)
	if d.geo.batBytes() > int64(d.batRegion.Length) {
		return corrupt("BAT", "Length", off, "region of %d bytes cannot hold %d entries", d.batRegion.Length, d.geo.totalEntries)
	}
	b := make([]byte, d.geo.batBytes())
	if err := readFull(d.r, b, off, "BAT"); err != nil {
		return err
	}
	bat, err := decodeBAT(b, off, &d.geo, d.typ)
	if err != nil {
		return err
	}
	d.bat = bat
	if errs := d.checkBlocks(); len(errs) > 0 {
		return errs[0]
	}
	d.allocEnd = roundUp(max(d.fileSize, d.objectsEnd()), miB)
	return nil
}

// object is a 1 MiB-aligned range of the file owned by one structure.
type object struct {
	off, length int64
	name        string
	fileOff     int64 // offset of the entry naming it, for errors
	virtEnd     int64 // bytes of the object that lie inside the virtual disk
}

// objects lists the log, the regions and every present block.
func (d *Disk) objects() []object {
	var objs []object
	if d.hdr.LogLength > 0 {
		objs = append(objs, object{int64(d.hdr.LogOffset), int64(d.hdr.LogLength), "log", header1Offset + 72, int64(d.hdr.LogLength)})
	}
	for _, e := range d.rt.Entries {
		objs = append(objs, object{int64(e.FileOffset), int64(e.Length), "region " + e.GUID.String(), regionTable1Offset, int64(e.Length)})
	}
	batOff := int64(d.batRegion.FileOffset)
	for i, e := range d.bat {
		s := e.state()
		idx := int64(i)
		if d.geo.isBitmapIndex(idx) {
			if s == SBBlockPresent {
				objs = append(objs, object{e.offset(), miB, fmt.Sprintf("sector bitmap block %d", i), batOff + 8*idx, miB})
			}
			continue
		}
		if s == BlockFullyPresent || s == BlockPartiallyPresent {
			k := idx - idx/(d.geo.chunkRatio+1)
			inside := min(d.geo.blockSize, d.geo.virtualSize-k*d.geo.blockSize)
			objs = append(objs, object{e.offset(), d.geo.blockSize, fmt.Sprintf("payload block %d", k), batOff + 8*idx, inside})
		}
	}
	return objs
}

// objectsEnd returns the end of the last object.
func (d *Disk) objectsEnd() int64 {
	end := int64(headerSectionSize)
	for _, o := range d.objects() {
		end = max(end, o.off+o.length)
	}
	return end
}

// checkBlocks checks that present blocks are 1 MiB-aligned (by
// construction of the entry), after the header section, inside the file
// for the part within the virtual size, unique and non-overlapping, and
// that every partially present block has its sector bitmap.
func (d *Disk) checkBlocks() []error {
	var errs []error
	objs := d.objects()
	for _, o := range objs {
		if o.off < headerSectionSize || o.off > maxFileOffset {
			errs = append(errs, corrupt("BAT", "FileOffsetMB", o.fileOff, "%s at file offset %d", o.name, o.off))
		} else if o.off+o.virtEnd > d.fileSize {
			errs = append(errs, corrupt("BAT", "FileOffsetMB", o.fileOff, "%s [%d, +%d) extends past the end of the file (%d)", o.name, o.off, o.virtEnd, d.fileSize))
		}
	}
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].off < objs[j].off })
	for i := 1; i < len(objs); i++ {
		a, b := objs[i-1], objs[i]
		if b.off < a.off+a.length {
			errs = append(errs, corrupt("BAT", "FileOffsetMB", b.fileOff, "%s at %d overlaps %s at %d", b.name, b.off, a.name, a.off))
		}
	}
	if d.typ == vdisk.TypeDifferencing {
		for k := range d.geo.dataBlocks {
			i := d.geo.payloadIndex(k)
			if d.bat[i].state() != BlockPartiallyPresent {
				continue
			}
			c := k / d.geo.chunkRatio
			if d.bat[d.geo.bitmapIndex(c)].state() != SBBlockPresent {
				errs = append(errs, corrupt("BAT", "State", int64(d.batRegion.FileOffset)+8*i,
					"payload block %d partially present but chunk %d has no sector bitmap", k, c))
			}
		}
	}
	return errs
}

// Size returns the virtual size in bytes.
func (d *Disk) Size() int64 { return d.geo.virtualSize }

// ReadAt reads the virtual disk. Past the end it returns io.EOF like a
// file.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return 0, vdisk.ErrClosed
	}
	if off < 0 {
		return 0, fmt.Errorf("vhdx: read at %d: %w", off, vdisk.ErrOutOfRange)
	}
	size := d.geo.virtualSize
	if off >= size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > size-off {
		n = int(size - off)
	}
	if err := d.readAt(p[:n], off); err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readAt reads p at off, which lie inside the virtual disk; the caller
// holds d.mu.
func (d *Disk) readAt(p []byte, off int64) error {
	bs := d.geo.blockSize
	for len(p) > 0 {
		k, in := off/bs, off%bs
		n := min(int64(len(p)), bs-in)
		e := d.bat[d.geo.payloadIndex(k)]
		var err error
		switch e.state() {
		case BlockFullyPresent:
			err = readZeroFill(d.r, p[:n], e.offset()+in, d.fileSize)
		case BlockPartiallyPresent:
			err = d.readPartial(p[:n], k, in, e)
		case BlockNotPresent:
			err = d.readParent(p[:n], off)
		default:
			clear(p[:n])
		}
		if err != nil {
			return err
		}
		p, off = p[n:], off+n
	}
	return nil
}

// readParent reads from the parent, or zeros without one. Bytes beyond
// the parent's size read as zeros.
func (d *Disk) readParent(p []byte, off int64) error {
	if d.parentSkipped {
		return fmt.Errorf("vhdx: read at %d of %s: held by the parent, "+
			"which was not opened: %w", off, displayPath(d.path), vdisk.ErrParentNotFound)
	}
	if d.parent == nil {
		clear(p)
		return nil
	}
	par := d.parent
	par.mu.RLock()
	defer par.mu.RUnlock()
	if par.closed {
		return vdisk.ErrClosed
	}
	psize := par.geo.virtualSize
	if off >= psize {
		clear(p)
		return nil
	}
	m := min(int64(len(p)), psize-off)
	clear(p[m:])
	return par.readAt(p[:m], off)
}

// sectorBitmap returns the bitmap bits covering sectors [s0, s1) of
// block k, as a byte slice and the bit index of s0 within it.
func (d *Disk) sectorBitmap(k, s0, s1 int64) ([]byte, int64, error) {
	c := k / d.geo.chunkRatio
	sb := d.bat[d.geo.bitmapIndex(c)]
	if sb.state() != SBBlockPresent {
		return nil, 0, corrupt("BAT", "State", int64(d.batRegion.FileOffset)+8*d.geo.bitmapIndex(c), "chunk %d has no sector bitmap", c)
	}
	base := (k % d.geo.chunkRatio) * d.geo.sectorsPerBlock()
	b0, b1 := (base+s0)/8, (base+s1+7)/8
	bm := make([]byte, b1-b0)
	if err := readZeroFill(d.r, bm, sb.offset()+b0, d.fileSize); err != nil {
		return nil, 0, err
	}
	return bm, base + s0 - 8*b0, nil
}

// readPartial reads a PARTIALLY_PRESENT block sector by sector run:
// set bits from this file, clear bits from the parent.
func (d *Disk) readPartial(p []byte, k, in int64, e batEntry) error {
	ss := d.geo.sectorSize
	s0, s1 := in/ss, (in+int64(len(p))+ss-1)/ss
	bm, bit0, err := d.sectorBitmap(k, s0, s1)
	if err != nil {
		return err
	}
	vblock := k * d.geo.blockSize
	for s := s0; s < s1; {
		set, run := bitRun(bm, bit0+s-s0, bit0+s1-s0)
		lo, hi := max(s*ss, in), min((s+run)*ss, in+int64(len(p)))
		q := p[lo-in : hi-in]
		if set {
			err = readZeroFill(d.r, q, e.offset()+lo, d.fileSize)
		} else {
			err = d.readParent(q, vblock+lo)
		}
		if err != nil {
			return err
		}
		s += run
	}
	return nil
}
