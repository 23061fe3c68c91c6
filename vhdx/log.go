package vhdx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// This file is the VHDX log ([MS-VHDX] 2.3; FORMATS.md 3.5): decoding and
// replay of entries, and encoding of new ones. The engine (the rest of the
// package) calls only readLog and logWriter.

// logUpdate is one change carried by a log entry: a 4 KiB data update or
// a zero range.
type logUpdate struct {
	Offset     int64  // file offset, a multiple of 4 KiB
	Data       []byte // exactly 4096 bytes for a data update; nil for a zero range
	ZeroLength int64  // zero range: bytes to zero, a multiple of 4 KiB
}

// logSequence is the active sequence of a log, found by replay
// ([MS-VHDX] 2.3.3).
type logSequence struct {
	// Updates holds every descriptor of every entry from tail to head,
	// in the order they must be applied.
	Updates []logUpdate
	// HeadSequence is the head entry's SequenceNumber.
	HeadSequence uint64
	// FlushedFileOffset and LastFileOffset are the head entry's fields.
	FlushedFileOffset uint64
	LastFileOffset    uint64
}

// Log layout constants ([MS-VHDX] 2.3.1; FORMATS.md 3.5.1).
const (
	logSectorSize      = 4096
	logEntryHeaderSize = 64
	logDescriptorSize  = 32
	logDescPerSector   = logSectorSize / logDescriptorSize // 128

	logEntrySignature = "loge"
	logZeroSignature  = "zero"
	logDescSignature  = "desc"
	logDataSignature  = "data"
)

// logCRCTable is the CRC-32C table for entry checksums (FORMATS.md 1.3).
var logCRCTable = crc32.MakeTable(crc32.Castagnoli)

var logLE = binary.LittleEndian

// logCorrupt returns a *vdisk.CorruptError about the log.
func logCorrupt(structure, field string, off int64, reason string, args ...any) error {
	return vdisk.Corruptf("vhdx", structure, field, off, reason, args...)
}

// logDescSectors returns how many descriptor sectors an entry with n
// descriptors has: the first sector holds the 64-byte header and 126
// descriptors, later ones 128 (FORMATS.md 3.5.1).
func logDescSectors(n uint32) uint64 {
	return (uint64(n) + 2 + logDescPerSector - 1) / logDescPerSector
}

// logEntryHeader is the 64-byte header that starts every log entry
// ([MS-VHDX] 2.3.1.1; FORMATS.md 3.5.1).
type logEntryHeader struct {
	Checksum          uint32
	EntryLength       uint32
	Tail              uint32
	SequenceNumber    uint64
	DescriptorCount   uint32
	LogGUID           [16]byte
	FlushedFileOffset uint64
	LastFileOffset    uint64
}

// decodeLogEntryHeader decodes and checks the entry header at the start
// of b against the header rules of FORMATS.md 3.5.3 that need no other
// sector: signature, EntryLength a non-zero multiple of 4 KiB and at most
// logLength, SequenceNumber > 0, Tail 4 KiB-aligned, and descriptor
// sectors fitting in EntryLength. The LogGuid is returned, not checked.
// off is the file offset reported in errors.
func decodeLogEntryHeader(b []byte, logLength uint32, off int64) (logEntryHeader, error) {
	const s = "log entry"
	var h logEntryHeader
	if len(b) < logEntryHeaderSize {
		return h, logCorrupt(s, "", off, "short entry header")
	}
	if string(b[0:4]) != logEntrySignature {
		return h, logCorrupt(s, "Signature", off, "not %q", logEntrySignature)
	}
	h.Checksum = logLE.Uint32(b[4:])
	h.EntryLength = logLE.Uint32(b[8:])
	h.Tail = logLE.Uint32(b[12:])
	h.SequenceNumber = logLE.Uint64(b[16:])
	h.DescriptorCount = logLE.Uint32(b[24:])
	copy(h.LogGUID[:], b[32:48])
	h.FlushedFileOffset = logLE.Uint64(b[48:])
	h.LastFileOffset = logLE.Uint64(b[56:])

	switch {
	case h.EntryLength == 0 || h.EntryLength%logSectorSize != 0:
		return h, logCorrupt(s, "EntryLength", off+8,
			"%d is not a non-zero multiple of 4 KiB", h.EntryLength)
	case h.EntryLength > logLength:
		return h, logCorrupt(s, "EntryLength", off+8,
			"%d exceeds the log length %d", h.EntryLength, logLength)
	case h.SequenceNumber == 0:
		return h, logCorrupt(s, "SequenceNumber", off+16, "zero")
	case h.Tail%logSectorSize != 0:
		return h, logCorrupt(s, "Tail", off+12,
			"%d is not a multiple of 4 KiB", h.Tail)
	case logDescSectors(h.DescriptorCount)*logSectorSize > uint64(h.EntryLength):
		return h, logCorrupt(s, "DescriptorCount", off+24,
			"%d descriptors do not fit in %d bytes",
			h.DescriptorCount, h.EntryLength)
	}
	return h, nil
}

// logDescriptor is a zero or data descriptor ([MS-VHDX] 2.3.1.2–2.3.1.3;
// FORMATS.md 3.5.1).
type logDescriptor struct {
	Zero           bool    // "zero" descriptor; otherwise "desc"
	TrailingBytes  [4]byte // data: bytes 4092–4095 of the update
	LeadingBytes   [8]byte // data: bytes 0–7 of the update
	ZeroLength     uint64  // zero: bytes to zero
	FileOffset     uint64
	SequenceNumber uint64
}

// decodeLogDescriptor decodes the 32-byte descriptor in b and checks it
// against FORMATS.md 3.5.3: known signature, the entry's sequence number
// seq, a 4 KiB-aligned offset, and for zero descriptors a 4 KiB-multiple
// length. It also rejects ranges that end beyond the largest int64 file
// offset, which no file can hold.
func decodeLogDescriptor(b []byte, seq uint64, off int64) (logDescriptor, error) {
	const s = "log descriptor"
	var d logDescriptor
	switch string(b[0:4]) {
	case logZeroSignature:
		d.Zero = true
		d.ZeroLength = logLE.Uint64(b[8:])
	case logDescSignature:
		copy(d.TrailingBytes[:], b[4:8])
		copy(d.LeadingBytes[:], b[8:16])
	default:
		return d, logCorrupt(s, "Signature", off, "unknown signature %q", b[0:4])
	}
	d.FileOffset = logLE.Uint64(b[16:])
	d.SequenceNumber = logLE.Uint64(b[24:])

	length := uint64(logSectorSize)
	if d.Zero {
		length = d.ZeroLength
	}
	switch {
	case d.SequenceNumber != seq:
		return d, logCorrupt(s, "SequenceNumber", off+24,
			"%d, entry has %d", d.SequenceNumber, seq)
	case d.FileOffset%logSectorSize != 0:
		return d, logCorrupt(s, "FileOffset", off+16,
			"%#x is not a multiple of 4 KiB", d.FileOffset)
	case d.Zero && d.ZeroLength%logSectorSize != 0:
		return d, logCorrupt(s, "ZeroLength", off+8,
			"%d is not a multiple of 4 KiB", d.ZeroLength)
	case d.FileOffset > maxFileSize || length > maxFileSize-d.FileOffset:
		return d, logCorrupt(s, "FileOffset", off+16,
			"range %#x+%d is beyond any VHDX file", d.FileOffset, length)
	}
	return d, nil
}

// checkLogDataSector checks a 4 KiB data sector against FORMATS.md
// 3.5.3: signature "data" and the entry's sequence number split into
// SequenceHigh (offset 4) and SequenceLow (offset 4092).
func checkLogDataSector(b []byte, seq uint64, off int64) error {
	const s = "log data sector"
	if string(b[0:4]) != logDataSignature {
		return logCorrupt(s, "DataSignature", off, "not %q", logDataSignature)
	}
	high, low := logLE.Uint32(b[4:]), logLE.Uint32(b[4092:])
	if uint64(high)<<32|uint64(low) != seq {
		return logCorrupt(s, "SequenceHigh", off+4,
			"sequence %#x:%#x, entry has %#x (torn write)", high, low, seq)
	}
	return nil
}

// logDataUpdate rebuilds the 4 KiB written by a data descriptor:
// LeadingBytes ‖ sector[8:4092] ‖ TrailingBytes (FORMATS.md 3.5.1).
func logDataUpdate(d *logDescriptor, sector []byte) []byte {
	out := make([]byte, logSectorSize)
	copy(out[0:8], d.LeadingBytes[:])
	copy(out[8:4092], sector[8:4092])
	copy(out[4092:], d.TrailingBytes[:])
	return out
}

// logEntry is a valid, decoded log entry.
type logEntry struct {
	logEntryHeader
	Updates []logUpdate
}

// decodeLogEntry decodes the log entry at the start of b (its EntryLength
// bytes already unwrapped from the ring; bytes past them are ignored) and
// checks every rule of a valid entry in FORMATS.md 3.5.3 except the
// LogGuid comparison, which needs the file header: callers compare the
// returned LogGUID themselves. logLength bounds EntryLength.
func decodeLogEntry(b []byte, logLength uint32) (*logEntry, error) {
	e, err := readLogEntry(bytes.NewReader(b), logLength, 0, nil, nil)
	if err != nil {
		var ce *vdisk.CorruptError
		if !errors.As(err, &ce) {
			// Only a short b gets here: bytes.Reader fails with io.EOF.
			err = logCorrupt("log entry", "EntryLength", 0,
				"entry is longer than the %d bytes given", len(b))
		}
		return nil, err
	}
	return e, nil
}

// readLogEntry reads and validates the entry at offset 0 of r, an
// entry-relative view of the log. off is the entry's file offset for
// error messages. When guid is not nil, an entry with another LogGuid is
// rejected before anything past the header sector is read. budget, when
// not nil, is decremented by the bytes read past the first sector, and
// the read stops with errLogBudget when it would go negative.
//
// The checks run cheapest first: header, descriptors, data sector stamps,
// and the CRC last. Content problems return a *vdisk.CorruptError;
// anything else is an I/O error from r.
func readLogEntry(r io.ReaderAt, logLength uint32, off int64, guid *[16]byte, budget *int64) (*logEntry, error) {
	first := make([]byte, logSectorSize)
	if _, err := r.ReadAt(first, 0); err != nil {
		return nil, err
	}
	h, err := decodeLogEntryHeader(first, logLength, off)
	if err != nil {
		return nil, err
	}
	if guid != nil && h.LogGUID != *guid {
		return nil, logCorrupt("log entry", "LogGuid", off+32,
			"does not match the header's LogGuid")
	}
	descs, ds, err := readLogDescriptors(r, &h, first, off, budget)
	if err != nil {
		return nil, err
	}
	nDesc := uint64(len(descs)) / logSectorSize
	nData := uint64(0)
	for i := range ds {
		if !ds[i].Zero {
			nData++
		}
	}
	used := (nDesc + nData) * logSectorSize
	if used > uint64(h.EntryLength) {
		return nil, logCorrupt("log entry", "EntryLength", off+8,
			"%d descriptor and data sectors do not fit in %d bytes",
			nDesc+nData, h.EntryLength)
	}

	// Data sectors, then the CRC over all EntryLength bytes.
	if err := logTake(budget, uint64(h.EntryLength)-nDesc*logSectorSize); err != nil {
		return nil, err
	}
	data := make([]byte, nData*logSectorSize)
	dataOff := int64(len(descs))
	if _, err := r.ReadAt(data, dataOff); err != nil {
		return nil, err
	}
	for k := int64(0); k < int64(len(data)); k += logSectorSize {
		err := checkLogDataSector(data[k:][:logSectorSize],
			h.SequenceNumber, off+dataOff+k)
		if err != nil {
			return nil, err
		}
	}
	crc, err := logEntryCRC(r, descs, data, int64(used), int64(h.EntryLength))
	if err != nil {
		return nil, err
	}
	if crc != h.Checksum {
		return nil, logCorrupt("log entry", "Checksum", off+4,
			"CRC-32C is %#08x, computed %#08x", h.Checksum, crc)
	}
	return &logEntry{logEntryHeader: h, Updates: logEntryUpdates(ds, data)}, nil
}

// readLogDescriptors reads the descriptor sectors of the entry whose
// header h was decoded from first (the header checked that they fit in
// EntryLength) and decodes every descriptor. It returns the sectors and
// the descriptors.
func readLogDescriptors(r io.ReaderAt, h *logEntryHeader, first []byte, off int64, budget *int64) ([]byte, []logDescriptor, error) {
	nDesc := logDescSectors(h.DescriptorCount)
	descs := first
	if nDesc > 1 {
		if err := logTake(budget, (nDesc-1)*logSectorSize); err != nil {
			return nil, nil, err
		}
		descs = make([]byte, nDesc*logSectorSize)
		copy(descs, first)
		if _, err := r.ReadAt(descs[logSectorSize:], logSectorSize); err != nil {
			return nil, nil, err
		}
	}
	ds := make([]logDescriptor, h.DescriptorCount)
	for i := range ds {
		p := logEntryHeaderSize + i*logDescriptorSize
		var err error
		ds[i], err = decodeLogDescriptor(descs[p:p+logDescriptorSize],
			h.SequenceNumber, off+int64(p))
		if err != nil {
			return nil, nil, err
		}
	}
	return descs, ds, nil
}

// logEntryUpdates turns an entry's descriptors into updates, in order;
// data holds one sector per data descriptor.
func logEntryUpdates(ds []logDescriptor, data []byte) []logUpdate {
	ups := make([]logUpdate, len(ds))
	k := 0
	for i := range ds {
		d := &ds[i]
		ups[i].Offset = int64(d.FileOffset)
		if d.Zero {
			ups[i].ZeroLength = int64(d.ZeroLength)
			continue
		}
		ups[i].Data = logDataUpdate(d, data[k*logSectorSize:][:logSectorSize])
		k++
	}
	return ups
}

// logTake takes n bytes from a scan budget (nil: unlimited).
func logTake(budget *int64, n uint64) error {
	if budget == nil {
		return nil
	}
	if uint64(*budget) < n {
		return errLogBudget
	}
	*budget -= int64(n)
	return nil
}

// errLogBudget stops a scan that would read far more than the log holds.
var errLogBudget = errors.New("vhdx: log scan budget exhausted")

// logEntryCRC returns the CRC-32C of an entry (FORMATS.md 1.3): the
// descriptor sectors descs with the checksum field taken as zero, the data
// sectors, and any padding from used to length, read from r in chunks.
func logEntryCRC(r io.ReaderAt, descs, data []byte, used, length int64) (uint32, error) {
	var zero [4]byte
	c := crc32.Update(0, logCRCTable, descs[:4])
	c = crc32.Update(c, logCRCTable, zero[:])
	c = crc32.Update(c, logCRCTable, descs[8:])
	c = crc32.Update(c, logCRCTable, data)
	if used == length {
		return c, nil
	}
	buf := make([]byte, min(length-used, 64*logSectorSize))
	for p := used; p < length; {
		n := min(int64(len(buf)), length-p)
		if _, err := r.ReadAt(buf[:n], p); err != nil {
			return 0, err
		}
		c = crc32.Update(c, logCRCTable, buf[:n])
		p += n
	}
	return c, nil
}

// logRing is the log region: length bytes at file offset off of r.
type logRing struct {
	r      io.ReaderAt
	off    int64
	length uint32
}

// logRingView reads the ring from log offset start on, wrapping from the
// end of the log to its start (FORMATS.md 3.5.1). Reads past one full
// turn fail.
type logRingView struct {
	ring  *logRing
	start uint32
}

func (v logRingView) ReadAt(b []byte, off int64) (int, error) {
	L := int64(v.ring.length)
	if off < 0 || off+int64(len(b)) > L {
		return 0, io.ErrUnexpectedEOF
	}
	n := 0
	for n < len(b) {
		p := (int64(v.start) + off + int64(n)) % L
		chunk := b[n:min(len(b), n+int(L-p))]
		m, err := v.ring.r.ReadAt(chunk, v.ring.off+p)
		n += m
		if err != nil && !(err == io.EOF && m == len(chunk)) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, fmt.Errorf("vhdx: read log at %#x: %w", v.ring.off+p, err)
		}
	}
	return n, nil
}

// readLog finds the active sequence of the log region at logOffset, of
// logLength bytes, whose entries carry logGUID. It returns a
// *vdisk.CorruptError (matching vdisk.ErrCorrupt) when no valid sequence
// exists, or when fileSize is smaller than the head entry's
// FlushedFileOffset.
//
// logLength must be a non-zero multiple of 4 KiB (the header code checks
// the stricter 1 MiB rule of FORMATS.md 3.3) and the region must lie
// inside fileSize. Memory use is bounded by the entries found, which fit
// in the region; the bytes read are bounded by a few times logLength.
func readLog(r io.ReaderAt, logOffset int64, logLength uint32, logGUID [16]byte, fileSize int64) (*logSequence, error) {
	if logLength == 0 || logLength%logSectorSize != 0 {
		return nil, logCorrupt("log", "LogLength", -1,
			"%d is not a non-zero multiple of 4 KiB", logLength)
	}
	if logOffset < 0 || fileSize < 0 || logOffset > fileSize-int64(logLength) {
		return nil, logCorrupt("log", "LogOffset", logOffset,
			"log of %d bytes does not lie inside the %d-byte file",
			logLength, fileSize)
	}
	sc := &logScan{
		ring:   logRing{r: r, off: logOffset, length: logLength},
		guid:   logGUID,
		seen:   make(map[uint32]*logEntry),
		budget: logScanBudget(logLength),
	}
	entries, err := sc.find()
	if err != nil {
		return nil, err
	}
	if entries == nil {
		return nil, logCorrupt("log", "", logOffset,
			"LogGuid is set but no valid entry sequence carries it")
	}
	head := entries[len(entries)-1].e
	if head.LastFileOffset > maxFileSize {
		return nil, logCorrupt("log entry", "LastFileOffset",
			logOffset+int64(entries[len(entries)-1].at)+56,
			"%#x is beyond any VHDX file", head.LastFileOffset)
	}
	if uint64(fileSize) < head.FlushedFileOffset {
		return nil, logCorrupt("log entry", "FlushedFileOffset",
			logOffset+int64(entries[len(entries)-1].at)+48,
			"file truncated: %d bytes, log expects at least %d",
			fileSize, head.FlushedFileOffset)
	}
	seq := &logSequence{
		HeadSequence:      head.SequenceNumber,
		FlushedFileOffset: head.FlushedFileOffset,
		LastFileOffset:    head.LastFileOffset,
	}
	for _, pe := range entries {
		seq.Updates = append(seq.Updates, pe.e.Updates...)
	}
	return seq, nil
}

// logScanBudget is how many bytes past header sectors one search may
// read. The entries of a log written in ring order do not overlap, so
// their bodies add up to about one log length; entries whose padding
// covers other headers could otherwise make the search quadratic.
func logScanBudget(logLength uint32) int64 {
	return 4*int64(logLength) + 64<<20
}

// logScan is the state of one search for the active sequence.
type logScan struct {
	ring   logRing
	guid   [16]byte
	seen   map[uint32]*logEntry // entry at a log offset; nil if invalid
	budget int64                // bytes left to read past header sectors
}

// entryAt returns the valid entry at log offset p, or nil when there is
// none. Results are cached so each offset is read at most once.
func (sc *logScan) entryAt(p uint32) (*logEntry, error) {
	if e, ok := sc.seen[p]; ok {
		return e, nil
	}
	v := logRingView{ring: &sc.ring, start: p}
	e, err := readLogEntry(v, sc.ring.length, sc.ring.off+int64(p),
		&sc.guid, &sc.budget)
	var ce *vdisk.CorruptError
	switch {
	case errors.As(err, &ce):
		e = nil
	case errors.Is(err, errLogBudget):
		// Entries that writers produce do not overlap, so only
		// crafted logs whose padding covers other headers get here.
		return nil, logCorrupt("log", "", sc.ring.off,
			"overlapping entries need more than %d bytes of reads",
			logScanBudget(sc.ring.length))
	case err != nil:
		return nil, err
	}
	sc.seen[p] = e
	return e, nil
}

// logPlaced is a valid entry and its log offset, which the Tail rule
// compares against.
type logPlaced struct {
	at uint32
	e  *logEntry
}

// find runs the active-sequence search of FORMATS.md 3.5.3 and returns
// the candidate's entries from tail to head, or nil when there is none.
func (sc *logScan) find() ([]logPlaced, error) {
	L := sc.ring.length
	var candidate []logPlaced
	tail, oldTail := uint32(0), uint32(0)
	for {
		// Collect consecutive valid entries from tail. Stop after one
		// turn of the ring so a full ring cannot loop.
		var seq []logPlaced
		p, walked := tail, uint64(0)
		for walked < uint64(L) {
			e, err := sc.entryAt(p)
			if err != nil {
				return nil, err
			}
			if e == nil || (len(seq) > 0 &&
				e.SequenceNumber != seq[len(seq)-1].e.SequenceNumber+1) {
				break
			}
			seq = append(seq, logPlaced{p, e})
			walked += uint64(e.EntryLength)
			p = uint32((uint64(p) + uint64(e.EntryLength)) % uint64(L))
		}

		// The sequence is valid when its head's Tail is one of its
		// entries; the candidate then runs from that entry to the head.
		valid := false
		if len(seq) > 0 {
			head := seq[len(seq)-1].e
			for i := range seq {
				if seq[i].at != head.Tail {
					continue
				}
				valid = true
				if candidate == nil || head.SequenceNumber >
					candidate[len(candidate)-1].e.SequenceNumber {
					candidate = seq[i:]
				}
				break
			}
		}
		if valid {
			tail = p
		} else {
			tail = (tail + logSectorSize) % L
		}
		if tail <= oldTail {
			break
		}
		oldTail = tail
	}
	return candidate, nil
}

// logWriter appends entries to the log ring. Each entry is a sequence of
// its own (Tail points at itself): the engine applies and flushes an
// entry's updates before it writes the next entry, so earlier entries
// never need replay.
type logWriter struct {
	w      io.WriterAt
	offset int64    // file offset of the log region
	length uint32   // log length in bytes
	guid   [16]byte // LogGuid stamped in every entry
	seq    uint64   // sequence number of the last entry written
	next   uint32   // log-relative offset where the next entry goes
	last   uint32   // length of the last entry written; 0 before the first
}

// newLogWriter returns a writer that starts at the beginning of an empty
// log with sequence number 1.
//
// logGUID must be fresh (not used by any entry already in the ring):
// replay picks the valid entry with the highest sequence number, so an
// older entry with the same GUID and a higher number would win.
func newLogWriter(w io.WriterAt, logOffset int64, logLength uint32, logGUID [16]byte) *logWriter {
	return &logWriter{w: w, offset: logOffset, length: logLength, guid: logGUID}
}

// append encodes updates as one entry and writes it into the ring (it
// does not sync). Data updates must be 4 KiB-aligned and 4096 bytes long.
// It fails with vdisk.ErrInvalidArgument when the entry cannot fit in the
// log, that is when it is longer than the log minus the previous entry
// (see below); nothing is written then.
//
// The entry goes at the next free 4 KiB and wraps from the end of the
// ring to its start when it does not fit before the end, as
// FORMATS.md 3.5.1 allows: no space is skipped, and qemu replays such an
// entry (tested). It may overwrite older entries, which the engine has
// applied, but never the previous one: if this write is torn by a crash,
// the previous entry stays the valid head and replay re-applies it
// (harmless, it was applied already) instead of finding no valid entry
// while LogGuid is set, which FORMATS.md 3.5.3 calls corrupt. Each entry
// is its own sequence (Tail = itself), so replay never needs older ones.
func (lw *logWriter) append(updates []logUpdate, flushedFileOffset, lastFileOffset uint64) error {
	if lw.length == 0 || lw.length%logSectorSize != 0 ||
		lw.next%logSectorSize != 0 || lw.next >= lw.length {
		return fmt.Errorf("vhdx: log of %d bytes, next entry at %d: %w",
			lw.length, lw.next, vdisk.ErrInvalidArgument)
	}
	seq := lw.seq + 1
	b, err := encodeLogEntry(updates, seq, lw.next, lw.guid,
		flushedFileOffset, lastFileOffset)
	if err != nil {
		return err
	}
	if uint64(len(b))+uint64(lw.last) > uint64(lw.length) {
		return fmt.Errorf("vhdx: log entry of %d bytes does not fit "+
			"in a %d-byte log beside the previous %d-byte entry: %w",
			len(b), lw.length, lw.last, vdisk.ErrInvalidArgument)
	}

	// Write up to the end of the ring, then the rest at its start.
	n := min(len(b), int(lw.length-lw.next))
	if _, err := lw.w.WriteAt(b[:n], lw.offset+int64(lw.next)); err != nil {
		return fmt.Errorf("vhdx: write log entry: %w", err)
	}
	if n < len(b) {
		if _, err := lw.w.WriteAt(b[n:], lw.offset); err != nil {
			return fmt.Errorf("vhdx: write log entry: %w", err)
		}
	}
	lw.seq = seq
	lw.last = uint32(len(b))
	lw.next = uint32((uint64(lw.next) + uint64(len(b))) % uint64(lw.length))
	return nil
}

// logMaxDataUpdates returns how many 4 KiB data updates one entry may
// carry so that every entry fits in half of a logLength-byte log. Two
// consecutive entries then always fit side by side, which append requires
// (it never overwrites the previous entry). It is 0 when the log is too
// small for that.
func logMaxDataUpdates(logLength uint32) int {
	half := uint64(logLength) / 2 / logSectorSize // sectors per entry
	// n data updates take n + ceil((n+2)/128) sectors.
	n := half * logDescPerSector / (logDescPerSector + 1)
	for n > 0 && n+logDescSectors(uint32(n)) > half {
		n--
	}
	return int(n)
}

// encodeLogEntry returns the bytes of one log entry (FORMATS.md 3.5.1,
// 3.5.2) carrying updates in order: a data descriptor and data sector for
// each data update, a zero descriptor for each zero range. tail is the
// log offset of the sequence's first entry. The checksum is computed last.
func encodeLogEntry(updates []logUpdate, seq uint64, tail uint32,
	guid [16]byte, flushedFileOffset, lastFileOffset uint64) ([]byte, error) {
	if guid == ([16]byte{}) {
		return nil, fmt.Errorf("vhdx: log entry with a zero LogGuid: %w",
			vdisk.ErrInvalidArgument)
	}
	if seq == 0 || tail%logSectorSize != 0 {
		return nil, fmt.Errorf("vhdx: log entry sequence %d, tail %d: %w",
			seq, tail, vdisk.ErrInvalidArgument)
	}
	nData := 0
	for i, u := range updates {
		if err := checkLogUpdate(u); err != nil {
			return nil, fmt.Errorf("vhdx: log update %d: %w", i, err)
		}
		if u.Data != nil {
			nData++
		}
	}
	if uint64(len(updates)) > math.MaxUint32 {
		return nil, fmt.Errorf("vhdx: %d log updates in one entry: %w",
			len(updates), vdisk.ErrInvalidArgument)
	}
	nDesc := logDescSectors(uint32(len(updates)))
	length := (nDesc + uint64(nData)) * logSectorSize
	if length > math.MaxUint32 {
		return nil, fmt.Errorf("vhdx: log entry of %d bytes: %w",
			length, vdisk.ErrInvalidArgument)
	}

	b := make([]byte, length)
	copy(b[0:4], logEntrySignature)
	logLE.PutUint32(b[8:], uint32(length))
	logLE.PutUint32(b[12:], tail)
	logLE.PutUint64(b[16:], seq)
	logLE.PutUint32(b[24:], uint32(len(updates)))
	copy(b[32:48], guid[:])
	logLE.PutUint64(b[48:], flushedFileOffset)
	logLE.PutUint64(b[56:], lastFileOffset)

	dataAt := nDesc * logSectorSize
	for i, u := range updates {
		d := b[logEntryHeaderSize+i*logDescriptorSize:][:logDescriptorSize]
		logLE.PutUint64(d[16:], uint64(u.Offset))
		logLE.PutUint64(d[24:], seq)
		if u.Data == nil {
			copy(d[0:4], logZeroSignature)
			logLE.PutUint64(d[8:], uint64(u.ZeroLength))
			continue
		}
		copy(d[0:4], logDescSignature)
		copy(d[4:8], u.Data[4092:])
		copy(d[8:16], u.Data[0:8])
		sector := b[dataAt:][:logSectorSize]
		copy(sector[0:4], logDataSignature)
		logLE.PutUint32(sector[4:], uint32(seq>>32))
		copy(sector[8:4092], u.Data[8:4092])
		logLE.PutUint32(sector[4092:], uint32(seq))
		dataAt += logSectorSize
	}
	logLE.PutUint32(b[4:], crc32.Checksum(b, logCRCTable))
	return b, nil
}

// checkLogUpdate checks one update before it is encoded.
func checkLogUpdate(u logUpdate) error {
	switch {
	case u.Offset < 0 || u.Offset%logSectorSize != 0:
		return fmt.Errorf("offset %d is not a 4 KiB multiple: %w",
			u.Offset, vdisk.ErrInvalidArgument)
	case u.Data != nil && (len(u.Data) != logSectorSize || u.ZeroLength != 0):
		return fmt.Errorf("data update of %d bytes (zero length %d), want 4096: %w",
			len(u.Data), u.ZeroLength, vdisk.ErrInvalidArgument)
	case u.Data != nil && u.Offset > math.MaxInt64-logSectorSize:
		return fmt.Errorf("data update at %d: %w", u.Offset, vdisk.ErrInvalidArgument)
	case u.Data == nil && (u.ZeroLength < 0 || u.ZeroLength%logSectorSize != 0 ||
		u.ZeroLength > math.MaxInt64-u.Offset):
		return fmt.Errorf("zero range of %d bytes at %d: %w",
			u.ZeroLength, u.Offset, vdisk.ErrInvalidArgument)
	}
	return nil
}
