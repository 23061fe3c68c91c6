package vhdx

import (
	"errors"
	"io"
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

// readLog finds the active sequence of the log region at logOffset, of
// logLength bytes, whose entries carry logGUID. It returns a
// *vdisk.CorruptError (matching vdisk.ErrCorrupt) when no valid sequence
// exists, or when fileSize is smaller than the head entry's
// FlushedFileOffset.
func readLog(r io.ReaderAt, logOffset int64, logLength uint32, logGUID [16]byte, fileSize int64) (*logSequence, error) {
	return nil, errors.New("vhdx: log replay not implemented yet")
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
}

// newLogWriter returns a writer that starts at the beginning of an empty
// log with sequence number 1.
func newLogWriter(w io.WriterAt, logOffset int64, logLength uint32, logGUID [16]byte) *logWriter {
	return &logWriter{w: w, offset: logOffset, length: logLength, guid: logGUID}
}

// append encodes updates as one entry and writes it into the ring (it
// does not sync). Data updates must be 4 KiB-aligned and 4096 bytes long.
// It fails with vdisk.ErrInvalidArgument when the entry cannot fit in the
// log.
func (lw *logWriter) append(updates []logUpdate, flushedFileOffset, lastFileOffset uint64) error {
	return errors.New("vhdx: log writing not implemented yet")
}
