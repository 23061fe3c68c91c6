package vhdx

import (
	"fmt"
	"sort"

	"github.com/Microsoft/go-winio/pkg/guid"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// This file is the write path: header updates ([MS-VHDX] 2.2.2.1;
// FORMATS.md 3.3), block allocation and metadata updates through the log
// (FORMATS.md 3.5.2).
//
// Order of a write that allocates blocks or changes sector bitmaps:
//
//  1. first write of the session: renew FileWriteGuid and DataWriteGuid
//     (two header passes, each synced);
//  2. write the payload into the new or existing blocks, extend the file,
//     sync: the data is durable before anything points at it;
//  3. encode the changed 4 KiB pages of the BAT and the sector bitmaps as
//     one log entry, write it, sync;
//  4. first log entry of the session only: set a fresh LogGuid in both
//     headers (two passes, synced);
//  5. write the pages to their final place, sync, update the in-memory
//     BAT.
//
// Step 4 comes after step 3 rather than before it ([MS-VHDX] 2.3 sets
// LogGuid before writing log space): while LogGuid is zero the log is
// empty by definition, so writing an entry there first changes nothing
// a reader sees; and a crash between the two then leaves a clean file
// (LogGuid zero, old metadata) instead of a header whose LogGuid names
// no valid entry, which the spec says is corrupt. From step 4 on, replay
// finds the entry and re-applies it, which is idempotent.

// updateHeader writes two new headers, each over the non-current slot
// and synced, with mod applied ([MS-VHDX] 2.2.2.1). mod must set the
// same values both times.
func (d *Disk) updateHeader(mod func(*Header)) error {
	for range 2 {
		h := d.hdr
		h.SequenceNumber++
		mod(&h)
		slot := 1 - d.hdrSlot
		off := int64(header1Offset)
		if slot == 1 {
			off = header2Offset
		}
		if _, err := d.f.WriteAt(h.encode(), off); err != nil {
			return err
		}
		if err := d.f.Sync(); err != nil {
			return err
		}
		d.hdr, d.hdrSlot = h, slot
	}
	return nil
}

// renewWriteGUIDs gives the headers a new FileWriteGuid, once per
// session, before the file is first modified, and with data a new
// DataWriteGuid, once per session, before user-visible data first
// changes (FORMATS.md 3.3). Both go in one header update when both are
// due.
func (d *Disk) renewWriteGUIDs(data bool) error {
	file := !d.fileGUIDDone
	data = data && !d.dataGUIDDone
	if !file && !data {
		return nil
	}
	fw, dw := d.hdr.FileWriteGUID, d.hdr.DataWriteGUID
	var err error
	if file {
		if fw, err = newGUID(); err != nil {
			return err
		}
	}
	if data {
		if dw, err = newGUID(); err != nil {
			return err
		}
	}
	if err := d.updateHeader(func(h *Header) { h.FileWriteGUID, h.DataWriteGUID = fw, dw }); err != nil {
		return err
	}
	d.fileGUIDDone = true
	d.dataGUIDDone = d.dataGUIDDone || data
	return nil
}

// WriteAt writes p at off of the virtual disk. Any offset and length
// inside the disk are accepted; partial sectors are read, modified and
// written.
func (d *Disk) WriteAt(p []byte, off int64) (int, error) {
	if d.readOnly {
		return 0, fmt.Errorf("vhdx: write %s: %w", displayPath(d.path), vdisk.ErrReadOnly)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, vdisk.ErrClosed
	}
	if off < 0 || off > d.geo.virtualSize || int64(len(p)) > d.geo.virtualSize-off {
		return 0, fmt.Errorf("vhdx: write [%d, +%d) beyond virtual size %d: %w", off, len(p), d.geo.virtualSize, vdisk.ErrOutOfRange)
	}
	if d.failed != nil {
		return 0, fmt.Errorf("vhdx: disk unusable after an earlier failure: %w", d.failed)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := d.write(p, off); err != nil {
		d.failed = err
		return 0, fmt.Errorf("vhdx: write %s: %w", displayPath(d.path), err)
	}
	return len(p), nil
}

// write does the work of WriteAt under the exclusive lock.
func (d *Disk) write(p []byte, off int64) error {
	// Widen to whole logical sectors, reading the partial ones.
	ss := d.geo.sectorSize
	start, end := off&^(ss-1), roundUp(off+int64(len(p)), ss)
	if start != off || end != off+int64(len(p)) {
		buf := make([]byte, end-start)
		if err := d.readAt(buf[:ss], start); err != nil {
			return err
		}
		if err := d.readAt(buf[len(buf)-int(ss):], end-ss); err != nil {
			return err
		}
		copy(buf[off-start:], p)
		p, off = buf, start
	}
	if err := d.renewWriteGUIDs(true); err != nil {
		return err
	}
	tx := &txn{d: d, pages: map[int64][]byte{}, bat: map[int64]batEntry{}}
	bs := d.geo.blockSize
	for len(p) > 0 {
		k, in := off/bs, off%bs
		n := min(int64(len(p)), bs-in)
		if err := tx.writeBlock(k, in, p[:n]); err != nil {
			return err
		}
		p, off = p[n:], off+n
	}
	return tx.commit()
}

// txn collects the metadata changes of one WriteAt.
type txn struct {
	d       *Disk
	pages   map[int64][]byte   // file offset of a 4 KiB page -> new content
	bat     map[int64]batEntry // BAT index -> new entry
	newEnd  int64              // file size needed by new blocks
	payload bool               // payload written that must be synced first
}

// entry returns the entry of BAT index i as this transaction sees it.
func (tx *txn) entry(i int64) batEntry {
	if e, ok := tx.bat[i]; ok {
		return e
	}
	return tx.d.bat[i]
}

// page returns the pending content of the 4 KiB page at off, read from
// the file the first time.
func (tx *txn) page(off int64) ([]byte, error) {
	if b, ok := tx.pages[off]; ok {
		return b, nil
	}
	b := make([]byte, 4*kiB)
	if err := readZeroFill(tx.d.f, b, off, tx.d.fileSize); err != nil {
		return nil, err
	}
	tx.pages[off] = b
	return b, nil
}

// setEntry records a new BAT entry and its page update.
func (tx *txn) setEntry(i int64, e batEntry) error {
	off := int64(tx.d.batRegion.FileOffset) + 8*i
	pg, err := tx.page(off &^ (4*kiB - 1))
	if err != nil {
		return err
	}
	le.PutUint64(pg[off&(4*kiB-1):], uint64(e))
	tx.bat[i] = e
	return nil
}

// allocate reserves a 1 MiB-aligned range of n bytes at the end of the
// file.
func (tx *txn) allocate(n int64) int64 {
	d := tx.d
	off := d.allocEnd
	d.allocEnd += n
	tx.newEnd = d.allocEnd
	return off
}

// writeBlock writes p (whole logical sectors) at offset in of payload
// block k.
func (tx *txn) writeBlock(k, in int64, p []byte) error {
	d := tx.d
	i := d.geo.payloadIndex(k)
	e := tx.entry(i)
	full := in == 0 && (int64(len(p)) == d.geo.blockSize ||
		k*d.geo.blockSize+int64(len(p)) == d.geo.virtualSize)
	switch s := e.state(); {
	case s == BlockFullyPresent:
		return tx.writePayload(p, e.offset()+in)
	case s == BlockPartiallyPresent:
		if err := tx.writePayload(p, e.offset()+in); err != nil {
			return err
		}
		if full {
			return tx.setEntry(i, makeEntry(BlockFullyPresent, e.offset()))
		}
		return tx.markSectors(k, in, int64(len(p)))
	case s == BlockNotPresent && d.parent != nil && !full:
		// Differencing: a partial write allocates a block that holds
		// only the written sectors; the sector bitmap sends the others
		// to the parent (FORMATS.md 3.7). Nothing is copied.
		if err := tx.ensureBitmap(k / d.geo.chunkRatio); err != nil {
			return err
		}
		off := tx.allocate(d.geo.blockSize)
		if err := tx.writePayload(p, off+in); err != nil {
			return err
		}
		if err := tx.setEntry(i, makeEntry(BlockPartiallyPresent, off)); err != nil {
			return err
		}
		return tx.markSectors(k, in, int64(len(p)))
	default:
		// The block reads as zeros (or, whole-block write, is replaced):
		// a zero write to a zero block changes nothing.
		if (s != BlockNotPresent || d.parent == nil) && allZero(p) {
			return nil
		}
		off := tx.allocate(d.geo.blockSize)
		if err := tx.writePayload(p, off+in); err != nil {
			return err
		}
		return tx.setEntry(i, makeEntry(BlockFullyPresent, off))
	}
}

// writePayload writes payload bytes at file offset off.
func (tx *txn) writePayload(p []byte, off int64) error {
	tx.payload = true
	_, err := tx.d.f.WriteAt(p, off)
	return err
}

// ensureBitmap allocates the sector bitmap block of chunk c if needed.
func (tx *txn) ensureBitmap(c int64) error {
	i := tx.d.geo.bitmapIndex(c)
	if tx.entry(i).state() == SBBlockPresent {
		return nil
	}
	off := tx.allocate(miB)
	return tx.setEntry(i, makeEntry(SBBlockPresent, off))
}

// markSectors sets the bitmap bits of bytes [in, in+n) of block k.
func (tx *txn) markSectors(k, in, n int64) error {
	d := tx.d
	sb := tx.entry(d.geo.bitmapIndex(k / d.geo.chunkRatio))
	base := (k%d.geo.chunkRatio)*d.geo.sectorsPerBlock() + in/d.geo.sectorSize
	count := n / d.geo.sectorSize
	for bit := base; bit < base+count; {
		byteOff := sb.offset() + bit/8
		pageOff := byteOff &^ (4*kiB - 1)
		pg, err := tx.page(pageOff)
		if err != nil {
			return err
		}
		pageBits := (pageOff-sb.offset())*8 + 4*kiB*8
		m := min(base+count, pageBits) - bit
		setBits(pg, bit-(pageOff-sb.offset())*8, m)
		bit += m
	}
	return nil
}

// allZero reports whether b holds only zeros.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if le.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// commit makes the payload durable, then logs and applies the page
// updates, then updates the in-memory BAT.
func (tx *txn) commit() error {
	d := tx.d
	if tx.newEnd > d.fileSize {
		if err := d.f.Truncate(tx.newEnd); err != nil {
			return err
		}
		d.fileSize = tx.newEnd
	}
	if len(tx.pages) == 0 {
		return nil
	}
	if err := d.f.Sync(); err != nil {
		return err
	}
	offs := make([]int64, 0, len(tx.pages))
	for off := range tx.pages {
		offs = append(offs, off)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	maxPages := logMaxDataUpdates(d.hdr.LogLength)
	if maxPages < 1 {
		return vdisk.Unsupportedf("vhdx: log of %d bytes too small to write", d.hdr.LogLength)
	}
	for len(offs) > 0 {
		n := min(len(offs), maxPages)
		ups := make([]logUpdate, n)
		for j, off := range offs[:n] {
			ups[j] = logUpdate{Offset: off, Data: tx.pages[off]}
		}
		if err := d.logAndApply(ups); err != nil {
			return err
		}
		offs = offs[n:]
	}
	for i, e := range tx.bat {
		d.bat[i] = e
	}
	return nil
}

// logAndApply writes one log entry, arms LogGuid on the session's first
// entry, then applies the updates (see the order at the top of the
// file).
func (d *Disk) logAndApply(ups []logUpdate) error {
	fresh := d.logw == nil
	if fresh {
		g, err := newGUID()
		if err != nil {
			return err
		}
		d.logw = newLogWriter(d.f, int64(d.hdr.LogOffset), d.hdr.LogLength, [16]byte(g))
	}
	flushed := uint64(d.fileSize) &^ (miB - 1)
	last := uint64(roundUp(d.fileSize, miB))
	if err := d.logw.append(ups, flushed, last); err != nil {
		if fresh {
			d.logw = nil
		}
		return err
	}
	if err := d.f.Sync(); err != nil {
		return err
	}
	if fresh {
		g := GUID(d.logw.guid)
		if err := d.updateHeader(func(h *Header) { h.LogGUID = g }); err != nil {
			return err
		}
	}
	for _, u := range ups {
		if _, err := d.f.WriteAt(u.Data, u.Offset); err != nil {
			return err
		}
	}
	return d.f.Sync()
}

// Sync makes every write durable and, when this session used the log,
// marks the log empty again (LogGuid zero in both headers).
func (d *Disk) Sync() error {
	if d.readOnly {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return vdisk.ErrClosed
	}
	return d.sync()
}

func (d *Disk) sync() error {
	if err := d.f.Sync(); err != nil {
		return err
	}
	if d.logw == nil || d.failed != nil {
		return nil
	}
	if err := d.updateHeader(func(h *Header) { h.LogGUID = GUID{} }); err != nil {
		return err
	}
	d.logw = nil
	return nil
}

// Close syncs a writable disk and closes the file and its parents.
func (d *Disk) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return vdisk.ErrClosed
	}
	d.closed = true
	var err error
	if !d.readOnly {
		err = d.sync()
	}
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	if d.parent != nil {
		if perr := d.parent.Close(); err == nil {
			err = perr
		}
	}
	return err
}

// SetVirtualDiskID rewrites the Virtual Disk ID metadata item
// ([MS-VHDX] 2.6.2.3) of a disk opened read-write. The 4 KiB page that
// holds the item goes through the log like any metadata update, so a
// crash leaves either the old or the new identifier. Children of the
// disk record the DataWriteGuid, not this identifier, so they still
// match it.
func (d *Disk) SetVirtualDiskID(id guid.GUID) error {
	if d.readOnly {
		return fmt.Errorf("vhdx: set virtual disk id of %s: %w", displayPath(d.path), vdisk.ErrReadOnly)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return vdisk.ErrClosed
	}
	if d.failed != nil {
		return fmt.Errorf("vhdx: disk unusable after an earlier failure: %w", d.failed)
	}
	if err := d.setVirtualDiskID(GUID(id.ToWindowsArray())); err != nil {
		d.failed = err
		return fmt.Errorf("vhdx: set virtual disk id of %s: %w", displayPath(d.path), err)
	}
	return nil
}

func (d *Disk) setVirtualDiskID(id GUID) error {
	region := int64(d.metaRegion.FileOffset)
	tb := make([]byte, metadataTableSize)
	if err := readFull(d.r, tb, region, "metadata table"); err != nil {
		return err
	}
	t, err := decodeMetadataTable(tb, region, d.metaRegion.Length)
	if err != nil {
		return err
	}
	var off int64 = -1
	for _, e := range t.Entries {
		if e.ItemID == itemVirtualDiskID && e.Flags&metaIsUser == 0 && e.Length == 16 {
			off = region + int64(e.Offset)
		}
	}
	if off < 0 {
		return corrupt("metadata table", "", region, "no virtual disk id item")
	}
	// The item is 16 bytes at an offset the table does not align;
	// it may straddle two log pages.
	pages := map[int64][]byte{}
	for i := range int64(16) {
		p := (off + i) &^ (logSectorSize - 1)
		if pages[p] == nil {
			b := make([]byte, logSectorSize)
			if err := readFull(d.r, b, p, "metadata item"); err != nil {
				return err
			}
			pages[p] = b
		}
		pages[p][off+i-p] = id[i]
	}
	// The identifier is not user data, so DataWriteGuid stays.
	if err := d.renewWriteGUIDs(false); err != nil {
		return err
	}
	ups := make([]logUpdate, 0, len(pages))
	for p, b := range pages {
		ups = append(ups, logUpdate{Offset: p, Data: b})
	}
	sort.Slice(ups, func(i, j int) bool { return ups[i].Offset < ups[j].Offset })
	if err := d.logAndApply(ups); err != nil {
		return err
	}
	d.meta.VirtualDiskID = id
	return nil
}
